"""Schema text for prompts: CREATE TABLE, compact or the seed's layout, with sample rows or values.

The text a prompt shows for the tables retrieval picked (``retrieval.py``, ``select.py``),
read from the database's catalog (``sql/catalog.py``) and, for sample rows and values,
from the file itself, read-only.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from collections.abc import Iterable
from typing import Any

from ..core.errors import UserError
from ..sql.catalog import Catalog, Table
from ..sql.database import connect_read_only
from ..sql.text import bare_name_ok

# --------------------------------------------------------------------------- schema text

# SQL keywords quoted even where SQLite would take them bare (``FROM left JOIN``); the names
# SQLite refuses or misreads bare are found by asking it (``bare_name_ok``). Quoting one more
# name than needed is harmless; quoting one less breaks the model's SQL.
_RESERVED = frozenset(
    """ALL ALTER AND AS BETWEEN BY CASE CHECK COLLATE COLUMN CONSTRAINT CREATE CROSS DEFAULT
    DELETE DISTINCT DROP ELSE END ESCAPE EXCEPT EXISTS FOREIGN FROM FULL GLOB GROUP HAVING IN
    INDEX INNER INSERT INTERSECT INTO IS ISNULL JOIN LEFT LIKE LIMIT NATURAL NOT NOTNULL NULL
    OFFSET ON OR ORDER OUTER PRIMARY REFERENCES REGEXP RIGHT SELECT SET TABLE THEN TO UNION
    UNIQUE UPDATE USING VALUES WHEN WHERE WITH""".split()
)
_SAMPLE_CELL_CHARS = 50  # long texts are cut so that sample rows stay one short line


def quote_name(name: str) -> str:
    """``name`` as a prompt writes it: bare when SQLite reads it bare as that name and it is
    no SQL keyword, else in double quotes."""
    if name.upper() not in _RESERVED and bare_name_ok(name):
        return name
    return _quoted(name)


def _quoted(name: str) -> str:
    """``name`` always quoted: the tool's own queries (sample rows, values) must never read a
    keyword-named column as the keyword (``current_date`` is today's date)."""
    return '"' + name.replace('"', '""') + '"'


def create_table_sql(table: Table, values: dict[str, list[str]] | None = None) -> str:
    """A CREATE TABLE statement with column types, PRIMARY KEY and FOREIGN KEY lines; ``values``
    (column -> example values) become ``-- e.g. ...`` comments."""

    def names(columns: Iterable[str]) -> str:
        return ", ".join(quote_name(column) for column in columns)

    values = values or {}
    lines = [f"{quote_name(c.name)} {c.type}".rstrip() for c in table.columns]
    if table.primary_key:
        lines.append(f"PRIMARY KEY ({names(table.primary_key)})")
    for key in table.foreign_keys:
        lines.append(f"FOREIGN KEY ({names(key.columns)}) REFERENCES {quote_name(key.ref_table)}({names(key.ref_columns)})")
    notes = [f" -- e.g. {', '.join(_sql_literal(v) for v in values[c.name])}" if values.get(c.name) else "" for c in table.columns]
    notes += [""] * (len(lines) - len(notes))
    last = len(lines) - 1
    body = "\n".join(f"  {line}{'' if i == last else ','}{note}" for i, (line, note) in enumerate(zip(lines, notes)))
    return f"CREATE {'VIEW' if table.view else 'TABLE'} {quote_name(table.name)} (\n{body}\n);"


def _sample_comment(catalog: Catalog, table: Table, limit: int) -> str:
    """The first ``limit`` rows of ``table`` as a SQL comment.

    Rows come in storage order, which is the same on every call for a given file.
    """
    with contextlib.closing(connect_read_only(catalog.db_path)) as conn:
        rows = conn.execute(f"SELECT * FROM {_quoted(table.name)} LIMIT ?", (limit,)).fetchall()
    lines = [f"Sample rows from {table.name}:", " | ".join(c.name for c in table.columns)]
    lines += [" | ".join(_cell(value) for value in row) for row in rows]
    return "/*\n" + "\n".join(lines) + "\n*/"


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    text = re.sub(r"[\r\n\t]", " ", str(value))
    return text if len(text) <= _SAMPLE_CELL_CHARS else text[: _SAMPLE_CELL_CHARS - 3] + "..."


SCHEMA_FORMATS = ("create_table", "compact", "seed")


def schema_text(catalog: Catalog, tables: Iterable[str] | None = None, sample_rows: int = 0,
                schema_format: str = "create_table", sample_values: int = 0, question: str = "") -> str:
    """The schema shown in a prompt, in one of ``SCHEMA_FORMATS``.

    - ``create_table``: one CREATE TABLE per table (types, PRIMARY KEY, FOREIGN KEY lines).
    - ``compact``: one line per table, ``t(col PK, col, ...)``, then one ``a.x -> b.y`` line per
      foreign key; about half the tokens, which matters for a small model on a CPU.
    - ``seed``: the reference project's ``Table t: col TYPE primary_key, ...`` lines, then
      ``Foreign keys:`` lines, so its prompts can be reproduced.

    ``tables`` (default: all) are matched case-insensitively and written in catalog order,
    whatever order they are given in, so the same selection always gives the same text.
    ``sample_rows`` > 0 adds that many rows per table as a ``/* ... */`` comment
    (create_table only). ``sample_values`` > 0 lists up to that many of the most frequent values
    of each category column (a text column with few distinct values) in the schema, and after
    the schema a line of the stored values the ``question`` mentions, with their column
    (``airport.country = 'Mexico'``), so a literal and its column can be copied from the prompt
    instead of guessed. Foreign keys are kept even when the referenced table is not shown.
    """
    if schema_format not in SCHEMA_FORMATS:
        raise UserError(f"unknown schema format {schema_format!r}; choose one of: {', '.join(SCHEMA_FORMATS)}")
    if sample_rows > 0 and schema_format != "create_table":
        raise UserError("sample_rows only goes with schema_format create_table; use sample_values with the others")
    wanted = set(catalog.table_names) if tables is None else {catalog.table(name).name for name in tables}
    shown = [table for table in catalog.tables if table.name in wanted]
    values = {table.name: _category_values(catalog, table, sample_values) for table in shown} if sample_values > 0 else {}
    if schema_format == "compact":
        text = _compact(shown, values)
    elif schema_format == "seed":
        text = _seed_layout(shown, values)
    else:
        blocks = []
        for table in shown:
            block = create_table_sql(table, values.get(table.name, {}))
            if sample_rows > 0 and not table.view:  # a view's rows run its query (as _category_values)
                block += "\n" + _sample_comment(catalog, table, sample_rows)
            blocks.append(block)
        text = "\n\n".join(blocks)
    mentioned = _mentioned_values(catalog, shown, sample_values, question) if sample_values > 0 else []
    # After the schema, not inside it: the schema text stays the same for every question on a
    # database, so generation reads it once per batch (generation/hf.py's shared prefixes).
    return text + ("\n" + "Values in the question: " + "; ".join(mentioned) if mentioned else "")


def _values_note(values: list[str]) -> str:
    return " (" + ", ".join(_sql_literal(value) for value in values) + ")" if values else ""


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _foreign_key_lines(tables: list[Table], arrow: str) -> list[str]:
    lines = []
    for table in tables:
        for key in table.foreign_keys:
            for column, ref in zip(key.columns, key.ref_columns):
                lines.append(f"{quote_name(table.name)}.{quote_name(column)} {arrow} {quote_name(key.ref_table)}.{quote_name(ref)}")
    return lines


def _compact(tables: list[Table], values: dict[str, dict[str, list[str]]]) -> str:
    lines = []
    for table in tables:
        shown = values.get(table.name, {})
        columns = [quote_name(c.name) + (" PK" if c.name in table.primary_key else "") + _values_note(shown.get(c.name, []))
                   for c in table.columns]
        lines.append(f"{quote_name(table.name)}({', '.join(columns)})")
    return "\n".join(lines + _foreign_key_lines(tables, "->"))


def _seed_layout(tables: list[Table], values: dict[str, dict[str, list[str]]]) -> str:
    lines = []
    for table in tables:
        shown = values.get(table.name, {})
        columns = [" ".join(part for part in (quote_name(c.name), c.type, "primary_key" if c.name in table.primary_key else "") if part)
                   + _values_note(shown.get(c.name, [])) for c in table.columns]
        lines.append(f"Table {quote_name(table.name)}: {', '.join(columns)}")
    keys = _foreign_key_lines(tables, "=")
    return "\n".join(lines + (["Foreign keys:", *keys] if keys else []))


_TEXT_TYPES = ("CHAR", "CLOB", "TEXT")  # and columns without a declared type, which hold text too
_VALUES_PER_COLUMN = 5000  # distinct values read per column, to find the ones a question mentions
_CATEGORY_VALUES = 20  # a text column with at most this many distinct values is a category


def _category_values(catalog: Catalog, table: Table, limit: int) -> dict[str, list[str]]:
    """Per category column (a text column with few distinct values), its ``limit`` most frequent
    values: how they are spelled. A name column's arbitrary first values would only cost tokens.
    A view gets none: reading it runs its query, which may be slow, endless or fail."""
    if table.view:
        return {}
    return {column: values[:limit] for column, values in column_values(catalog.db_path, table.name).items()
            if len(values) <= _CATEGORY_VALUES}


def _mentioned_values(catalog: Catalog, tables: list[Table], limit: int, question: str) -> list[str]:
    """``table.column = 'value'`` for the stored text values ``question`` mentions (case-insensitive),
    longest first ("New York City" before "York"), at most ``limit`` per column."""
    asked = question.lower()
    found = []
    for table in tables:
        if table.view:  # as _category_values
            continue
        for column, values in column_values(catalog.db_path, table.name).items():
            mentioned = sorted((v for v in values if len(v) > 1 and _mentions(asked, v.lower())), key=len, reverse=True)
            found += [f"{quote_name(table.name)}.{quote_name(column)} = {_sql_literal(v)}" for v in mentioned[:limit]]
    return found


def _mentions(asked: str, value: str) -> bool:
    """``value`` occurs in ``asked`` as whole words ("Paris" in "from Paris?", not "Pa" in "Paris")."""
    start = asked.find(value)
    while start != -1:
        end = start + len(value)
        if (start == 0 or not asked[start - 1].isalnum()) and (end == len(asked) or not asked[end].isalnum()):
            return True
        start = asked.find(value, start + 1)
    return False


def column_values(db_path: str, table_name: str) -> dict[str, list[str]]:
    """Distinct short values of each text column, most frequent first (ties by value): cached
    per database file and modification time, since every prompt over the database reads them
    and a database rebuilt in place must be read again (as catalogs are)."""
    return _column_values(db_path, os.stat(db_path).st_mtime_ns, table_name)


@functools.lru_cache(maxsize=4096)
def _column_values(db_path: str, mtime_ns: int, table_name: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    with contextlib.closing(connect_read_only(db_path)) as conn:
        columns = [(row[0], (row[1] or "").upper())
                   for row in conn.execute("SELECT name, type FROM pragma_table_xinfo(?) WHERE hidden != 1", (table_name,))]
        for name, declared in columns:
            if declared and not any(kind in declared for kind in _TEXT_TYPES):
                continue
            column, table = _quoted(name), _quoted(table_name)
            rows = conn.execute(
                f"SELECT {column} AS v, COUNT(*) AS n FROM {table} "
                f"WHERE typeof({column}) = 'text' AND length({column}) BETWEEN 1 AND ? "
                "GROUP BY v ORDER BY n DESC, v LIMIT ?", (_SAMPLE_CELL_CHARS, _VALUES_PER_COLUMN)).fetchall()
            # A value that is not UTF-8 (decoded with U+FFFD) is no literal the model could write.
            values = [value for value, _ in rows if "\ufffd" not in value]
            if values:
                out[name] = values
    return out
