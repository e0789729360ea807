"""The databases of the embedded demo dataset, one module each, written as data.

Every module here defines the same four names, and ``text2sql_mlops.data.demo.build``
is the only code that reads them:

``DB_ID``
    the Spider ``db_id`` (also the folder and file name of the SQLite database).
``SCHEMA``
    the ``CREATE TABLE`` statements, foreign keys declared; ``tables.json`` is
    derived from the created database, so the two can never disagree.
``rows(rng) -> dict[table, list[tuple]]``
    the content, parents before children, drawn from ``rng`` only.
``TEMPLATES``
    question/SQL templates: ``{"category", "question", "query", "slots"}``.
    ``slots`` is a SQL query over the database (its column aliases name the
    placeholders), a list of dicts, or absent for a question without
    placeholders. In ``query``, text placeholders are written inside quotes.
"""
