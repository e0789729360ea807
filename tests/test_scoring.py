"""Execution accuracy with the official Spider semantics.

``fixtures/scoring/cases.jsonl`` has one case per official rule or quirk; its
``match`` values were produced by running the official evaluator's
``eval_exec_match`` on the same databases (built here from ``shop.sql`` and,
for the two-file folder, ``shop_variant.sql``), so they are ground truth.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from text2sql_mlops import cli
from text2sql_mlops.core.errors import UserError
from text2sql_mlops.scoring.match import official_match, prepare_sql, seed_match, sqlite3_statement, strip_distinct
from text2sql_mlops.scoring.scorer import Scorer, read_gold_and_predictions

FIXTURES = Path(__file__).parent / "fixtures" / "scoring"
CASES = [json.loads(line) for line in (FIXTURES / "cases.jsonl").read_text().splitlines() if line.strip()]


def build(path: Path, script: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.executescript((FIXTURES / script).read_text())
    conn.commit()
    conn.close()
    return path


@pytest.fixture(scope="module")
def dbs(tmp_path_factory) -> Path:
    """``one/shop.sqlite``, and ``two/`` holding ``shop.sqlite`` plus a variant file."""
    root = tmp_path_factory.mktemp("scoring")
    build(root / "one" / "shop.sqlite", "shop.sql")
    build(root / "two" / "shop.sqlite", "shop.sql")
    build(root / "two" / "shop_variant.sqlite", "shop_variant.sql")
    return root


@pytest.fixture(scope="module")
def scorers():
    with Scorer() as default, Scorer(keep_distinct=True) as keep:
        yield {False: default, True: keep}


@pytest.mark.parametrize("case", CASES, ids=[case["rule"] for case in CASES])
def test_official_rule(case, dbs, scorers):
    result = scorers[case.get("keep_distinct", False)].score(dbs / case["db"], case["gold"], case["pred"])
    assert result.gold_error is None
    assert result.match is case["match"]


@pytest.mark.parametrize("pred", ["", "   ", "\t"])
def test_empty_prediction_scores_zero(pred, dbs, scorers):
    # The official code crashes on an empty prediction; it counts as wrong here.
    result = scorers[False].score(dbs / "one", "SELECT a FROM empty_table", pred)
    assert (result.match, result.pred_error) == (False, "empty prediction")


def test_failing_prediction_and_failing_gold_are_reported(dbs, scorers):
    failed = scorers[False].score(dbs / "one", "SELECT name FROM singer", "SELECT nope FROM singer")
    assert not failed.match and "no such column" in failed.pred_error
    bad_gold = scorers[False].score(dbs / "one", "SELECT nope FROM singer", "SELECT name FROM singer")
    assert not bad_gold.match and "no such column" in bad_gold.gold_error


def test_a_single_file_is_scored_alone(dbs, scorers):
    # A file path means that file only; the folder means every .sqlite file in it.
    gold = "SELECT name FROM singer WHERE country = 'France'"
    pred = "SELECT name FROM singer WHERE singer_id IN (3, 4, 5, 6)"
    assert scorers[False].score(dbs / "two" / "shop.sqlite", gold, pred).match
    assert not scorers[False].score(dbs / "two", gold, pred).match


def test_gold_results_are_cached(dbs):
    with Scorer() as scorer:
        calls = []
        execute = scorer._sandbox.execute
        scorer._sandbox.execute = lambda path, sql, **kw: calls.append(sql) or execute(path, sql, **kw)
        for pred in ("SELECT 1", "SELECT 2", "SELECT count(*) FROM singer"):
            scorer.score(dbs / "one", "SELECT count(*) FROM singer", pred)
        assert calls.count("SELECT count(*) FROM singer") == 2  # once as gold, once as the last prediction


@pytest.mark.parametrize(
    "gold, pred, order_matters, expected",
    [
        ([(1, "a"), (2, "b")], [("b", 2), ("a", 1)], False, True),
        ([(1, "a"), (2, "b")], [("b", 2), ("a", 1)], True, False),
        ([(1, "a"), (2, "b")], [("a", 1), ("b", 2)], True, True),
        ([(1,)], [(1.0,)], True, True),
        ([("1",)], [(1,)], False, False),
        ([(None,)], [(None,)], False, True),
        ([], [], True, True),
        ([], [(1,)], False, False),
        ([(1, 1.5)], [(1.0, 1.5)], False, False),  # the official quick rejection sorts by str + type
        ([(1, 2, 3, 4, 5)], [(5, 4, 3, 2, 1)], False, True),
        ([(1, 2), (3, 4)], [(1, 4), (3, 2)], False, False),  # columns match as sets, rows do not
        ([("a",), ("a",), ("b",)], [("a",), ("b",), ("b",)], False, False),
    ],
)
def test_official_match(gold, pred, order_matters, expected):
    assert official_match(gold, pred, order_matters) is expected


def test_column_search_handles_many_interchangeable_columns():
    gold = [tuple(range(10)), tuple(range(10, 20))]
    pred = [tuple(reversed(row)) for row in gold]
    start = time.monotonic()
    assert official_match(gold, pred, order_matters=False)
    assert official_match([(0,) * 12] * 50, [(0,) * 12] * 50, order_matters=False)
    assert time.monotonic() - start < 1


def test_seed_matcher():
    assert seed_match([(1.0000001, " a ")], [(1.0, "a")])  # rounding and stripping
    assert seed_match([(1,), (2,)], [(2,), (1,)], order_matters=True)  # ORDER BY ignored
    assert not seed_match([(1, "a")], [("a", 1)])  # no column permutation
    assert seed_match([(None, 1), (2, "x")], [(2, "x"), (None, 1)])  # mixed types sort


@pytest.mark.parametrize(
    "sql, prepared",
    [
        ("SELECT DISTINCT a FROM t", "SELECT  a FROM t"),
        ("SELECT count(DISTINCT a) FROM t", "SELECT count( a) FROM t"),
        ("SELECT T1.distinct FROM t AS T1", "SELECT T1. FROM t AS T1"),  # the official token quirk
        ("SELECT \"distinct\", 'distinct', distinct_x FROM t", "SELECT \"distinct\", 'distinct', distinct_x FROM t"),
        ("SELECT a FROM t; SELECT b FROM t", "SELECT a FROM t; "),
        ("SELECT a FROM t WHERE b > = 1", "SELECT a FROM t WHERE b >= 1"),
        ("  ", ""),
    ],
)
def test_prepare_sql(sql, prepared):
    assert prepare_sql(sql) == prepared


def test_strip_distinct_shortcut_agrees_with_sqlparse():
    # Text without ";", "go" or "distinct" skips sqlparse; it must come back exactly as sqlparse gives it.
    from sqlparse.engine import FilterStack

    texts = [case[key] for case in CASES for key in ("gold", "pred")]
    texts += [json.loads(line)["sql"] for line in (FIXTURES / "hardness.jsonl").read_text().splitlines()]
    for text in texts:
        statement = next(iter(FilterStack().run(text)), None)
        expected = "" if statement is None else "".join(
            t.value for t in statement.flatten() if t.value.lower() != "distinct")
        assert strip_distinct(text) == expected


@pytest.mark.parametrize(
    "sql", [";", ";;", " ; -- x", "/* x", "SELECT a FROM t;", "SELECT a FROM t;;", "SELECT a FROM t; ;",
            "; SELECT a FROM t", "SELECT a FROM t; -- x", "SELECT a FROM t; SELECT 1", "SELECT a FROM t -- x\n;"],
)
def test_sqlite3_statement_agrees_with_python_sqlite3(sql):
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a)")
    conn.execute("INSERT INTO t VALUES (1)")
    try:
        expected = conn.execute(sql).fetchall()
    except sqlite3.ProgrammingError:
        expected = "error"
    statement, error = sqlite3_statement(sql)
    ours = "error" if error else conn.execute(statement).fetchall() if statement else []
    assert ours == expected


# --- the CLI, end to end -----------------------------------------------------------


@pytest.fixture
def dataset(tmp_path) -> Path:
    build(tmp_path / "database" / "shop" / "shop.sqlite", "shop.sql")
    gold = [
        "SELECT count(*) FROM singer\tshop",  # easy
        "SELECT name FROM singer ORDER BY age\tshop",  # easy
        "SELECT name, age FROM singer WHERE age > 1\tshop",  # medium
        "SELECT DISTINCT country FROM singer WHERE age > (SELECT avg(age) FROM singer)\tshop",  # hard
        "SELECT country FROM singer WHERE age > 20 GROUP BY country ORDER BY count(*) DESC LIMIT 1\tshop",  # extra
    ]
    pred = [
        "SELECT count(*) FROM singer",
        "SELECT name FROM singer ORDER BY age DESC",
        "SELECT age, name FROM singer WHERE age > value \tthe official reader drops what follows a tab",
        "",
        "SELECT country FROM singer GROUP BY country ORDER BY count(*) DESC LIMIT 1",
    ]
    (tmp_path / "gold.sql").write_text("\n".join(gold) + "\n")
    (tmp_path / "pred.sql").write_text("\n".join(pred) + "\n")
    return tmp_path


def test_cli_scores_a_dataset(dataset, capsys):
    out = dataset / "per_example.jsonl"
    code = cli.main(["score", "--gold", str(dataset / "gold.sql"), "--pred", str(dataset / "pred.sql"),
                     "--db", str(dataset / "database"), "--per-example", str(out), "--no-progress"])
    assert code == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["easy", "medium", "hard", "extra", "all"]
    assert table[1].split() == ["count", "2", "1", "1", "1", "5"]
    assert table[3].split() == ["execution", "0.500", "1.000", "0.000", "1.000", "0.600"]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["index"] for r in records] == [0, 1, 2, 3, 4]
    assert [r["hardness"] for r in records] == ["easy", "easy", "medium", "hard", "extra"]
    assert [r["match"] for r in records] == [True, False, True, False, True]
    assert records[3]["pred_error"] == "empty prediction"
    assert all(set(r) >= {"index", "db_id", "match", "pred_error", "hardness"} for r in records)


def test_cli_rejects_mismatched_line_counts(dataset, capsys):
    (dataset / "short.sql").write_text("SELECT 1\nSELECT 2\n")
    code = cli.main(["score", "--gold", str(dataset / "gold.sql"), "--pred", str(dataset / "short.sql"),
                     "--db", str(dataset / "database"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("error: ") and "5 gold examples" in err[-1] and "2 lines" in err[-1]


def test_read_gold_and_predictions_follows_the_official_file_format(tmp_path):
    # SParC/CoSQL files separate interactions with blank lines, in both files.
    (tmp_path / "gold.sql").write_text("SELECT 1\tdb\nSELECT 2\tdb\n\nSELECT 3\tdb\n")
    (tmp_path / "pred.sql").write_text("SELECT 1\n  SELECT 2  \n\nSELECT value  \n")
    pairs = read_gold_and_predictions(tmp_path / "gold.sql", tmp_path / "pred.sql")
    assert [(p.index, p.gold, p.pred) for p in pairs] == [(0, "SELECT 1", "SELECT 1"), (1, "SELECT 2", "SELECT 2"),
                                                          (2, "SELECT 3", "SELECT value")]
    (tmp_path / "flat.sql").write_text("SELECT 1\nSELECT 2\n\n")  # a final blank line is an empty prediction
    assert [p.pred for p in read_gold_and_predictions(tmp_path / "gold.sql", tmp_path / "flat.sql")] == ["SELECT 1", "SELECT 2", ""]
    (tmp_path / "bad_gold.sql").write_text("SELECT 1\n")
    with pytest.raises(UserError, match="SQL<TAB>db_id"):
        read_gold_and_predictions(tmp_path / "bad_gold.sql", tmp_path / "bad_gold.sql")


def test_gold_files_as_users_write_them(dataset, capsys):
    """Files a probe wrote from Spider's JSON: a query holding tabs (11 in Spider train) was
    refused; an editor's byte-order mark made the first query's hardness unparsable; a WAL
    database's -shm companion was read as a corrupt database."""
    gold = (dataset / "gold.sql").read_text().splitlines()
    gold[1] = "SELECT name FROM singer\tORDER BY age\tshop"  # a tab inside the query
    (dataset / "tabs.sql").write_text("\ufeff" + "\n".join(gold) + "\n", encoding="utf-8")
    (dataset / "database" / "shop" / "shop.sqlite-shm").write_bytes(b"\0" * 32768)
    (dataset / "database" / "shop" / "shop.sqlite-journal").write_bytes(b"")
    assert cli.main(score_cli(dataset, gold="tabs.sql")) == 0
    assert capsys.readouterr().out.splitlines()[1].split() == ["count", "2", "1", "1", "1", "5"]  # the same hardness as gold.sql
    records = [json.loads(line) for line in (dataset / "out.jsonl").read_text().splitlines()]
    assert [r["match"] for r in records] == [True, False, True, False, True]


