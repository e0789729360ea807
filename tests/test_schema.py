"""Catalogs, schema text, retrieval modes, gold tables and ``schema-recall``, on real SQLite files."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from text2sql_mlops import cli
from text2sql_mlops.core.errors import UserError
from text2sql_mlops.core.records import Example
from text2sql_mlops.schema.recall import schema_recall
from text2sql_mlops.schema.render import quote_name, schema_text
from text2sql_mlops.schema.retrieval import expand_foreign_keys, identifier_tokens, question_tokens, select_tables
from text2sql_mlops.sql.catalog import ForeignKey, load_catalog
from text2sql_mlops.sql.database import connect_read_only
from text2sql_mlops.sql.shape import gold_tables

# A foreign-key chain singer - singer_in_concert - concert - stadium, continued
# to city only by tables.json; "Sales Log" stands alone. The second FK of
# singer_in_concert names no column and spells the table "Singer", as SQLite allows.
CONCERTS_SQL = """
CREATE TABLE city (City_ID INTEGER PRIMARY KEY, cityName TEXT, countryCode TEXT);
CREATE TABLE stadium (Stadium_ID INTEGER PRIMARY KEY, Name TEXT, Capacity INT, City_ID INT);
CREATE TABLE singer (Singer_ID INTEGER PRIMARY KEY, Name TEXT, Country TEXT, "Home Town" TEXT);
CREATE TABLE concert (concert_ID INTEGER PRIMARY KEY, concert_Name TEXT,
                      Stadium_ID INT REFERENCES stadium(Stadium_ID), Year);
CREATE TABLE singer_in_concert (concert_ID INT, Singer_ID INT,
                                PRIMARY KEY (concert_ID, Singer_ID),
                                FOREIGN KEY (concert_ID) REFERENCES concert(concert_ID),
                                FOREIGN KEY (Singer_ID) REFERENCES Singer);
