"""The embedded demo dataset: layout, clean split, executable gold SQL, schema, determinism."""

from __future__ import annotations

import hashlib
import json
import random
import re
import sqlite3
from pathlib import Path

import pytest

from text2sql_mlops.core.errors import UserError
from text2sql_mlops.data.demo import build as demo_data
from text2sql_mlops.data.demo.build import build_demo
from text2sql_mlops.data.load import load_examples

LAYOUT = ["train_spider.json", "test_same_db.json", "dev.json", "tables.json", "train_gold.sql", "test_same_db_gold.sql",
          "dev_gold.sql", "README.md"]
SPLIT_FILES = {"train": "train_spider.json", "test_same_db": "test_same_db.json", "dev": "dev.json"}
SPIDER_TYPES = {"text", "number", "time", "boolean", "others"}

# what each category looks like in SQL; every one must occur in both splits
FEATURES = {
    "where": r"\bWHERE\b",
    "join": r"\bJOIN\b",
    "join of 3+ tables": r"\bJOIN\b.*\bJOIN\b",
    "aggregate": r"\b(COUNT|AVG|SUM|MIN|MAX)\(",
    "group by": r"\bGROUP BY\b",
    "having": r"\bHAVING\b",
    "order by": r"\bORDER BY\b",
    "limit": r"\bLIMIT\b",
    "in subquery": r"(?<!NOT) IN \(SELECT\b",
    "not in subquery": r"\bNOT IN \(SELECT\b",
    "scalar subquery": r"[<>=] \(SELECT\b",
    "union": r"\bUNION\b",
    "intersect": r"\bINTERSECT\b",
    "except": r"\bEXCEPT\b",
    "distinct": r"\bDISTINCT\b",
    "like": r"\bLIKE\b",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo") / "demo"
    return out, build_demo(out, seed=0)


def read_split(root: Path, split: str) -> list[dict]:
    return json.loads((root / SPLIT_FILES[split]).read_text(encoding="utf-8"))


def db_path(root: Path, db_id: str) -> Path:
    return root / "database" / db_id / f"{db_id}.sqlite"


def connect_read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)


def file_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_and_size(demo):
    root, _ = demo
    for name in LAYOUT:
        assert (root / name).is_file(), name
    databases = sorted(p.name for p in (root / "database").iterdir())
    assert databases == sorted(entry["db_id"] for entry in json.loads((root / "tables.json").read_text()))
    for db_id in databases:
        assert db_path(root, db_id).is_file()
    assert sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) < 2_000_000
    assert "Apache-2.0" in (root / "README.md").read_text()


def test_counts_and_clean_split_by_database(demo):
    root, summary = demo
    train, dev = read_split(root, "train"), read_split(root, "dev")
    train_dbs, dev_dbs = {ex["db_id"] for ex in train}, {ex["db_id"] for ex in dev}
    same_db = read_split(root, "test_same_db")
    assert summary["databases"] >= 5 and len(train_dbs | dev_dbs) == summary["databases"]
    assert len(train) >= 300 and len(dev) >= 40
    assert len(train_dbs) >= 4 and dev_dbs and not train_dbs & dev_dbs
    assert summary["questions"] == {"train": len(train), "test_same_db": len(same_db), "dev": len(dev)}
    assert summary["skipped_templates"] == []  # every template yields questions at the default seed
    for db_id, info in summary["per_database"].items():
        assert info["split"] == ("train" if db_id in train_dbs else "dev")
        assert 10 <= info["rows"] / info["tables"] <= 400  # small tables
        assert info["test_same_db"] == (demo_data.TEST_SAME_DB_PER_DATABASE if info["split"] == "train" else 0)


def test_test_same_db_holds_new_questions_on_training_databases(demo):
    root, _ = demo
    train, same_db = read_split(root, "train"), read_split(root, "test_same_db")
    assert {ex["db_id"] for ex in same_db} == {ex["db_id"] for ex in train}
    seen = {text for ex in train for text in (ex["question"].lower(), ex["query"])}
    assert not [ex for ex in same_db if ex["question"].lower() in seen or ex["query"] in seen]


def test_questions_are_filled_and_deduplicated(demo):
    root, _ = demo
    for split in SPLIT_FILES:
        examples = read_split(root, split)
        assert all(set(ex) == {"db_id", "question", "query"} for ex in examples)
        assert all("{" not in ex["question"] and "{" not in ex["query"] for ex in examples)
        assert len({(ex["db_id"], ex["question"]) for ex in examples}) == len(examples)
        assert len({(ex["db_id"], ex["query"]) for ex in examples}) == len(examples)


def test_gold_files_match_the_json(demo):
    root, _ = demo
    for split in SPLIT_FILES:
        lines = (root / f"{split}_gold.sql").read_text(encoding="utf-8").splitlines()
        assert lines == [f"{ex['query']}\t{ex['db_id']}" for ex in read_split(root, split)]


def test_every_gold_query_executes_read_only_and_most_return_rows(demo):
    root, _ = demo
    for split in SPLIT_FILES:
        examples = read_split(root, split)
        non_empty = 0
        for ex in examples:
            con = connect_read_only(db_path(root, ex["db_id"]))
            try:
                rows = con.execute(ex["query"]).fetchall()
            finally:
                con.close()
            non_empty += bool(rows)
        assert non_empty >= 0.9 * len(examples), split


def _missing_features(queries: list[str]) -> list[str]:
    return [name for name, pattern in FEATURES.items() if not any(re.search(pattern, q) for q in queries)]