@pytest.mark.spider
def test_spider_train_gold_matches_itself(tmp_path, spider_train):
    gold = spider_train / "train_gold.sql"
    pred = tmp_path / "pred.sql"
    pred.write_text("".join(line.split("\t")[0] + "\n" for line in gold.read_text().splitlines()))
    out = tmp_path / "out.jsonl"
    assert cli.main(["score", "--gold", str(gold), "--pred", str(pred), "--db", str(spider_train / "database"),
                     "--per-example", str(out), "--no-progress"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    misses = [r for r in records if not r["match"]]
    # The README's three gold queries that fail on these files; everything else matches itself.
    assert len(records) == 6890
    assert sorted((r["db_id"], r["gold_error"] is not None) for r in misses) == [
        ("assets_maintenance", True), ("document_management", True), ("document_management", True)]


# --- bad input: one error line, exit 2, nothing written --------------------------------


def score_cli(dataset: Path, *extra: str, gold: str = "gold.sql", pred: str = "pred.sql") -> list[str]:
    return ["score", "--gold", str(dataset / gold), "--pred", str(dataset / pred), "--db", str(dataset / "database"),
            "--per-example", str(dataset / "out.jsonl"), "--no-progress", *extra]


def one_error(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
    return captured.err


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf"])
def test_cli_refuses_a_timeout_that_is_not_positive_and_finite(dataset, capsys, timeout):
    assert cli.main(score_cli(dataset, "--timeout", timeout)) == 2
    assert "--timeout must be a positive, finite number of seconds" in one_error(capsys)
    assert not (dataset / "out.jsonl").exists()


def test_cli_names_the_line_of_a_non_utf8_prediction_file(dataset, capsys):
    (dataset / "latin1.sql").write_bytes("SELECT 1\nSELECT name FROM singer WHERE name = 'Zoë'\n".encode("latin-1"))
    (dataset / "gold2.sql").write_text("SELECT 1\tshop\nSELECT name FROM singer\tshop\n")
    assert cli.main(score_cli(dataset, gold="gold2.sql", pred="latin1.sql")) == 2
    assert f"{dataset / 'latin1.sql'}:2: not UTF-8 text (byte 0xeb)" in one_error(capsys)


def test_cli_refuses_an_empty_gold_file(dataset, capsys):
    (dataset / "empty.sql").write_text("\n")
    assert cli.main(score_cli(dataset, gold="empty.sql", pred="empty.sql")) == 2
    assert "holds no gold examples" in one_error(capsys)
    assert not (dataset / "out.jsonl").exists()


@pytest.mark.parametrize("kind", [b"", b"SQLite format 3\x00", b"not a database at all" * 50])
def test_cli_refuses_a_corrupt_database_instead_of_scoring_it_as_bad_gold(dataset, capsys, kind):
    db = dataset / "database" / "shop" / "shop.sqlite"
    db.write_bytes(kind if kind != b"SQLite format 3\x00" else db.read_bytes()[:2000])  # empty, truncated, foreign
    assert cli.main(score_cli(dataset)) == 2
    assert f"corrupt database {db}" in one_error(capsys)
    assert not (dataset / "out.jsonl").exists()


def test_cli_refuses_a_db_id_that_leaves_the_database_root(dataset, capsys):
    # ../database/shop would find database/shop/shop.sqlite through the parent folder.
    (dataset / "escape.sql").write_text("SELECT count(*) FROM singer\t../database/shop\n")
    (dataset / "one.sql").write_text("SELECT count(*) FROM singer\n")
    assert cli.main(score_cli(dataset, gold="escape.sql", pred="one.sql")) == 2
    assert f"{dataset / 'escape.sql'}:1: db_id '../database/shop' is not a plain database name" in one_error(capsys)


def test_seed_matcher_keeps_distinct_as_the_reference_did(dbs):
    """The official evaluator strips DISTINCT from both queries; the seed project ran them as
    written, so a missing DISTINCT is a mismatch under --matcher seed (and --keep-distinct)."""
    db = dbs / "one" / "shop.sqlite"
    gold, pred = "SELECT DISTINCT country FROM singer", "SELECT country FROM singer"
    with Scorer() as official, Scorer(matcher="seed") as seed, Scorer(matcher="seed", keep_distinct=False) as stripped:
        assert official.score(db, gold, pred).match
        assert not seed.score(db, gold, pred).match
        assert stripped.score(db, gold, pred).match  # an explicit choice wins


def test_cli_seed_matcher_reports_that_it_keeps_distinct(dataset, capsys):
    (dataset / "d_gold.sql").write_text("SELECT DISTINCT country FROM singer\tshop\n")
    (dataset / "d_pred.sql").write_text("SELECT country FROM singer\n")
    argv = ["score", "--gold", str(dataset / "d_gold.sql"), "--pred", str(dataset / "d_pred.sql"),
            "--db", str(dataset / "database"), "--no-progress"]
    assert cli.main([*argv, "--matcher", "seed"]) == 0
    captured = capsys.readouterr()
    assert "matcher=seed keep_distinct=True" in captured.err
    assert captured.out.splitlines()[3].split()[-1] == "0.000"
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "matcher=official keep_distinct=False" in captured.err
    assert captured.out.splitlines()[3].split()[-1] == "1.000"


def test_a_verdict_reads_large_values_and_large_gold_results_that_the_official_evaluator_reads(tmp_path):
    """The sandbox's bomb caps (an 8 MiB value, a 64 MiB result) applied to the scorer too: a
    9 MiB document cell, or a gold of 420,000 rows, made the gold fail (string or blob too big,
    result too large), and every prediction on it scored 0 as bad gold."""
    path = tmp_path / "big.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE doc (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO doc VALUES (1, ?)", ("x" * (9 * 2**20),))
    conn.execute("CREATE TABLE big (id INTEGER PRIMARY KEY, name TEXT, val REAL)")
    conn.executemany("INSERT INTO big VALUES (?, ?, ?)", ((i, f"name{i % 1000}", i / 7) for i in range(420_000)))
    conn.commit()
    conn.close()
    with Scorer() as scorer:
        for gold in ("SELECT body FROM doc WHERE id = 1", "SELECT length(body) FROM doc", "SELECT * FROM big"):
            verdict = scorer.score(path, gold, gold)
            assert verdict.match and verdict.gold_error is None, (gold, verdict)
        assert not scorer.score(path, "SELECT * FROM big", "SELECT id, name FROM big").match