CREATE TABLE "Sales Log" (Log_ID INTEGER PRIMARY KEY, Note TEXT, Amount REAL);
INSERT INTO city VALUES (1, 'Lyon', 'FR');
INSERT INTO stadium VALUES (1, 'Groupama', 59000, 1), (2, 'Parc', 48000, NULL);
INSERT INTO singer VALUES (1, 'Joe', 'France', 'Lyon'), (2, 'Tim', 'United States', NULL);
INSERT INTO concert VALUES (1, 'Auditions', 1, 2014);
INSERT INTO singer_in_concert VALUES (1, 1), (1, 2);
INSERT INTO "Sales Log" VALUES (1, 'a note that goes on and on and on, far longer than fifty characters', 9.5),
                               (2, 'two
lines', NULL);
"""
TABLE_ORDER = ["city", "stadium", "singer", "concert", "singer_in_concert", "Sales Log"]

# tables.json for the same database: (table, natural name) and (table index,
# column, natural name). Names differ in case from the file on purpose;
# "Population" does not exist in the file and must be ignored.
SPIDER_TABLES = [("CITY", "city"), ("stadium", "sports venue"), ("singer", "singer"), ("concert", "concert"),
                 ("singer_in_concert", "singer in concert"), ("sales log", "sales log")]
SPIDER_COLUMNS = [(0, "city_id", "city id"), (0, "cityName", "city name"), (0, "Population", "population"),
                  (1, "Stadium_ID", "stadium id"), (1, "Capacity", "number of seats"), (1, "City_ID", "city id"),
                  (3, "Stadium_ID", "stadium id"), (2, "Name", "singer name")]
# (from column, to column) as indexes into SPIDER_COLUMNS: stadium.City_ID -> city.City_ID is new,
# concert.Stadium_ID -> stadium.Stadium_ID is already in the file, the third names a missing column.
SPIDER_FOREIGN_KEYS = [(5, 0), (6, 3), (2, 0)]


def spider_entry(db_id: str = "concerts") -> dict:
    offset = 1  # tables.json lists "*" first
    return {
        "db_id": db_id,
        "table_names_original": [name for name, _ in SPIDER_TABLES],
        "table_names": [natural for _, natural in SPIDER_TABLES],
        "column_names_original": [[-1, "*"]] + [[table, name] for table, name, _ in SPIDER_COLUMNS],
        "column_names": [[-1, "*"]] + [[table, natural] for table, _, natural in SPIDER_COLUMNS],
        "foreign_keys": [[a + offset, b + offset] for a, b in SPIDER_FOREIGN_KEYS],
    }


def make_db(path: Path, script: str = CONCERTS_SQL) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.executescript(script)
    conn.close()
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_db(tmp_path / "concerts" / "concerts.sqlite")


@pytest.fixture
def tables_json(tmp_path: Path) -> Path:
    path = tmp_path / "tables.json"
    path.write_text(json.dumps([spider_entry()]))
    return path


# --------------------------------------------------------------------------- catalog


def test_catalog_reads_tables_types_and_keys(db: Path):
    catalog = load_catalog(db)
    assert catalog.db_id == "concerts" and list(catalog.table_names) == TABLE_ORDER
    concert = catalog.table("CONCERT")
    assert [(c.name, c.type) for c in concert.columns] == [("concert_ID", "INTEGER"), ("concert_Name", "TEXT"), ("Stadium_ID", "INT"), ("Year", "")]
    assert concert.primary_key == ("concert_ID",)
    assert concert.foreign_keys == (ForeignKey(("Stadium_ID",), "stadium", ("Stadium_ID",)),)
    link = catalog.table("singer_in_concert")
    assert link.primary_key == ("concert_ID", "Singer_ID")
    # "REFERENCES Singer" names no column: it means singer's primary key, spelled as the catalog does.
    assert set(link.foreign_keys) == {
        ForeignKey(("concert_ID",), "concert", ("concert_ID",)),
        ForeignKey(("Singer_ID",), "singer", ("Singer_ID",)),
    }
    assert catalog.table("stadium").foreign_keys == ()
    assert catalog.linked_tables("concert") == {"stadium", "singer_in_concert"}
    assert all(c.natural_name == "" for t in catalog.tables for c in t.columns)


def test_tables_json_adds_natural_names_and_missing_foreign_keys(db: Path, tables_json: Path):
    catalog = load_catalog(db, tables_json)
    stadium = catalog.table("stadium")
    assert stadium.natural_name == "sports venue"
    assert {c.name: c.natural_name for c in stadium.columns} == {"Stadium_ID": "stadium id", "Name": "", "Capacity": "number of seats", "City_ID": "city id"}
    assert [c.natural_name for c in catalog.table("city").columns] == ["city id", "city name", ""]
    assert stadium.foreign_keys == (ForeignKey(("City_ID",), "city", ("City_ID",)),)
    # Already declared by the file: not added twice.
    assert len(catalog.table("concert").foreign_keys) == 1
    assert catalog.linked_tables("city") == {"stadium"}


def test_database_missing_from_tables_json_is_used_as_declared(db: Path, tables_json: Path):
    assert load_catalog(db, tables_json, db_id="other").tables == load_catalog(db).tables


def test_catalog_is_cached_until_the_file_changes(db: Path):
    first = load_catalog(db)
    assert load_catalog(str(db)) is first
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE extra (x INT)")
    conn.close()
    stat = db.stat()
    os.utime(db, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert load_catalog(db).table_names[-1] == "extra"


def test_database_is_opened_read_only(db: Path):
    before = db.read_bytes()
    schema_text(load_catalog(db), sample_rows=2)
    assert db.read_bytes() == before
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        connect_read_only(db).execute("CREATE TABLE t (x INT)")


def test_wal_database_gets_no_companion_files(tmp_path: Path):
    path = make_db(tmp_path / "wal.sqlite", "PRAGMA journal_mode = WAL; CREATE TABLE t (x INT);")
    assert not (tmp_path / "wal.sqlite-wal").exists()
    assert load_catalog(path).table_names == ("t",)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wal.sqlite"]


def test_path_with_uri_characters(tmp_path: Path):
    path = make_db(tmp_path / "odd ?#% name" / "odd.sqlite")
    assert load_catalog(path).table_names[0] == "city"


def test_composite_foreign_key_without_target_columns(tmp_path: Path):
    script = "CREATE TABLE a (x INT, y INT, PRIMARY KEY (x, y)); CREATE TABLE b (p INT, q INT, FOREIGN KEY (p, q) REFERENCES a);"
    catalog = load_catalog(make_db(tmp_path / "composite.sqlite", script))
    assert catalog.table("b").foreign_keys == (ForeignKey(("p", "q"), "a", ("x", "y")),)
    assert "  FOREIGN KEY (p, q) REFERENCES a(x, y)\n" in schema_text(catalog, ["b"])


@pytest.mark.parametrize("make_bad", [lambda d: d / "missing.sqlite", lambda d: (d / "junk.sqlite").write_text("not a database") and d / "junk.sqlite"])
def test_unreadable_database_is_a_user_error(tmp_path: Path, make_bad):
    with pytest.raises(UserError, match="database"):
        load_catalog(make_bad(tmp_path))


# --------------------------------------------------------------------------- schema text

EXPECTED_TWO_TABLES = """\
CREATE TABLE singer (
  Singer_ID INTEGER,
  Name TEXT,
  Country TEXT,
  "Home Town" TEXT,
  PRIMARY KEY (Singer_ID)
);

CREATE TABLE singer_in_concert (
  concert_ID INT,
  Singer_ID INT,
  PRIMARY KEY (concert_ID, Singer_ID),
  FOREIGN KEY (concert_ID) REFERENCES concert(concert_ID),
  FOREIGN KEY (Singer_ID) REFERENCES singer(Singer_ID)
);"""

EXPECTED_SAMPLES = """\
CREATE TABLE "Sales Log" (
  Log_ID INTEGER,
  Note TEXT,
  Amount REAL,
  PRIMARY KEY (Log_ID)
);
/*
Sample rows from Sales Log:
Log_ID | Note | Amount
1 | a note that goes on and on and on, far longer t... | 9.5
2 | two lines | NULL
*/"""


def test_schema_text_is_create_table_in_catalog_order(db: Path):
    catalog = load_catalog(db)
    assert schema_text(catalog, ["SINGER_IN_CONCERT", "singer"]) == EXPECTED_TWO_TABLES
    assert schema_text(catalog).count("CREATE TABLE") == len(TABLE_ORDER)
    assert "FOREIGN KEY (Stadium_ID) REFERENCES stadium(Stadium_ID)" in schema_text(catalog, ["concert"])


def test_schema_text_sample_rows_as_comment(db: Path):
    catalog = load_catalog(db)
    assert schema_text(catalog, ["Sales Log"], sample_rows=3) == EXPECTED_SAMPLES
    assert schema_text(catalog, sample_rows=1) == schema_text(catalog, sample_rows=1)
    assert "Sample rows from stadium:\nStadium_ID | Name | Capacity | City_ID\n1 | Groupama | 59000 | 1\n*/" in schema_text(catalog, sample_rows=1)


def test_schema_text_shows_foreign_keys_from_tables_json(db: Path, tables_json: Path):
    text = schema_text(load_catalog(db, tables_json), ["stadium"])
    assert text.endswith("  PRIMARY KEY (Stadium_ID),\n  FOREIGN KEY (City_ID) REFERENCES city(City_ID)\n);")


def test_schema_text_unknown_table(db: Path):
    with pytest.raises(KeyError, match="nowhere"):
        schema_text(load_catalog(db), ["nowhere"])


def test_schema_text_compact_and_seed_formats(db: Path):
    catalog = load_catalog(db)
    tables = ["singer", "concert", "singer_in_concert"]
    assert schema_text(catalog, tables, schema_format="compact") == (
        'singer(Singer_ID PK, Name, Country, "Home Town")\n'
        "concert(concert_ID PK, concert_Name, Stadium_ID, Year)\n"
        "singer_in_concert(concert_ID PK, Singer_ID PK)\n"
        "concert.Stadium_ID -> stadium.Stadium_ID\n"
        "singer_in_concert.concert_ID -> concert.concert_ID\n"
        "singer_in_concert.Singer_ID -> singer.Singer_ID")
    assert schema_text(catalog, ["concert"], schema_format="seed") == (
        "Table concert: concert_ID INTEGER primary_key, concert_Name TEXT, Stadium_ID INT, Year\n"
        "Foreign keys:\nconcert.Stadium_ID = stadium.Stadium_ID")
    assert schema_text(catalog, ["city"], schema_format="seed") == "Table city: City_ID INTEGER primary_key, cityName TEXT, countryCode TEXT"


def test_sample_values_list_category_values_and_the_values_a_question_mentions(db: Path):
    catalog = load_catalog(db)
    asked = schema_text(catalog, ["singer"], schema_format="compact", sample_values=1, question="Which singers are from United States?")
    # category columns (few distinct values) show their most frequent values, ties by value; after the
    # schema, the stored values the question mentions, with their column
    assert asked == ("singer(Singer_ID PK, Name ('Joe'), Country ('France'), \"Home Town\" ('Lyon'))\n"
                     "Values in the question: singer.Country = 'United States'")
    # the schema part does not depend on the question (generation reads it once per database)
    plain = schema_text(catalog, ["singer"], schema_format="compact", sample_values=1, question="How many singers?")
    assert plain == asked.splitlines()[0]
    assert schema_text(catalog, ["singer"], sample_values=1, question="Who is joe?").endswith("Values in the question: singer.Name = 'Joe'")
    assert "Values" not in schema_text(catalog, ["singer"], sample_values=1, question="Who is joey?")  # whole words only
    created = schema_text(catalog, ["stadium"], sample_values=2)
    assert "  Name TEXT, -- e.g. 'Groupama', 'Parc'\n  Capacity INT,\n" in created
    assert schema_text(catalog, ["stadium"], sample_values=0) == schema_text(catalog, ["stadium"])
    # long texts are not values a question would quote
    assert "far longer" not in schema_text(catalog, ["Sales Log"], schema_format="seed", sample_values=5)


def test_schema_format_errors(db: Path):
    with pytest.raises(UserError, match="unknown schema format 'yaml'"):
        schema_text(load_catalog(db), schema_format="yaml")
    with pytest.raises(UserError, match="sample_rows only goes with"):
        schema_text(load_catalog(db), schema_format="compact", sample_rows=1)


@pytest.mark.parametrize("name, quoted", [("Name", "Name"), ("Home Town", '"Home Town"'), ("From", '"From"'), ('a"b', '"a""b"'), ("%_Change", '"%_Change"'),
                                          # SQLite refuses these bare, or reads them as something else
                                          ("Transaction", '"Transaction"'), ("current_date", '"current_date"'), ("Cast", '"Cast"'),
                                          ("Returning", '"Returning"'), ("match", "match"), ("Key", "Key")])
def test_quote_name(name: str, quoted: str):
    assert quote_name(name) == quoted


def test_keyword_names_are_quoted_in_prompts_and_in_the_tools_own_queries(tmp_path: Path):
    """A table "Transaction" was shown bare (invalid SQL for the model to copy) and its sample
    rows / values query failed with a traceback; a column "current_date" was shown bare and its
    values read back as today's date, since SQLite reads the bare word as the keyword."""
    from conftest import make_db

    path = make_db(tmp_path / "bank.sqlite", """CREATE TABLE "Transaction" (id INTEGER PRIMARY KEY, "current_date" TEXT, kind TEXT);
        INSERT INTO "Transaction" VALUES (1, '2001-01-01', 'deposit'), (2, '2001-01-01', 'withdrawal');""")
    catalog = load_catalog(path)
    text = schema_text(catalog, sample_rows=2)
    assert 'CREATE TABLE "Transaction" (\n  id INTEGER,\n  "current_date" TEXT,' in text and "1 | 2001-01-01 | deposit" in text
    compact = schema_text(catalog, schema_format="compact", sample_values=3, question="Which deposit was made on 2001-01-01?")
    assert "\"current_date\" ('2001-01-01')" in compact, compact
    assert "\"Transaction\".kind = 'deposit'" in compact and "\"Transaction\".\"current_date\" = '2001-01-01'" in compact, compact


# --------------------------------------------------------------------------- retrieval


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("Perpetrator_ID", ["perpetrator", "id"]),
        ("pitStops", ["pit", "stop"]),
        ("XMLHttpRequest2", ["xml", "http", "request", "2"]),
        ("Home Town", ["home", "town"]),
        ("companies classes singers", ["company", "class", "singer"]),
    ],
)
def test_identifier_tokens(text: str, tokens: list[str]):
    assert identifier_tokens(text) == tokens