def test_every_feature_is_in_train_and_in_the_pools_dev_is_drawn_from(demo):
    root, summary = demo
    assert not _missing_features([ex["query"] for ex in read_split(root, "train")])
    assert all(count > 0 for count in summary["categories"]["train"].values()), summary["categories"]["train"]
    # dev is a seeded uniform sample of DEV_PER_DATABASE questions per unseen database: rare constructs
    # (HAVING, EXCEPT) may miss the sample, but the pools it is drawn from hold every one of them
    pool = []
    for module in demo_data.DEV_DATABASES:
        con = connect_read_only(db_path(root, module.DB_ID))
        try:
            questions, _ = demo_data.database_questions(con, module, seed=0)
        finally:
            con.close()
        pool += [sql for _, _, sql in questions]
    assert not _missing_features(pool)
    dev = read_split(root, "dev")
    assert len(dev) == demo_data.DEV_PER_DATABASE * len(demo_data.DEV_DATABASES)
    assert {ex["query"] for ex in dev} <= set(pool)


def test_foreign_keys_are_declared_and_hold(demo):
    root, _ = demo
    for entry in json.loads((root / "tables.json").read_text()):
        con = connect_read_only(db_path(root, entry["db_id"]))
        try:
            declared = [fk for table in entry["table_names_original"]
                        for fk in con.execute(f"PRAGMA foreign_key_list({table})").fetchall()]
            assert len(declared) >= 2, entry["db_id"]
            assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        finally:
            con.close()


def test_tables_json_matches_the_sqlite_files(demo):
    root, _ = demo
    for entry in json.loads((root / "tables.json").read_text()):
        con = connect_read_only(db_path(root, entry["db_id"]))
        try:
            tables = [name for (name,) in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")]
            assert entry["table_names_original"] == tables
            assert len(entry["table_names"]) == len(tables)
            info = {table: {row[1]: row for row in con.execute(f"PRAGMA table_info({table})")} for table in tables}
            original = entry["column_names_original"]
            assert original[0] == [-1, "*"]
            assert len(entry["column_names"]) == len(original) == len(entry["column_types"])
            assert set(entry["column_types"]) <= SPIDER_TYPES
            assert sum(len(columns) for columns in info.values()) == len(original) - 1
            for t, column in original[1:]:
                assert column in info[tables[t]], (tables[t], column)
            for i in entry["primary_keys"]:
                t, column = original[i]
                assert info[tables[t]][column][5] > 0  # the pk flag of PRAGMA table_info
            expected = {((table, fk[3]), (fk[2], fk[4])) for table in tables
                        for fk in con.execute(f"PRAGMA foreign_key_list({table})")}
            listed = {((tables[original[a][0]], original[a][1]), (tables[original[b][0]], original[b][1]))
                      for a, b in entry["foreign_keys"]}
            assert listed == expected and entry["foreign_keys"]
        finally:
            con.close()


def test_the_pipeline_loader_reads_both_splits(demo):
    root, summary = demo
    for split in SPLIT_FILES:
        examples = load_examples(root, split=split)
        assert len(examples) == summary["questions"][split]
        assert all(Path(ex.db_path).is_file() for ex in examples)


def test_same_seed_gives_byte_identical_files_and_rebuild_replaces(demo, tmp_path):
    root, summary = demo
    again = tmp_path / "again"
    assert build_demo(again, seed=0)["questions"] == summary["questions"]
    assert file_hashes(again) == file_hashes(root)
    build_demo(again, seed=1)  # an earlier demo build may be replaced
    assert file_hashes(again) != file_hashes(root)


def test_refuses_to_replace_a_folder_that_is_not_a_demo_build(tmp_path):
    precious = tmp_path / "data"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="did not write"):
        build_demo(precious)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_a_rebuild_refuses_a_demo_build_a_user_added_to(demo, tmp_path):
    """`data demo --out data/demo` (README's rebuild) replaced the whole folder, and with it the
    runs and splits a user had put inside: only a build holding nothing else is replaced."""
    root, _ = demo
    built = tmp_path / "demo"
    build_demo(built, seed=0)
    for added in (built / "mysplits" / "dev.json", built / "database" / "art_museum" / "notes.txt"):
        added.parent.mkdir(exist_ok=True)
        added.write_text("keep me")
        before = file_hashes(built)
        with pytest.raises(UserError, match="files added to one"):
            build_demo(built, seed=1)
        assert file_hashes(built) == before
        added.unlink()
    build_demo(built, seed=1)  # untouched again: replaced
    assert file_hashes(built) != file_hashes(root)


def test_an_interrupted_build_leaves_nothing_behind(tmp_path, monkeypatch):
    def fail(summary):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(demo_data, "_readme", fail)  # fails after every database is written
    with pytest.raises(RuntimeError):
        build_demo(tmp_path / "demo")
    assert list(tmp_path.iterdir()) == []


def test_tied_order_keys_are_rejected(tmp_path):
    con = sqlite3.connect(tmp_path / "ties.sqlite")
    con.executescript("CREATE TABLE t (name TEXT, score INTEGER);"
                      "INSERT INTO t VALUES ('a', 3), ('b', 2), ('c', 2), ('d', 1);")
    templates = [{"category": "order_limit", "question": "Top {n}?",
                  "query": "SELECT name FROM t ORDER BY score DESC LIMIT {n}", "slots": [{"n": 1}, {"n": 2}]}]
    questions, unused = demo_data.generate_questions(con, templates, random.Random(0))
    assert [q for _, q, _ in questions] == ["Top 1?"] and unused == []  # LIMIT 2 would cut between b and c
    con.close()
