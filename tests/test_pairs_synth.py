"""pairs synth: mutation families on a small real database, execution checks, selection caps,
determinism, the clean-split guard, the CLI, and a slice of the real Spider train split."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest
import sqlglot
from conftest import make_db

from text2sql_mlops.cli import main as cli
from text2sql_mlops.core.records import SYNTHETIC_PREFIX, Pair, pair_id
from text2sql_mlops.data.load import load_examples
from text2sql_mlops.pairs.mutations import MUTATIONS, candidate_sqls, function_case
from text2sql_mlops.pairs.synth import Negative, SynthConfig, cap_schema_errors, synthesize
from text2sql_mlops.prompts import build_messages, format_answer
from text2sql_mlops.schema.select import PromptConfig, prompt_schema
from text2sql_mlops.scoring.scorer import Scorer
from text2sql_mlops.sql.catalog import load_catalog
from text2sql_mlops.sql.sandbox import Sandbox

FIXTURES = Path(__file__).parent / "fixtures" / "synth"
GOLD_FILE = FIXTURES / "gold_queries.jsonl"
UNCAPPED = SynthConfig(max_schema_error_fraction=1.0)
WIDE = replace(UNCAPPED, max_errors_per_example=100, candidates_per_mutation=50)  # keeps every negative it finds


@pytest.fixture(scope="module")
def db_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "database"
    make_db(root / "school" / "school.sqlite", (FIXTURES / "school.sql").read_text())
    return root


@pytest.fixture(scope="module")
def examples(db_root):
    return load_examples(GOLD_FILE, db_root)


@pytest.fixture(scope="module")
def wide(examples):
    """Every negative the default search finds on the fixture queries (run once)."""
    return synthesize(examples, WIDE, progress=False)


def run(examples, **settings):
    return synthesize(examples, replace(UNCAPPED, **settings), progress=False)


def sqls(db_root, gold: str, family: str, seed: int = 0) -> list[str]:
    catalog = load_catalog(db_root / "school" / "school.sqlite")
    tree = sqlglot.parse_one(gold, read="sqlite")
    return list(candidate_sqls(tree, catalog, family, random.Random(seed), function_case(gold)))


# --------------------------------------------------------------------------- families


def test_every_family_finds_a_verified_negative_where_it_applies(examples, wide):
    pairs, summary = wide
    assert all(summary["per_family"][family] > 0 for family in MUTATIONS), summary["per_family"]
    found = Counter((p["meta"]["example_id"], p["meta"]["mutation"]) for p in pairs)
    for example in examples:
        missing = [family for family in example.extra["families"] if not found[example.id, family]]
        assert not missing, (example.query, missing)
    assert summary["examples"] == summary["examples_with_pairs"] == len(examples)


def test_families_that_do_not_apply_produce_nothing(db_root):
    gold = "SELECT count(*) FROM teacher"
    for family in ("wrong_column", "missing_join", "wrong_aggregation", "wrong_condition", "wrong_group_by", "wrong_order_limit"):
        assert sqls(db_root, gold, family) == [], family
    assert "SELECT count(*) FROM course" in sqls(db_root, gold, "wrong_table")


@pytest.mark.parametrize("family, gold, expected", [
    ("wrong_column", "SELECT name FROM teacher WHERE age > 40", "SELECT name FROM teacher WHERE salary > 40"),
    ("wrong_column", "SELECT name FROM teacher WHERE age > 40", "SELECT name FROM teacher WHERE budget > 40"),  # another table's
    ("wrong_table", "SELECT name FROM teacher WHERE age > 40", "SELECT name FROM department WHERE age > 40"),
    ("missing_join", "SELECT T1.name FROM teacher AS T1 JOIN department AS T2 ON T1.dept_id = T2.dept_id",
     "SELECT T1.name FROM teacher AS T1"),
    ("wrong_aggregation", "SELECT avg(salary) FROM teacher", "SELECT max(salary) FROM teacher"),
    ("wrong_aggregation", "SELECT avg(salary) FROM teacher", "SELECT salary FROM teacher"),
    ("wrong_aggregation", "SELECT name FROM teacher", "SELECT count(name) FROM teacher"),
    ("wrong_condition", "SELECT name FROM teacher WHERE age > 40 AND salary != 1", "SELECT name FROM teacher WHERE age < 40 AND salary != 1"),
    ("wrong_condition", "SELECT name FROM teacher WHERE age > 40 AND salary != 1", "SELECT name FROM teacher WHERE age > 40 AND salary = 1"),
    ("wrong_condition", "SELECT name FROM teacher WHERE age > 40 AND salary != 1", "SELECT name FROM teacher WHERE age > 41 AND salary != 1"),
    ("wrong_condition", "SELECT name FROM teacher WHERE age > 40 AND salary != 1", "SELECT name FROM teacher WHERE age > 40 OR salary != 1"),
    ("wrong_condition", "SELECT name FROM teacher WHERE age > 40 AND salary != 1", "SELECT name FROM teacher WHERE salary != 1"),
    ("wrong_condition", "SELECT name FROM teacher WHERE age > 40", "SELECT name FROM teacher"),
    ("wrong_condition", "SELECT name FROM teacher WHERE dept_id NOT IN (SELECT dept_id FROM department WHERE budget > 5)",
     "SELECT name FROM teacher WHERE dept_id NOT IN (SELECT dept_id FROM department WHERE budget < 5)"),
    ("wrong_group_by", "SELECT dept_id, count(*) FROM teacher GROUP BY dept_id HAVING count(*) > 1",
     "SELECT dept_id, count(*) FROM teacher"),  # the HAVING goes with its GROUP BY
    ("wrong_group_by", "SELECT dept_id, count(*) FROM teacher GROUP BY dept_id", "SELECT dept_id, count(*) FROM teacher GROUP BY age"),
    ("wrong_order_limit", "SELECT name FROM teacher ORDER BY salary DESC LIMIT 3", "SELECT name FROM teacher ORDER BY salary ASC LIMIT 3"),
    ("wrong_order_limit", "SELECT name FROM teacher ORDER BY salary DESC LIMIT 3", "SELECT name FROM teacher ORDER BY salary DESC LIMIT 4"),
    ("wrong_order_limit", "SELECT name FROM teacher ORDER BY salary DESC LIMIT 3", "SELECT name FROM teacher ORDER BY salary DESC"),
])
def test_family_edits_the_tree(db_root, family, gold, expected):
    assert expected in sqls(db_root, gold, family)


def test_and_becomes_or_inside_a_longer_conjunction_keeps_its_grouping(db_root):
    out = sqls(db_root, "SELECT name FROM teacher WHERE age > 40 AND salary > 1 AND dept_id = 2", "wrong_condition")
    assert "SELECT name FROM teacher WHERE (age > 40 OR salary > 1) AND dept_id = 2" in out


def test_edits_are_a_pure_function_of_gold_catalog_and_seed(db_root):
    gold = "SELECT T1.name FROM teacher AS T1 JOIN department AS T2 ON T1.dept_id = T2.dept_id WHERE T2.budget > 100000"
    for family in MUTATIONS:
        assert sqls(db_root, gold, family, seed=3) == sqls(db_root, gold, family, seed=3)
    assert sqls(db_root, gold, "wrong_column", seed=3) != sqls(db_root, gold, "wrong_column", seed=4)


def test_string_literals_in_double_quotes_are_not_columns(db_root):
    out = sqls(db_root, 'SELECT name FROM department WHERE building = "North"', "wrong_column")
    assert out and all('"North"' in sql for sql in out)


# --------------------------------------------------------------------------- execution checks


def test_every_kept_negative_is_verified_different_from_gold(db_root, wide):
    pairs, _ = wide
    with Scorer() as scorer, Sandbox() as sandbox:
        for pair in pairs:
            meta = pair["meta"]
            db = db_root / meta["db_id"] / f"{meta['db_id']}.sqlite"
            assert not scorer.score(db, meta["gold_sql"], meta["rejected_sql"]).match, meta["rejected_sql"]
            assert scorer.score(db, meta["gold_sql"], meta["chosen_sql"]).match
            ran = sandbox.execute(db, meta["rejected_sql"])
            assert ran.ok == meta["rejected_executable"]
            assert (meta["rejected_error_type"] in {"wrong_result", "wrong_row_count", "empty_result"}) == ran.ok


def test_pair_records_follow_the_contract(db_root, examples, wide):
    pairs, _ = wide
    first = examples[2]
    prompt = build_messages(prompt_schema(first.db_path, first.question, PromptConfig(), None, first.db_id).text, first.question)
    for pair in pairs:
        meta = pair["meta"]
        assert Pair.from_dict(pair, "synthesized").to_dict() == pair  # every meta key, each of its type
        assert meta["pair_type"] == SYNTHETIC_PREFIX + meta["mutation"] and meta["source"] == "synthetic"
        assert meta["gold_fallback"] is True and meta["turn"] == 1 and meta["chosen_executable"] is True
        assert meta["chosen_reward"] == 1.0 and meta["rejected_reward"] == (0.2 if meta["rejected_executable"] else -0.2)
        assert meta["reward_margin"] == pytest.approx(1.0 - meta["rejected_reward"])
        assert pair["chosen"] == format_answer(meta["chosen_sql"]) and pair["rejected"] == format_answer(meta["rejected_sql"])
        assert pair["id"] == pair_id(pair["prompt"], pair["chosen"], pair["rejected"])
        if meta["example_id"] == first.id:
            assert pair["prompt"] == prompt  # the rollout's first-turn prompt, exactly
    assert len({p["id"] for p in pairs}) == len(pairs)


def test_chosen_is_the_gold_printed_like_the_negatives_or_as_written(examples):
    pairs, _ = run(examples[2:3])
    assert pairs[0]["meta"]["chosen_sql"] == "SELECT T1.name, T2.name FROM teacher AS T1 JOIN department AS T2 ON T1.dept_id = T2.dept_id WHERE T2.budget > 100000"
    pairs, _ = run(examples[2:3], chosen="gold")
    assert pairs[0]["meta"]["chosen_sql"] == examples[2].query == pairs[0]["meta"]["gold_sql"]


def test_a_mutation_that_returns_the_gold_result_is_dropped(examples, db_root):
    # One row: MIN, SUM, AVG and no aggregate at all return the same budget as MAX; only COUNT differs.
    budget = next(e for e in examples if e.query == "SELECT max(budget) FROM department WHERE dept_id = 1")
    candidates = sqls(db_root, budget.query, "wrong_aggregation")
    assert {"SELECT min(budget) FROM department WHERE dept_id = 1", "SELECT budget FROM department WHERE dept_id = 1"} <= set(candidates)
    dropped = 0
    for seed in range(6):
        pairs, summary = run([budget], mutations=("wrong_aggregation",), candidates_per_mutation=50, seed=seed)
        assert [p["meta"]["rejected_sql"] for p in pairs] == ["SELECT count(budget) FROM department WHERE dept_id = 1"]
        assert summary["dropped_same_result"] == summary["candidates_executed"] - 1  # all tried before COUNT
        dropped += summary["dropped_same_result"]
    assert dropped > 0


def test_order_and_limit_edits_of_a_one_row_answer_are_all_dropped(db_root):
    # Flipped order, LIMIT 2 and no LIMIT all return the same single row: no negative at all.
    one_row = db_root.parent / "one_row.jsonl"
    one_row.write_text(json.dumps({"db_id": "school", "question": "Name of department 1?",
                                   "query": "SELECT name FROM department WHERE dept_id = 1 ORDER BY name DESC LIMIT 1"}))
    pairs, summary = run(load_examples(one_row, db_root), mutations=("wrong_order_limit",))
    assert pairs == [] and summary["dropped_same_result"] == summary["candidates_executed"] == 3


def test_an_example_given_twice_is_used_once(examples):
    pairs, summary = run(examples[:4])
    again, summary_again = run(examples[:4] + examples[1:3])
    assert again == pairs and summary_again["duplicate_examples"] == 2 and summary_again["examples"] == 6


def test_bad_gold_and_unparsable_gold_are_skipped(db_root):
    bad = db_root.parent / "bad.jsonl"
    bad.write_text("\n".join(json.dumps({"db_id": "school", "question": q, "query": sql}) for q, sql in [
        ("missing column", "SELECT wages FROM teacher"), ("not sql", "SELECT FROM WHERE (("),
    ]))
    pairs, summary = run(load_examples(bad, db_root))
    assert pairs == [] and summary["bad_gold"] == 2 and summary["examples_with_pairs"] == 0


# --------------------------------------------------------------------------- selection


@pytest.mark.parametrize("cap", [1, 2, 3])
def test_max_errors_per_example_holds(examples, cap):
    pairs, _ = run(examples, max_errors_per_example=cap)
    per_example = Counter(p["meta"]["example_id"] for p in pairs)
    assert max(per_example.values()) == cap and len(per_example) == len(examples)
    families = Counter((p["meta"]["example_id"], p["meta"]["mutation"]) for p in pairs)
    assert max(families.values()) == 1  # a family repeats only once every family had its turn


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 0.5])
def test_max_schema_error_fraction_holds_exactly(examples, fraction):
    pairs, summary = run(examples, max_errors_per_example=4, max_schema_error_fraction=fraction)
    failing = sum(not p["meta"]["rejected_executable"] for p in pairs)
    assert pairs and Fraction(failing, len(pairs)) <= Fraction(str(fraction))
    assert summary["executable_fraction"] == round(1 - failing / len(pairs), 4)
    uncapped, _ = run(examples, max_errors_per_example=4)
    assert any(not p["meta"]["rejected_executable"] for p in uncapped)


def test_schema_error_cap_cuts_just_enough_and_swaps_in_spares():
    def neg(executable: bool) -> Negative:
        return Negative("wrong_column", "SELECT 1", executable, "wrong_result" if executable else "no_such_column", 0)

    kept = [[neg(False), neg(True)] for _ in range(10)]  # 10 failing of 20
    cap_schema_errors(kept, [[] for _ in kept], Fraction(1, 5), random.Random(0))
    failing = sum(not n.executable for chosen in kept for n in chosen)
    assert failing == 2 and sum(map(len, kept)) == 12  # 2 <= 0.2 * 12, while 3 > 0.2 * 13
    kept = [[neg(False)] for _ in range(4)]
    spares = [[neg(True)], [neg(True)], [], []]
    cap_schema_errors(kept, spares, Fraction(0), random.Random(0))
    assert [len(chosen) for chosen in kept] == [1, 1, 0, 0] and all(n.executable for chosen in kept for n in chosen)


def test_prefer_executable_wrong_picks_running_negatives_first(examples):
    plain, plain_summary = run(examples, max_errors_per_example=1)
    preferred, summary = run(examples, max_errors_per_example=1, prefer_executable_wrong=True)
    assert summary["executable_fraction"] == 1.0 >= plain_summary["executable_fraction"]


def test_same_seed_same_output_other_seed_other_choices(examples):
    first, _ = run(examples, seed=7)
    again, _ = run(examples, seed=7)
    other, _ = run(examples, seed=8)
    assert first == again
    assert [p["id"] for p in first] != [p["id"] for p in other]


# --------------------------------------------------------------------------- command line


def test_cli_writes_pairs_and_prints_one_summary_line(db_root, tmp_path, capsys):
    out = tmp_path / "pairs.jsonl"
    code = cli(["pairs", "synth", "--dataset_path", str(GOLD_FILE), "--db-root", str(db_root), "--out", str(out),
                "--mutations", "wrong_condition,wrong_order_limit", "--limit", "6", "--offset", "1", "--no_progress",
                "--stats", str(tmp_path / "stats.json")])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])
    pairs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 1 and summary["pairs"] == len(pairs) > 0 and summary["examples"] == 6
    assert set(summary["per_family"]) == {"wrong_condition", "wrong_order_limit"}
    assert {p["meta"]["mutation"] for p in pairs} <= {"wrong_condition", "wrong_order_limit"}
    assert {"executable_fraction", "dropped_same_result", "wall_s"} <= set(summary)
    # --stats: the same summary plus the configuration that ran, defaults resolved (what `track` logs)
    stats = json.loads((tmp_path / "stats.json").read_text())
    config = stats.pop("config")
    assert {"out": str(out), **stats} == summary
    assert (config["mutations"], config["offset"], config["limit"], config["max_errors_per_example"], config["db_root"]) == (
        ["wrong_condition", "wrong_order_limit"], 1, 6, 2, str(db_root))


def test_output_dir_writes_the_reference_projects_three_files(db_root, tmp_path, capsys):
    """`pairs synth --output_dir DIR`, as the reference ran it: the same pairs as --out, one line
    per negative in synthetic_error_sql.jsonl, and the summary."""
    base = ["pairs", "synth", "--dataset_path", str(GOLD_FILE), "--db-root", str(db_root), "--limit", "6", "--no_progress"]
    assert cli([*base, "--out", str(tmp_path / "pairs.jsonl")]) == 0
    assert cli([*base, "--output_dir", str(tmp_path / "synth")]) == 0
    folder = tmp_path / "synth"
    assert (folder / "dpo_pairs.jsonl").read_text() == (tmp_path / "pairs.jsonl").read_text()
    pairs = [json.loads(line) for line in (folder / "dpo_pairs.jsonl").read_text().splitlines()]
    negatives = [json.loads(line) for line in (folder / "synthetic_error_sql.jsonl").read_text().splitlines()]
    assert [(n["error_sql"], n["mutation"], n["gold_sql"]) for n in negatives] == [
        (p["meta"]["rejected_sql"], p["meta"]["mutation"], p["meta"]["gold_sql"]) for p in pairs]
    assert json.loads((folder / "summary.json").read_text())["pairs"] == len(pairs) > 0
    assert cli([*base, "--output_dir", str(tmp_path / "synth")]) == 0  # its own folder is rewritten
    capsys.readouterr()
    assert cli([*base, "--out", str(tmp_path / "x.jsonl"), "--output_dir", str(tmp_path / "y")]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
    # a stats file inside the folder: the folder holds only its three files, so a rerun refused it
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    for out in (folder, tmp_path / "new"):  # a rerun, and the first run that made the rerun fail
        for stats in ("stats.json", "summary.json", "sub/stats.json"):
            assert cli([*base, "--output_dir", str(out), "--stats", str(out / stats)]) == 2
            err = capsys.readouterr().err
            assert f"{out / stats} is inside" in err and err.count("\n") == 1, err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before and not (tmp_path / "new").exists()
    assert cli([*base, "--output_dir", str(folder), "--stats", str(tmp_path / "stats.json")]) == 0
    assert json.loads((tmp_path / "stats.json").read_text()) == json.loads((folder / "summary.json").read_text())


def test_eval_overlap_is_left_out_before_the_limit(db_root, tmp_path, capsys):
    """An example sharing a question (or a database) with the evaluation set never becomes a pair."""
    from conftest import make_db

    first = json.loads(GOLD_FILE.read_text().splitlines()[0])
    make_db(tmp_path / "evaldb" / "other" / "other.sqlite", "CREATE TABLE t (a INTEGER);")
    evaluation = tmp_path / "dev.jsonl"
    evaluation.write_text(json.dumps({"db_id": "other", "question": first["question"].upper(), "query": "SELECT 1"}) + "\n")
    out = tmp_path / "pairs.jsonl"
    argv = ["pairs", "synth", "--dataset_path", str(GOLD_FILE), "--db_root", str(db_root), "--out", str(out),
            "--eval_dataset", str(evaluation), "--eval_db_root", str(tmp_path / "evaldb"), "--no_progress"]
    assert cli([*argv, "--limit", "2"]) == 0
    assert "left out 1 of" in capsys.readouterr().err
    questions = {json.loads(line)["meta"]["question"] for line in out.read_text().splitlines()}
    second, third = (json.loads(line)["question"] for line in GOLD_FILE.read_text().splitlines()[1:3])
    assert first["question"] not in questions and questions <= {second, third} and questions
    # The evaluation set on the same database: every example is left out.
    evaluation.write_text(json.dumps({"db_id": "school", "question": "Something else?", "query": "SELECT 1"}) + "\n")
    assert cli([*argv[:-2], str(db_root), "--no_progress"]) == 0
    assert out.read_text() == ""


@pytest.mark.parametrize("extra, message", [
    (["--mutations", "wrong_colour"], "--mutations"),
    (["--max_schema_error_fraction", "1.5"], "--max_schema_error_fraction"),
    (["--max_errors_per_example", "0"], "--max_errors_per_example"),
    (["--bogus"], "unrecognized"),
    (["--timeout_sec", "inf"], "--timeout_sec a positive, finite number"),
    (["--timeout_sec", "nan"], "--timeout_sec a positive, finite number"),
    (["--offset", "999"], "select none of the"),
    (["--spread", "maybe"], "expected true or false"),
])
def test_cli_bad_input_is_one_line_and_exit_2(db_root, tmp_path, capsys, extra, message):
    out = tmp_path / "pairs.jsonl"
    code = cli(["pairs", "synth", "--dataset_path", str(GOLD_FILE), "--db_root", str(db_root), "--out", str(out), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err and not out.exists()


@pytest.mark.parametrize("content", [b"", b"SQLite format 3\x00 and then nothing"], ids=["empty", "truncated"])
def test_cli_refuses_a_corrupt_database_instead_of_calling_its_gold_bad(tmp_path, capsys, content):
    # Before: every gold query "failed" on it, so exit 0 with no pairs and a note blaming the mutations.
    db = tmp_path / "database" / "school" / "school.sqlite"
    db.parent.mkdir(parents=True)
    db.write_bytes(content)
    out = tmp_path / "pairs.jsonl"
    code = cli(["pairs", "synth", "--dataset_path", str(GOLD_FILE), "--db_root", str(tmp_path / "database"), "--out", str(out), "--no_progress"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and not out.exists()
    assert captured.err.count("\n") == 1 and captured.err.startswith(f"error: corrupt database {db}")


def test_cli_missing_dataset_is_one_line(tmp_path, capsys):
    code = cli(["pairs", "synth", "--dataset_path", str(tmp_path / "nope.json"), "--out", str(tmp_path / "p.jsonl")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "not found" in err


# --------------------------------------------------------------------------- real Spider


def test_real_spider_train_negatives_differ_from_gold(spider_train):
    examples = load_examples(spider_train, split="train")[:20]
    pairs, summary = synthesize(examples, SynthConfig(), str(spider_train / "tables.json"), progress=False)
    assert summary["examples_with_pairs"] >= 18 and summary["bad_gold"] == 0
    with Scorer() as scorer:
        by_id = {example.id: example for example in examples}
        for pair in pairs:
            meta = pair["meta"]
            example = by_id[meta["example_id"]]
            assert not scorer.score(example.db_path, example.query, meta["rejected_sql"]).match, meta["rejected_sql"]
            assert scorer.score(example.db_path, example.query, meta["chosen_sql"]).match


def test_spread_takes_the_limit_evenly_spaced_as_rollout_does(db_root, tmp_path, capsys):
    """`--spread` picks the same positions as `rollout --spread`, so the two stages of a pipeline
    still draw on the same training questions."""
    from text2sql_mlops.data.load import take

    rows = [json.loads(line) for line in GOLD_FILE.read_text().splitlines()]
    out = tmp_path / "pairs.jsonl"
    assert cli(["pairs", "synth", "--dataset_path", str(GOLD_FILE), "--db_root", str(db_root), "--out", str(out),
                "--limit", "3", "--spread", "--no_progress"]) == 0
    questions = {json.loads(line)["meta"]["question"] for line in out.read_text().splitlines()}
    spread = [row["question"] for row in take(rows, 0, 3, spread=True)]
    assert spread != [row["question"] for row in rows[:3]] and questions and questions <= set(spread)
    assert cli(["pairs", "synth", "--dataset_path", str(GOLD_FILE), "--db_root", str(db_root), "--out", str(out),
                "--limit", "3", "--spread", "false", "--stats", str(tmp_path / "stats.json"), "--no_progress"]) == 0  # dvc.yaml's spelling
    first = {json.loads(line)["meta"]["question"] for line in out.read_text().splitlines()}
    assert first and first <= {row["question"] for row in rows[:3]}
    assert json.loads((tmp_path / "stats.json").read_text())["config"]["spread"] is False
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed[-1]["pairs"] == len(out.read_text().splitlines())