def test_question_tokens_drop_stop_words():
    assert question_tokens("What is the name of the singers from France?") == ["name", "singer", "france"]


def test_full_mode_selects_every_table(db: Path):
    assert select_tables(load_catalog(db), "anything", "full", top_k=1) == TABLE_ORDER


def test_retrieved_mode_keeps_overlapping_tables(db: Path):
    catalog = load_catalog(db)
    # singer has "singer" and "country"; singer_in_concert has "singer"; city has "country" (countryCode).
    assert select_tables(catalog, "Which country is each singer from?", "retrieved") == ["singer", "city", "singer_in_concert"]
    assert select_tables(catalog, "Which country is each singer from?", "retrieved", top_k=1) == ["singer"]
    # Nothing in common: the first top_k tables, rather than an empty schema.
    assert select_tables(catalog, "How many?", "retrieved", top_k=2) == ["city", "stadium"]


def test_bm25_mode_ranks_and_breaks_ties_by_table_order(db: Path, tables_json: Path):
    catalog = load_catalog(db)
    assert select_tables(catalog, "Show the home town of every singer.", "bm25", top_k=1) == ["singer"]
    assert select_tables(catalog, "List every sales amount.", "bm25", top_k=2)[0] == "Sales Log"
    assert select_tables(catalog, "How many?", "bm25", top_k=3) == ["city", "stadium", "singer"]
    # Only tables.json knows a stadium as a "sports venue".
    question = "Which sports venue has the most seats?"
    assert select_tables(catalog, question, "bm25", top_k=1) == ["city"]
    assert select_tables(load_catalog(db, tables_json), question, "bm25", top_k=1) == ["stadium"]


