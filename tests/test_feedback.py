"""Feedback text: one fixture file per detail level, crafted errors on a real SQLite file.

Each line of ``fixtures/feedback/<detail>.jsonl`` is a case: a query, the gold query,
a feedback mode, and the exact text the model would read. The cases run through
the same ``observe`` -> ``Diagnosis`` -> ``build_feedback`` path as the rollout.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from text2sql_mlops.rollout.feedback import DETAIL_LEVELS, FEEDBACK_MODES, Diagnosis, build_feedback
from text2sql_mlops.scoring.errors import GoldResult, classify_error, is_schema_valid, observe, outcome_type
from text2sql_mlops.scoring.scorer import Scorer
from text2sql_mlops.sql.catalog import load_catalog
from text2sql_mlops.sql.plan import plan_flags
from text2sql_mlops.sql.sandbox import Sandbox
from text2sql_mlops.sql.shape import query_shape

FIXTURES = Path(__file__).parent / "fixtures" / "feedback"


def _cases() -> list:
    return [
        pytest.param(detail, case, id=f"{detail}: {case['case']} ({case['mode']})")
        for detail in DETAIL_LEVELS
        for case in map(json.loads, (FIXTURES / f"{detail}.jsonl").read_text().splitlines())
    ]


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("feedback") / "concerts.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript((FIXTURES / "concerts.sql").read_text())
    conn.commit()
    conn.close()
    return path


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox() as sandbox:
        yield sandbox


def diagnose(sandbox: Sandbox, db: Path, sql: str, gold_sql: str) -> Diagnosis:
    """What the rollout knows about one candidate: its execution and the gold verdict."""
    gold = observe(sandbox, db, gold_sql)
    with Scorer() as scorer:
        verdict = scorer.score(db, gold_sql, sql)
    return Diagnosis(sql, observe(sandbox, db, sql), load_catalog(db), GoldResult.of(gold, verdict.match, verdict.gold_error))


@pytest.mark.parametrize(("detail", "case"), _cases())
def test_feedback_text(detail: str, case: dict, sandbox: Sandbox, db: Path):
    text = build_feedback(diagnose(sandbox, db, case["sql"], case["gold"]), detail, case["mode"])
    assert text == case["feedback"], f"\n--- expected\n{case['feedback']}\n--- got\n{text}"


def test_every_level_and_mode_has_fixture_cases():
    cases = [case for param in _cases() for case in param.values[1:]]
    assert {param.values[0] for param in _cases()} == set(DETAIL_LEVELS)
    assert {case["mode"] for case in cases} == set(FEEDBACK_MODES)


def test_crafted_errors_name_the_culprit_at_column_level(sandbox: Sandbox, db: Path):
    wrong_alias = diagnose(sandbox, db, "SELECT T2.name FROM singer AS T1 JOIN singer_in_concert AS T2 ON T1.singer_id = T2.singer_id", "SELECT name FROM singer")
    other_table = diagnose(sandbox, db, "SELECT location FROM concert", "SELECT location FROM stadium")
    missing_table = diagnose(sandbox, db, "SELECT name FROM singers", "SELECT name FROM singer")
    assert "Tables that have a column name: singer (T1 in the query)." in build_feedback(wrong_alias, "column", "error_only")
    assert "Tables that have a column location: stadium." in build_feedback(other_table, "column", "error_only")
    assert "there is no table singers. Similar names: singer." in build_feedback(missing_table, "column", "error_only")
    # basic is the error alone; minimal adds the repair instruction to column
    assert build_feedback(wrong_alias, "basic", "error_only") == "The query failed with an error: no such column: T2.name"
    column, minimal = build_feedback(wrong_alias, "column", "error_only"), build_feedback(wrong_alias, "minimal", "error_only")
    assert minimal.startswith(column + "\n") and "drop a join that is not needed instead of renaming aliases" in minimal


@pytest.mark.parametrize("mode", [name for name, mode in FEEDBACK_MODES.items() if not mode.uses_gold])
@pytest.mark.parametrize("detail", list(DETAIL_LEVELS))
def test_gold_free_modes_never_show_gold(mode: str, detail: str, sandbox: Sandbox, db: Path):
    for sql in ("SELECT name FROM singer WHERE age > 100", "SELECT T1.name FROM singer AS T1, stadium AS T2", "SELECT nme FROM singer"):
        diagnosis = diagnose(sandbox, db, sql, "SELECT name FROM singer")
        planted = Diagnosis(diagnosis.sql, diagnosis.execution, diagnosis.catalog, GoldResult(False, None, (("GOLD-ROW",),), 4321))
        text = build_feedback(planted, detail, mode)
        assert "GOLD-ROW" not in text and "4321" not in text and "expected" not in text


def test_an_answer_without_sql_is_told_so(sandbox: Sandbox, db: Path):
    diagnosis = diagnose(sandbox, db, "", "SELECT name FROM singer")
    assert diagnosis.execution.signals == ("error", "schema_invalid")
    for detail in DETAIL_LEVELS:
        assert build_feedback(diagnosis, detail, "error_only").startswith("The answer contained no SQL query")


def test_gold_modes_need_gold(sandbox: Sandbox, db: Path):
    diagnosis = diagnose(sandbox, db, "SELECT name FROM singer", "SELECT name FROM singer")
    bare = Diagnosis(diagnosis.sql, diagnosis.execution, diagnosis.catalog)
    with pytest.raises(ValueError, match="needs the gold result"):
        build_feedback(bare, "basic", "result_status")


@pytest.mark.parametrize(
    ("error", "kind", "schema_valid"),
    [
        ("no such column: T2.name", "no_such_column", False),
        ("no such table: singers", "no_such_table", False),
        ("ambiguous column name: id", "other", False),
        ('near "FROM": syntax error', "syntax", False),
        ("incomplete input", "syntax", False),
        ("rejected: no SQL statement to run (the text is empty or only comments)", "syntax", False),
        ("rejected: only read-only queries can run here (SELECT, ...); this statement starts with 'SELEC'", "syntax", False),
        ("rejected: only read-only queries can run here (SELECT, ...); this statement starts with 'DELETE'", "other", True),
        ("timeout: the query ran longer than 10 s", "timeout", True),
        ("misuse of aggregate: count()", "other", True),
    ],
)
def test_error_taxonomy(error: str, kind: str, schema_valid: bool):
    assert classify_error(error) == kind
    assert is_schema_valid(error) is schema_valid


def test_guard_signals(sandbox: Sandbox, db: Path):
    def signals(sql: str) -> tuple[str, ...]:
        return observe(sandbox, db, sql).signals

    assert signals("SELECT name FROM singer") == ()
    assert signals("SELECT nme FROM singer") == ("error", "schema_invalid")
    assert signals("SELECT count(*) FROM singer GROUP BY") == ("error", "schema_invalid")  # syntax
    assert signals("SELECT name FROM singer WHERE age > 100") == ("empty_result",)
    assert signals("SELECT T1.name FROM singer AS T1, stadium AS T2") == ("cartesian",)
    assert signals("SELECT name FROM singer AS s WHERE age > (SELECT avg(age) FROM singer AS t WHERE t.country = s.country)") == ("looped_full_scan",)
    # a join served by the primary key is no cartesian product
    assert signals("SELECT T1.name FROM singer_in_concert AS T2 JOIN singer AS T1 ON T1.singer_id = T2.singer_id") == ()


def test_plan_flags_read_the_plan_tree():
    rows = [
        (1, 0, 0, "COMPOUND QUERY"), (2, 1, 0, "LEFT-MOST SUBQUERY"), (5, 2, 0, "SCAN student"),
        (11, 1, 0, "UNION USING TEMP B-TREE"), (13, 11, 0, "SCAN instructor"), (14, 11, 0, "SCAN course"),
        (20, 0, 0, "CORRELATED SCALAR SUBQUERY 1"), (22, 20, 0, "SCAN s2"), (30, 0, 0, "USE TEMP B-TREE FOR ORDER BY"),
    ]
    flags = plan_flags(rows)
    assert (flags.full_scans, flags.inner_full_scans, flags.looped_full_scans, flags.temp_btrees) == (4, 1, 1, 1)
    assert plan_flags([(1, 0, 0, "SCAN CONSTANT ROW")]).full_scans == 0


def test_query_shape_reads_aliases_in_every_scope(db: Path):
    catalog = load_catalog(db)
    shape = query_shape("SELECT T1.name FROM singer AS T1 WHERE T1.singer_id IN (SELECT s.singer_id FROM singer_in_concert AS s)", catalog)
    assert shape.bindings == {"t1": ("singer",), "s": ("singer_in_concert",)}
    assert shape.tables == ("singer", "singer_in_concert")
    assert query_shape("SELECT FROM WHERE (", catalog) is None


def test_an_invented_column_is_matched_to_the_real_one_by_its_words(sandbox: Sandbox, tmp_path: Path):
    """Small models invent column names from the question's words; the feedback names the real
    column whose words match (abbreviations, stems, camel case), not only close spellings.
    The names are those a SmolLM2 SFT model invented on held-out demo databases."""
    path = tmp_path / "shop.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE station (station_id INTEGER PRIMARY KEY, station_name TEXT, opened_yr INTEGER);"
        "CREATE TABLE reading (reading_id INTEGER PRIMARY KEY, station_id INTEGER REFERENCES station(station_id),"
        " reading_date TEXT, temp_c REAL);"
        "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, shipping_fee REAL, ship_method TEXT);"
        "CREATE TABLE artwork (artwork_id INTEGER PRIMARY KEY, title TEXT, yr_created INTEGER, medium TEXT);"
        "CREATE TABLE album (album_id INTEGER PRIMARY KEY, title TEXT);"
    )
    conn.close()
    catalog = load_catalog(path)

    def hint(sql: str) -> str:
        text = build_feedback(Diagnosis(sql, observe(sandbox, path, sql), catalog), "column", "error_only")
        return text.splitlines()[2]

    assert hint("SELECT creation_year FROM artwork") == "No table of the database has a column creation_year. Columns its parts name: artwork.yr_created."
    assert hint("SELECT SUM(ShipFee) FROM orders") == "No table of the database has a column ShipFee. Columns its parts name: orders.shipping_fee."
    assert hint("SELECT T1.temperature FROM reading AS T1") == "No table of the database has a column temperature. Columns its parts name: reading.temp_c."
    assert hint("SELECT MEDIA_TYPE FROM artwork").endswith("Columns its parts name: artwork.medium.")
    assert hint("SELECT open_yr FROM station").endswith("Columns its parts name: station.opened_yr.")
    # a column of a table the name also names ranks first
    assert hint("SELECT album_title FROM artwork").endswith("Columns its parts name: album.title, artwork.title.")
    assert hint("SELECT artwork_title FROM album").endswith("Columns its parts name: artwork.title, album.title.")
    # a misspelling is still found by spelling; a name nothing matches gets no hint
    assert hint("SELECT tittle FROM artwork").endswith("Similar names: title.")
    assert hint("SELECT colour FROM artwork") == "No table of the database has a column colour."


def test_a_gold_result_past_the_row_cap_is_not_called_that_many_rows(sandbox: Sandbox, tmp_path: Path):
    """Six Spider train gold queries return over 10,000 rows (baseball_1, flight_4): the fetch
    stops at the cap, and the feedback said "the expected result has 10000 rows" to an answer of
    the same rows in another order, called a wrong row count, steering the repair to fewer rows."""
    path = tmp_path / "nums.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE nums (n INTEGER)")
        conn.executemany("INSERT INTO nums VALUES (?)", [(i,) for i in range(50)])
    capped = {}
    for sql in ("SELECT n FROM nums ORDER BY n", "SELECT n FROM nums ORDER BY n DESC", "SELECT n FROM nums LIMIT 20",
                "SELECT n FROM nums LIMIT 30"):
        capped[sql] = observe(sandbox, path, sql, max_rows=30)  # the rollout's 10,000, scaled down
    gold_sql = "SELECT n FROM nums ORDER BY n"
    gold = GoldResult.of(capped[gold_sql])
    assert gold.truncated and gold.row_count == 30
    reversed_, twenty, thirty = (capped[sql] for sql in list(capped)[1:])
    assert outcome_type(reversed_, gold) == "wrong_result"  # both past the cap: no count to blame
    assert outcome_type(twenty, gold) == outcome_type(thirty, gold) == "wrong_row_count"  # 20 and exactly 30 < more than 30
    catalog = load_catalog(path)
    said = build_feedback(Diagnosis("SELECT n FROM nums ORDER BY n DESC", reversed_, catalog, gold), "column", "result_status")
    assert "more than 30 rows, as did the expected result, but the values differ" in said and "has 30 rows" not in said
    said = build_feedback(Diagnosis("SELECT n FROM nums LIMIT 30", thirty, catalog, gold), "column", "result_status")
    assert "It returned 30 rows; the expected result has more than 30 rows." in said