@pytest.mark.parametrize(
    "hops, expected",
    [
        (0, ["singer"]),
        (1, ["singer", "singer_in_concert"]),
        (2, ["singer", "singer_in_concert", "concert"]),
        (3, ["singer", "singer_in_concert", "concert", "stadium"]),
        (9, ["singer", "singer_in_concert", "concert", "stadium"]),  # city is linked by tables.json only
    ],
)
def test_bm25_fk_expands_by_foreign_key_hops(db: Path, hops: int, expected: list[str]):
    assert select_tables(load_catalog(db), "Show the home town of every singer.", "bm25_fk", top_k=1, fk_hops=hops) == expected


def test_foreign_key_expansion_follows_both_directions_in_catalog_order(db: Path, tables_json: Path):
    catalog = load_catalog(db, tables_json)
    assert expand_foreign_keys(catalog, ["concert"], 1) == ["concert", "stadium", "singer_in_concert"]
    assert expand_foreign_keys(catalog, ["singer"], 9) == ["singer", "singer_in_concert", "concert", "stadium", "city"]
    assert expand_foreign_keys(catalog, ["sales log"], 3) == ["Sales Log"]


def test_select_tables_rejects_bad_arguments(db: Path):
    catalog = load_catalog(db)
    with pytest.raises(ValueError, match="unknown retrieval mode"):
        select_tables(catalog, "q", "dense")
    with pytest.raises(ValueError, match="top_k"):
        select_tables(catalog, "q", "bm25", top_k=0)


# --------------------------------------------------------------------------- gold tables

# One case per line: SQL, the catalog tables it reads.
GOLD_CASES = [
    ("SELECT Name FROM singer", {"singer"}),
    ("select name from SINGER where country = \"France\"", {"singer"}),
    ("SELECT T1.Name FROM singer AS T1 JOIN singer_in_concert AS T2 ON T1.Singer_ID = T2.Singer_ID", {"singer", "singer_in_concert"}),
    ("SELECT Name FROM singer WHERE Singer_ID NOT IN (SELECT Singer_ID FROM singer_in_concert)", {"singer", "singer_in_concert"}),
    ("SELECT count(*) FROM (SELECT * FROM concert WHERE Year > 2013)", {"concert"}),
    ("WITH big AS (SELECT Stadium_ID FROM stadium WHERE Capacity > 50000) SELECT concert_Name FROM concert JOIN big USING (Stadium_ID)", {"stadium", "concert"}),
    ("WITH city AS (SELECT 1 AS x) SELECT x FROM city", set()),
    ("WITH singer AS (SELECT * FROM singer WHERE Country = 'France') SELECT count(*) FROM singer", {"singer"}),
    ("SELECT Name FROM singer UNION SELECT Name FROM stadium", {"singer", "stadium"}),
    ("SELECT Stadium_ID FROM stadium INTERSECT SELECT Stadium_ID FROM concert", {"stadium", "concert"}),
    ("SELECT Singer_ID FROM singer EXCEPT SELECT Singer_ID FROM singer_in_concert", {"singer", "singer_in_concert"}),
    ('SELECT sum(Amount) FROM "Sales Log"', {"Sales Log"}),
    ("SELECT sum(Amount) FROM `sales log` AS s", {"Sales Log"}),
    ("SELECT * FROM nowhere JOIN city", {"city"}),
    ("SELEC Name FROM (", set()),
]


@pytest.mark.parametrize("sql, tables", GOLD_CASES)
def test_gold_tables(db: Path, sql: str, tables: set[str]):
    assert gold_tables(sql, load_catalog(db)) == tables


# --------------------------------------------------------------------------- schema-recall


def recall_examples(db: Path) -> list[Example]:
    rows = [
        ("Show the home town of every singer.", "SELECT \"Home Town\" FROM singer"),
        ("Which singers sang in a concert?", "SELECT Name FROM singer AS s JOIN singer_in_concert AS c ON s.Singer_ID = c.Singer_ID"),
        ("What is the biggest stadium's city?", "SELECT cityName FROM city JOIN stadium USING (City_ID) ORDER BY Capacity DESC LIMIT 1"),
        ("How many?", "SELECT 1"),
    ]
    return [Example(id=str(i), db_id="concerts", question=q, query=sql, db_path=str(db)) for i, (q, sql) in enumerate(rows)]


def test_schema_recall_counts_micro_macro_and_full_recall(db: Path):
    report = schema_recall(recall_examples(db), "bm25", top_k=1, fk_hops=0)
    # Selected: singer | singer_in_concert | stadium; gold: {singer} | {singer, singer_in_concert} | {city, stadium}.
    assert report == {
        "mode": "bm25",
        "top_k": 1,
        "fk_hops": 0,
        "examples": 4,
        "examples_without_gold_tables": 1,
        "gold_tables": 5,
        "recall_micro": pytest.approx(3 / 5),
        "recall_macro": pytest.approx((1 + 0.5 + 0.5) / 3),
        "full_recall": pytest.approx(1 / 3),
        "any_recall": 1.0,  # each scored example has one of its gold tables selected
        "avg_tables_selected": 1.0,
    }
    assert schema_recall(recall_examples(db), "full")["recall_micro"] == 1.0


def test_schema_recall_compares_modes_and_lists_missed_tables(tmp_path: Path, db: Path, tables_json: Path, capsys):
    dataset = tmp_path / "questions.json"
    dataset.write_text(json.dumps([{"db_id": e.db_id, "question": e.question, "query": e.query} for e in recall_examples(db)]))
    rows = tmp_path / "missed.jsonl"
    argv = ["schema-recall", "--dataset", str(dataset), "--db-root", str(tmp_path), "--mode", "bm25", "full",
            "--top-k", "1", "--fk-hops", "0", "--per_example", str(rows)]
    assert cli.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["modes"]) == ["bm25", "full"]
    assert report["modes"]["bm25"]["recall_micro"] == pytest.approx(3 / 5) and report["modes"]["full"]["recall_micro"] == 1.0
    missed = [json.loads(line) for line in rows.read_text().splitlines()]
    assert len(missed) == 8  # 4 examples x 2 modes
    third = next(r for r in missed if r["mode"] == "bm25" and "cityName" in r["gold_sql"])
    assert third["gold_tables"] == ["city", "stadium"] and third["selected"] == ["stadium"] and third["missed"] == ["city"]
    assert all(not r["missed"] for r in missed if r["mode"] == "full")


def test_schema_recall_over_a_rollouts_trajectories(tmp_path: Path, db: Path, capsys):
    """The schemas a run really showed its model: each trajectory's schema_tables against its gold."""
    from text2sql_mlops.rollout.command import run_rollout
    from text2sql_mlops.rollout.config import RolloutConfig

    dataset = tmp_path / "questions.json"
    dataset.write_text(json.dumps([{"db_id": e.db_id, "question": e.question, "query": e.query} for e in recall_examples(db)]))
    run = tmp_path / "run"
    run_rollout(RolloutConfig(dataset_path=str(dataset), output_dir=str(run), db_root=str(tmp_path), schema_mode="bm25",
                              top_k_tables=1, fk_hops=0, max_turns=1, progress=False))
    rows = tmp_path / "missed.jsonl"
    assert cli.main(["schema-recall", "--trajectories", str(run), "--per_example", str(rows)]) == 0
    report = json.loads(capsys.readouterr().out)
    # The rollout retrieved as schema_recall's bm25 top-1 does: the same numbers.
    assert (report["mode"], report["top_k"], report["examples"]) == ("bm25", 1, 4)
    assert report["recall_micro"] == pytest.approx(3 / 5) and report["full_recall"] == pytest.approx(1 / 3)
    assert report["any_recall"] == 1.0
    missed = [r["missed"] for r in map(json.loads, rows.read_text().splitlines())]
    assert missed == [[], ["singer"], ["city"], []]  # in the dataset's order; the last gold names no table


def test_schema_recall_cli_end_to_end(tmp_path: Path, db: Path, tables_json: Path, capsys):
    dataset = tmp_path / "questions.json"
    dataset.write_text(json.dumps([{"db_id": e.db_id, "question": e.question, "query": e.query} for e in recall_examples(db)]))
    argv = ["schema-recall", "--dataset", str(dataset), "--db-root", str(tmp_path), "--tables", str(tables_json), "--mode", "bm25_fk", "--top-k", "1", "--fk-hops", "1"]
    assert cli.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["mode"], report["top_k"], report["fk_hops"], report["examples"]) == ("bm25_fk", 1, 1, 4)
    assert report["recall_micro"] == 1.0 and report["full_recall"] == 1.0
    assert report["config"] == {"dataset": str(dataset), "split": "train", "db_root": str(tmp_path), "tables_json": str(tables_json),
                                "mode": "bm25_fk", "top_k": 1, "fk_hops": 1}
    assert report["avg_tables_selected"] > 1
    # without --tables: the tables.json beside the dataset, as rollout, eval and training read it
    assert cli.main([arg for arg in argv if arg not in ("--tables", str(tables_json))]) == 0
    assert json.loads(capsys.readouterr().out) == report
    tables_json.unlink()
    assert cli.main([arg for arg in argv if arg not in ("--tables", str(tables_json))]) == 0
    assert json.loads(capsys.readouterr().out)["recall_micro"] < 1.0  # stadium-city is a key of tables.json alone


def test_schema_recall_cli_errors(tmp_path: Path, capsys):
    assert cli.main(["schema-recall", "--dataset", str(tmp_path / "none.json")]) == 2
    assert capsys.readouterr().err.startswith("error: dataset not found")
    # A usage error is one line too, under either spelling.
    for spelling in ("--top-k", "--top_k_tables"):
        assert cli.main(["schema-recall", "--dataset", "x.json", spelling, "0"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "must be >= 1, got 0" in err, err


def test_schema_recall_refuses_a_corrupt_database_instead_of_dropping_its_examples(tmp_path: Path, db: Path, capsys):
    # Half the questions on a good database, half on an empty file that SQLite would open as a
    # database without tables: their gold tables vanish and the other half reported recall 1.0.
    broken = tmp_path / "broken" / "broken.sqlite"
    broken.parent.mkdir()
    broken.write_bytes(b"")
    rows = [{"db_id": db_id, "question": e.question, "query": e.query} for e in recall_examples(db)[:2] for db_id in ("concerts", "broken")]
    dataset = tmp_path / "questions.json"
    dataset.write_text(json.dumps(rows))
    out = tmp_path / "report.json"
    assert cli.main(["schema-recall", "--dataset", str(dataset), "--db-root", str(tmp_path), "--mode", "full", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith(f"error: corrupt database {broken}: the file is empty (0 bytes)")
    assert not out.exists()
    with pytest.raises(UserError, match="corrupt database"):
        load_catalog(broken)  # the catalog reader runs the same check


def test_schema_recall_refuses_an_empty_dataset(tmp_path: Path, capsys):
    (tmp_path / "empty.jsonl").write_text("")
    assert cli.main(["schema-recall", "--dataset", str(tmp_path / "empty.jsonl"), "--db-root", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: ") and "holds no examples" in captured.err


def test_schema_recall_imports_no_model_libraries():
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "text2sql_mlops.cli", "schema-recall", "--help"], capture_output=True, text=True, check=True
    )
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "sqlglot" in imported and not imported & {"torch", "transformers", "trl", "peft", "mlflow"}


# --------------------------------------------------------------------------- Spider train


@pytest.mark.spider
def test_bm25_fk_recall_on_spider_train(spider_train: Path):
    from text2sql_mlops.data.load import load_examples

    examples = load_examples(spider_train / "train_spider.json", spider_train / "database")
    report = schema_recall(examples, "bm25_fk", top_k=6, fk_hops=1, tables_json=spider_train / "tables.json")
    assert report["examples"] == 6890 and report["examples_without_gold_tables"] == 0
    # Measured 0.9995 micro, 0.9993 full recall; bm25 alone gets 0.988 / 0.984.
    assert report["recall_micro"] >= 0.995
    assert report["full_recall"] >= 0.99
    assert report["avg_tables_selected"] < 6


def test_column_values_are_read_again_when_the_database_is_rebuilt(tmp_path: Path):
    """Prompts show stored values; a database rebuilt in place must not keep showing the old ones."""
    from conftest import make_db

    from text2sql_mlops.schema.render import column_values

    path = make_db(tmp_path / "city.sqlite", "CREATE TABLE city (name TEXT); INSERT INTO city VALUES ('Paris'), ('Rome'), ('Rome');")
    assert column_values(str(path), "city") == {"name": ["Rome", "Paris"]}  # most frequent first
    path.unlink()
    make_db(path, "CREATE TABLE city (name TEXT); INSERT INTO city VALUES ('Oslo');")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a later write, whatever the clock resolution
    assert column_values(str(path), "city") == {"name": ["Oslo"]}


def test_text_that_is_not_utf8_is_shown_without_breaking_the_prompt(tmp_path: Path):
    """Spider dev's wta_1 stores Latin-1 names: reading sample values or rows failed the whole
    prompt ("Could not decode to UTF-8"). Now such a value is no sample literal (no SQL the model
    writes could match it), its row shows U+FFFD for the bytes that do not decode, and the
    UTF-8 values around it are shown as before."""
    from conftest import make_db

    path = make_db(tmp_path / "players" / "players.sqlite",
                   "CREATE TABLE players (id INTEGER PRIMARY KEY, first_name TEXT, hand TEXT);"
                   "INSERT INTO players VALUES (1, CAST(X'4AF6726E' AS TEXT), 'R'), (2, 'Zoë', 'L'), (3, 'Zoë', 'R');")
    catalog = load_catalog(path)
    compact = schema_text(catalog, schema_format="compact", sample_values=3, question="Is Zoë left-handed?")
    assert "'Zoë'" in compact and "'R'" in compact and "\ufffd" not in compact
    assert compact.endswith("Values in the question: players.first_name = 'Zoë'")
    rows = schema_text(catalog, sample_rows=3)
    assert "1 | J\ufffdrn | R" in rows  # bytes 4A F6 72 6E: F6 alone is no UTF-8
    assert "2 | Zoë | L" in rows


def test_foreign_keys_that_resolve_to_nothing_are_not_shown(tmp_path: Path):
    """SQLite accepts keys on tables or columns that do not exist, and on a table without a
    primary key; the prompt showed them (`REFERENCES nopk()`, `child.ghost_id -> ghost.gid`),
    inventing joins. Keys that resolve are respelled as the tables spell their columns."""
    from conftest import make_db

    path = make_db(tmp_path / "odd.sqlite", """
        CREATE TABLE people (ID INTEGER PRIMARY KEY, name TEXT);
        CREATE TABLE nopk (code TEXT);
        CREATE TABLE child (id INTEGER PRIMARY KEY, person INT REFERENCES people(id), code TEXT REFERENCES nopk,
                            ghost_id INT REFERENCES ghost(gid), bad INT REFERENCES people(no_such_col));""")
    child = next(table for table in load_catalog(path).tables if table.name == "child")
    assert child.foreign_keys == (ForeignKey(("person",), "people", ("ID",)),)
    for schema_format in ("create_table", "compact", "seed"):
        text = schema_text(load_catalog(path), schema_format=schema_format)
        assert "gid" not in text and "no_such_col" not in text and "REFERENCES nopk" not in text and "nopk." not in text, text
        assert "REFERENCES people(ID)" in text or "child.person -> people.ID" in text or "child.person = people.ID" in text


def test_views_are_shown_and_a_view_sqlite_cannot_expand_is_left_out(tmp_path: Path):
    """A view is queried like a table, so a question may need it: the catalog lists it (marked,
    without keys) and prompts show it (they showed only tables). A view over a dropped table
    cannot be read by any query, so it is left out; expanding it must not fail the catalog."""
    from conftest import make_db

    path = make_db(tmp_path / "views.sqlite", """
        CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, age INT);
        CREATE VIEW adults AS SELECT name, age * 2 AS doubled FROM people WHERE age >= 18;
        CREATE TABLE gone (x INT);
        CREATE VIEW broken AS SELECT x FROM gone;
        DROP TABLE gone;""")
    catalog = load_catalog(path)
    assert catalog.table_names == ("people", "adults")
    assert catalog.table("adults").view and not catalog.table("people").view
    assert [column.name for column in catalog.table("adults").columns] == ["name", "doubled"]
    text = schema_text(catalog)
    assert "CREATE VIEW adults (\n  name TEXT,\n  doubled\n);" in text and "CREATE TABLE people (" in text
    assert "adults(name, doubled)" in schema_text(catalog, schema_format="compact")
    assert select_tables(catalog, "list every adult", mode="retrieved", top_k=1) == ["adults"]
    # A view's rows are its query's: never read for samples or values (an endless recursive view
    # hung the prompt, a failing one raised a traceback).
    endless = make_db(tmp_path / "endless.sqlite", """CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('a');
        CREATE VIEW forever AS WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) SELECT n FROM c;
        CREATE VIEW broken_json AS SELECT json_extract(x, '$.a') AS z FROM t;""")
    for kwargs in ({"sample_rows": 2}, {"schema_format": "compact", "sample_values": 3, "question": "a"}):
        text = schema_text(load_catalog(endless), **kwargs)
        assert "forever" in text and "broken_json" in text


def test_virtual_tables_show_their_columns_generated_columns_count_and_shadow_tables_stay_out(tmp_path: Path):
    """FTS5 and R*Tree shadow tables (doc_data, box_node, ...) filled the prompt's top-k slots,
    and a generated column was missing (table_info leaves it out)."""
    from conftest import virtual_tables_db

    catalog = load_catalog(virtual_tables_db(tmp_path / "vt.sqlite"))
    assert schema_text(catalog, schema_format="compact") == "doc(title)\nbox(id, minx, maxx)\ngen(a, b)"
