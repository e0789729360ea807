"""The clean-split guard: evaluation examples, questions and databases never reach training data.

Unit tests of the keys (schema fingerprints, normalised questions, the question index),
then each way around the guard that once passed `pairs mine`, `pairs merge` and
`train sft`, through the real commands on real SQLite files:

(a) a byte-identical copy of an evaluation database under a new name, in a new folder;
(b) an evaluation question with its "?" changed to ".";
(c) evaluation trajectories (and pairs) whose id/db_id/question were edited but whose
    prompts were not;
(d) an empty --eval_dataset.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from built_records import candidate, trajectory, turn
from conftest import CONCERT_SQL, make_db

from text2sql_mlops.cli import main as cli
from text2sql_mlops.core.errors import UserError
from text2sql_mlops.core.records import Example, Pair, Trajectory, example_id
from text2sql_mlops.data.guard import (
    EvalSplit,
    QuestionIndex,
    exclude_leaks,
    leak_reason,
    load_eval_split,
    normalize_question,
    record_keys,
    refuse_leaks,
    rollout_db_roots,
    schema_fingerprint,
)
from text2sql_mlops.pairs.build import build_pair
from text2sql_mlops.rollout.command import run_rollout
from text2sql_mlops.rollout.config import RolloutConfig

DEV_QUESTION, DEV_SQL = "What is the average age?", "SELECT avg(age) FROM singer"
DEV_ID = example_id("concert_singer", DEV_QUESTION, DEV_SQL)
PETS_SQL = """
CREATE TABLE pet (pet_id INTEGER PRIMARY KEY, name TEXT, kind TEXT, age INTEGER);
CREATE TABLE owner (owner_id INTEGER PRIMARY KEY, name TEXT, pet_id INTEGER REFERENCES pet(pet_id));
INSERT INTO pet VALUES (1, 'Rex', 'dog', 3), (2, 'Tom', 'cat', 5);
INSERT INTO owner VALUES (1, 'Ann', 1), (2, 'Bob', 2);
"""


def pair_record(example: str, question: str, db_id: str) -> Pair:
    return build_pair([{"role": "user", "content": question}], "SELECT 1", "SELECT 2", pair_type="gold_vs_failed_attempt",
                       source="natural", gold_fallback=True, example_id=example, db_id=db_id, question=question, gold_sql="SELECT 1",
                       chosen_reward=1.0, rejected_reward=0.0, turn=1, chosen_executable=True, rejected_executable=True,
                       rejected_error_type="wrong_result")


def example_record(example: str, question: str, db_id: str, db_path: str) -> Example:
    return Example(id=example, db_id=db_id, question=question, query="SELECT 1", db_path=db_path)


def trajectory_record(example: str, question: str, db_id: str) -> Trajectory:
    return trajectory(turn(1, [candidate()], messages=[{"role": "user", "content": f"Question: {question}"}]),
                      id=example, db_id=db_id, question=question)


@pytest.fixture
def dev(spider_layout: Path) -> EvalSplit:
    return load_eval_split(str(spider_layout), split="dev")


@pytest.fixture
def pets_root(tmp_path: Path) -> Path:
    """A training database folder: pets_1 (a schema of its own) and stars (a copy of concert_singer)."""
    root = tmp_path / "train_db"
    make_db(root / "pets_1" / "pets_1.sqlite", PETS_SQL)
    make_db(root / "stars" / "stars.sqlite", CONCERT_SQL)
    return root


# --------------------------------------------------------------------------- keys


def test_load_eval_split_of_a_spider_folder(spider_layout: Path, dev: EvalSplit):
    assert dev.source == f"{spider_layout} (dev)"
    assert dev.ids == {DEV_ID} and dev.questions == {"what is the average age"} and dev.db_ids == {"concert_singer"}
    concert = spider_layout / "database" / "concert_singer" / "concert_singer.sqlite"
    assert dev.schemas == {schema_fingerprint(concert): "concert_singer"} and dev.db_roots == (str(spider_layout / "database"),)
    train = load_eval_split(str(spider_layout), split="train")
    assert len(train.ids) == 2 and train.db_ids == {"concert_singer"}


def test_load_eval_split_of_a_json_file(tmp_path: Path):
    make_db(tmp_path / "database" / "pets_1" / "pets_1.sqlite", CONCERT_SQL)
    path = tmp_path / "held_out.json"
    path.write_text(json.dumps([{"db_id": "pets_1", "question": "  How MANY singers? ", "query": "SELECT count(*) FROM singer"}]))
    split = load_eval_split(str(path))
    assert split.source == str(path) and split.db_ids == {"pets_1"} and split.questions == {"how many singers"}
    assert split.ids == {example_id("pets_1", "  How MANY singers? ", "SELECT count(*) FROM singer")}


@pytest.mark.parametrize("content", ["", "[]", "\n\n"])
def test_an_empty_evaluation_set_is_an_error(tmp_path: Path, content: str):
    path = tmp_path / "dev.json"
    path.write_text(content)
    with pytest.raises(UserError, match=r"holds no examples"):  # data.py says so; the guard would too
        load_eval_split(str(path))


def test_normalize_question_drops_case_spacing_and_punctuation():
    assert normalize_question("  What IS\tthe   average\nage? ") == "what is the average age"
    assert normalize_question("What is the average age.") == normalize_question("what is the AVERAGE age ?!") == "what is the average age"
    assert normalize_question("Who's the singer_id, (really)?") == "who s the singer_id really"


def test_schema_fingerprint_is_the_sorted_lowercased_table_and_column_names(tmp_path: Path):
    base = make_db(tmp_path / "a.sqlite", "CREATE TABLE singer (id INTEGER, name TEXT); CREATE TABLE concert (id INTEGER, year INTEGER);")
    copy = tmp_path / "elsewhere" / "renamed.sqlite"
    copy.parent.mkdir()
    shutil.copyfile(base, copy)
    # other case, other table and column order, other types, other rows: the same schema
    same = make_db(tmp_path / "b.sqlite", "CREATE TABLE CONCERT (Year TEXT, ID INT); CREATE TABLE Singer (Name VARCHAR(9), Id INT);"
                                          "INSERT INTO singer VALUES ('x', 1);")
    renamed_column = make_db(tmp_path / "c.sqlite", "CREATE TABLE singer (id INTEGER, fullname TEXT); CREATE TABLE concert (id INTEGER, year INTEGER);")
    extra_table = make_db(tmp_path / "d.sqlite", "CREATE TABLE singer (id INTEGER, name TEXT); CREATE TABLE concert (id INTEGER, year INTEGER);"
                                                 "CREATE TABLE stadium (id INTEGER);")
    print_ = schema_fingerprint(base)
    assert schema_fingerprint(copy) == schema_fingerprint(same) == print_
    assert schema_fingerprint(renamed_column) != print_ and schema_fingerprint(extra_table) != print_
    with pytest.raises(UserError, match="database not found"):
        schema_fingerprint(tmp_path / "missing.sqlite")


def test_schema_fingerprints_are_cached_per_file(tmp_path: Path, monkeypatch):
    import text2sql_mlops.data.guard as guard

    db = make_db(tmp_path / "a.sqlite", "CREATE TABLE t (a INTEGER);")
    calls = []
    real = guard.load_catalog
    monkeypatch.setattr(guard, "load_catalog", lambda path, *args: calls.append(path) or real(path, *args))
    first = schema_fingerprint(db)
    assert schema_fingerprint(db) == schema_fingerprint(str(db)) == first and len(calls) == 1
    with sqlite3.connect(db) as conn:  # changed in place: read again
        conn.execute("ALTER TABLE t ADD COLUMN b TEXT")
    assert schema_fingerprint(db) != first and len(calls) == 2


def test_question_index_finds_a_question_that_ends_a_line():
    index = QuestionIndex(["what is the average age", "how many singers", "list names", "count"])
    assert index.find("Database schema:\nCREATE TABLE singer (age INTEGER)\n\nQuestion: What is the AVERAGE age.") == "what is the average age"
    assert index.find("Tell me: how many singers?\nThanks") == "how many singers"
    assert index.find("List  names!") == "list names" and index.find("COUNT.") == "count"
    assert index.find("what is the average ages") is None  # whole words only
    assert index.find("account of the list of names") is None
    # another question that extends an evaluation question is not that question
    assert index.find("Question: how many singers are there from France?") is None
    assert index.find("") is None and QuestionIndex([]).find("anything") is None
    numbered = QuestionIndex(["question 1"])
    assert numbered.find("Question 10?") is None and numbered.find("question 1.") == "question 1"
    # a question over two lines (a line break in the dataset's question, a wrapped prompt) ends its last line
    assert index.find("Question: What is the\naverage age?") == "what is the average age"
    assert index.find("Question: What is the\r\n\n  average\nage?\n\n") == "what is the average age"
    assert index.find("Question: What is the\naverage age of singers?") is None  # still: ending, not occurring


def test_record_keys_reads_pairs_from_meta():
    assert record_keys(pair_record("e", "Q?", "db")) == ("e", "Q?", "db")
    assert record_keys(trajectory_record("e", "Q?", "db")) == ("e", "Q?", "db")
    assert record_keys(example_record("e", "Q?", "db", "db.sqlite")) == ("e", "Q?", "db")


def test_leak_reasons_for_every_record_kind(dev: EvalSplit, pets_root: Path):
    roots = [str(pets_root)]
    pets = str(pets_root / "pets_1" / "pets_1.sqlite")
    stars = str(pets_root / "stars" / "stars.sqlite")
    for make in (pair_record, trajectory_record):
        # the same example, whatever else it says
        assert leak_reason(make(DEV_ID, "Something else?", "pets_1"), dev, roots) == f"example id {DEV_ID} is an evaluation example"
        # the evaluation database, by name (found in the evaluation set's folder) and as a renamed copy
        assert leak_reason(make("x1", "How many concerts?", "concert_singer"), dev, roots) == "database 'concert_singer' is an evaluation database"
        assert leak_reason(make("x1", "How many concerts?", "stars"), dev, roots) == \
            f"database 'stars' ({stars}) has the schema of evaluation database 'concert_singer'"
        # the same question, with other case, spacing and punctuation, or ending a longer text
        assert leak_reason(make("x2", "  what is THE average   age.", "pets_1"), dev, roots) == \
            "question '  what is THE average   age.' is an evaluation question"
        assert leak_reason(make("x2", "So: what is the average age?", "pets_1"), dev, roots) == \
            f"question 'So: what is the average age?' contains evaluation question {DEV_QUESTION!r}"
        # a longer question that starts like it is another question
        assert leak_reason(make("x2", "What is the average age of pets?", "pets_1"), dev, roots) is None
        # nothing shared
        assert leak_reason(make("x3", "What is the mean age of dogs?", "pets_1"), dev, roots) is None
    example = example_record("x4", "How many pets?", "anything", stars)
    assert leak_reason(example, dev) == f"database 'anything' ({stars}) has the schema of evaluation database 'concert_singer'"
    assert leak_reason(example_record("x4", "How many pets?", "pets_1", pets), dev) is None


def test_prompts_are_checked_whatever_the_metadata_says(dev: EvalSplit, pets_root: Path):
    roots = [str(pets_root)]
    pair = replace(pair_record("x", "How many pets?", "pets_1"),
                   prompt=[{"role": "system", "content": "Answer."}, {"role": "user", "content": f"Schema: pet(age)\nQuestion: {DEV_QUESTION}"}])
    assert leak_reason(pair, dev, roots) == f"a user message of its prompt contains evaluation question {DEV_QUESTION!r}"
    repaired = trajectory_record("x", "How many pets?", "pets_1")
    repaired.turns.append(turn(2, [candidate()], messages=[{"role": "user", "content": [{"type": "text", "text": DEV_QUESTION.upper()}]}]))
    assert leak_reason(repaired, dev, roots) == f"a user message of turn 2 contains evaluation question {DEV_QUESTION!r}"


def test_refuse_leaks_names_the_count_the_first_offender_and_the_fix(dev: EvalSplit, pets_root: Path):
    records = [pair_record("a", "Fine?", "pets_1"), pair_record("b", "Q?", "concert_singer"), pair_record(DEV_ID, "Q2?", "x")]
    with pytest.raises(UserError) as error:
        refuse_leaks(records, dev, where="pairs.jsonl", what="pairs", db_roots=[str(pets_root)])
    message = str(error.value)
    assert message.startswith(f"pairs.jsonl: 2 pairs belong to the evaluation set {dev.source} ")
    assert "(first: #2, database 'concert_singer' is an evaluation database)" in message
    assert "train on another split or hold out other databases" in message and "\n" not in message
    refuse_leaks(records[:1], dev, where="pairs.jsonl", db_roots=[str(pets_root)])  # clean: no error


def test_a_database_the_guard_cannot_find_is_an_error_not_a_pass(dev: EvalSplit, pets_root: Path):
    with pytest.raises(UserError) as error:
        refuse_leaks([pair_record("a", "Fine?", "pets_1")], dev, where="train dpo", what="pairs")
    message = str(error.value)
    assert message.startswith(f"train dpo: cannot check pairs #1 against the evaluation set {dev.source}: its database 'pets_1' is not in ")
    assert message.endswith("pass --db_root DIR, the folder holding the training databases") and "\n" not in message
    with pytest.raises(UserError, match="names no database"):
        refuse_leaks([pair_record("a", "Fine?", "")], dev, where="x")
    # leaks are reported before records that could not be checked
    with pytest.raises(UserError, match="1 pairs belong to the evaluation set"):
        refuse_leaks([pair_record("a", "Fine?", "pets_1"), pair_record("b", DEV_QUESTION, "pets_1")], dev, where="x", what="pairs")


def test_no_eval_split_is_a_no_op():
    refuse_leaks([trajectory_record(DEV_ID, DEV_QUESTION, "concert_singer")], None, where="anything")
    refuse_leaks(iter(()), None, where="anything")
    assert exclude_leaks([1, 2], None, where="anything") == [1, 2]


def test_rollout_db_roots_come_from_run_json(tmp_path: Path, pets_root: Path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "trajectories.jsonl").write_text("")
    (run / "run.json").write_text(json.dumps({"dataset_path": "x.json", "db_root": str(pets_root)}))
    spider = tmp_path / "spider"
    (spider / "database").mkdir(parents=True)
    (tmp_path / "run2").mkdir()
    (tmp_path / "run2" / "run.json").write_text(json.dumps({"dataset_path": str(spider), "db_root": None}))
    assert rollout_db_roots([str(run / "trajectories.jsonl"), str(run), str(tmp_path / "run2"), str(tmp_path / "bare.jsonl")]) == \
        [str(pets_root), str(spider / "database")]


def test_spider_train_databases_have_distinct_schemas(spider_train: Path):
    """Holding out whole databases refuses only those: no two Spider train databases share a schema."""
    databases = sorted((spider_train / "database").glob("*/*.sqlite"))
    assert len(databases) == 139 and len({schema_fingerprint(db) for db in databases}) == 139


# --------------------------------------------------------------------------- the bypasses, through the commands


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """A Spider-layout folder whose dev split (2 questions on concert_singer) is the evaluation set,
    with training databases beside it (pets_1, and stars: a byte copy of concert_singer), and
    another dataset with its own database folder (its `renamed` database is another copy)."""
    spider = tmp_path / "spider"
    concert = make_db(spider / "database" / "concert_singer" / "concert_singer.sqlite", CONCERT_SQL)
    make_db(spider / "database" / "pets_1" / "pets_1.sqlite", PETS_SQL)
    for copy in (spider / "database" / "stars" / "stars.sqlite", tmp_path / "other" / "database" / "renamed" / "renamed.sqlite"):
        copy.parent.mkdir(parents=True)
        shutil.copyfile(concert, copy)
    dev = [{"db_id": "concert_singer", "question": DEV_QUESTION, "query": DEV_SQL},
           {"db_id": "concert_singer", "question": "How many singers are there?", "query": "SELECT count(*) FROM singer"}]
    (spider / "dev.json").write_text(json.dumps(dev))
    (spider / "train_spider.json").write_text(json.dumps([{"db_id": "pets_1", "question": "How many pets are there?", "query": "SELECT count(*) FROM pet"}]))

    def dataset(path: Path, db_id: str, questions: list[tuple[str, str]]) -> Path:
        path.write_text(json.dumps([{"db_id": db_id, "question": q, "query": sql} for q, sql in questions]))
        return path

    return {
        "root": tmp_path, "spider": spider,
        "clean": dataset(spider / "clean.json", "pets_1", [("How many pets are there?", "SELECT count(*) FROM pet"),
                                                           ("List the names of all pets.", "SELECT name FROM pet")]),
        "copy_beside": dataset(spider / "copy.json", "stars", [("List the names of all stars.", "SELECT name FROM singer")]),
        "copy_elsewhere": dataset(tmp_path / "other" / "copy.json", "renamed", [("Names of the stars?", "SELECT name FROM singer")]),
        "punctuation": dataset(spider / "punctuation.json", "pets_1", [("what is the average age.", "SELECT avg(age) FROM pet")]),
        "empty": dataset(tmp_path / "empty.json", "x", []),
    }


def rollout(dataset: Path, out: Path, **settings) -> Path:
    """A mock-generator rollout with repairs and gold targets, so that every example gives SFT targets and pairs."""
    run_rollout(RolloutConfig(dataset_path=str(dataset), output_dir=str(out), generator="mock", max_turns=2, use_gold_when_failed=True,
                              progress=False, **settings))
    return out


def mine(trajectories: Path, out: Path) -> Path:
    """Pairs mined without the guard (as an older or a careless pipeline would)."""
    assert cli(["pairs", "mine", "--trajectories", str(trajectories), "--out", str(out), "--use_gold_when_failed"]) == 0
    assert out.read_text().strip(), "the test needs pairs"
    return out


def fake_model(root: Path) -> Path:
    """`train sft` refuses leaks before it loads any model: a config.json is all check_settings reads."""
    model = root / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}")
    return model


@pytest.fixture
def past_the_guard(monkeypatch):
    """`train sft` and `train dpo` stop right after the guard (and the targets) with this error: the guard let the data through."""
    from text2sql_mlops.training import dpo, sft

    def stop():
        raise UserError("PAST THE GUARD")

    for command in (sft, dpo):
        monkeypatch.setattr(command, "quiet_libraries", stop)


def run(argv: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = cli(argv)
    err = capsys.readouterr().err.strip()
    return code, err


def guard(world: dict[str, Path], *extra: str) -> list[str]:
    return ["--eval_dataset", str(world["spider"]), "--eval_split", "dev", *extra]


def mine_cmd(trajectories: Path, out: Path) -> list[str]:
    return ["pairs", "mine", "--trajectories", str(trajectories), "--out", str(out), "--use_gold_when_failed"]


def merge_cmd(pairs: Path, out: Path) -> list[str]:
    return ["pairs", "merge", "--inputs", str(pairs), "--output", str(out)]


def sft_cmd(world: dict[str, Path], trajectories: Path, *pairs: Path) -> list[str]:
    return ["train", "sft", "--model", str(fake_model(world["root"])), "--out", str(world["root"] / "adapter"),
            "--trajectories", str(trajectories), *(["--pairs", *map(str, pairs)] if pairs else [])]


def assert_refused(code: int, err: str, *needles: str) -> None:
    assert code == 2 and err.count("\n") == 0 and err.startswith("error: "), err
    for needle in needles:
        assert needle in err, err


def test_clean_training_data_passes_every_command(world, tmp_path, capsys, past_the_guard):
    run_dir = rollout(world["clean"], tmp_path / "run")
    pairs = mine(run_dir, tmp_path / "raw.jsonl")
    assert run([*mine_cmd(run_dir, tmp_path / "natural.jsonl"), *guard(world)], capsys)[0] == 0
    assert run([*merge_cmd(pairs, tmp_path / "merged.jsonl"), *guard(world)], capsys)[0] == 0
    assert_refused(*run([*sft_cmd(world, run_dir, pairs), *guard(world)], capsys), "PAST THE GUARD")


def test_a_renamed_copy_of_an_evaluation_database_is_refused(world, tmp_path, capsys, past_the_guard):
    """(a) stars (beside the evaluation database) and renamed (in another dataset's folder) are byte copies of concert_singer."""
    expected = "has the schema of evaluation database 'concert_singer'"
    elsewhere = rollout(world["copy_elsewhere"], tmp_path / "run_elsewhere")  # its run.json names its database folder
    code, err = run([*mine_cmd(elsewhere, tmp_path / "natural.jsonl"), *guard(world)], capsys)
    assert_refused(code, err, "error: pairs mine: 1 trajectories belong to the evaluation set", "database 'renamed' (", expected)
    assert not (tmp_path / "natural.jsonl").exists()
    assert_refused(*run([*sft_cmd(world, elsewhere), *guard(world)], capsys), "error: train sft: 1 trajectories", expected)

    pairs = mine(rollout(world["copy_beside"], tmp_path / "run_beside"), tmp_path / "raw.jsonl")
    code, err = run([*merge_cmd(pairs, tmp_path / "merged.jsonl"), *guard(world)], capsys)
    assert_refused(code, err, f"error: {pairs}: ", "pairs belong to the evaluation set", "database 'stars' (", expected)
    assert not (tmp_path / "merged.jsonl").exists()
    # pairs say db_id only: a database outside the evaluation set's folder is found through --db_root ...
    far_pairs = mine(elsewhere, tmp_path / "far.jsonl")
    assert_refused(*run([*merge_cmd(far_pairs, tmp_path / "merged.jsonl"), *guard(world)], capsys),
                   "cannot check pairs #1", "its database 'renamed' is not in", "pass --db_root DIR")
    assert_refused(*run([*merge_cmd(far_pairs, tmp_path / "merged.jsonl"), *guard(world, "--db_root", str(tmp_path / "other" / "database"))], capsys),
                   "database 'renamed' (", expected)
    clean_run = rollout(world["clean"], tmp_path / "clean_run")
    assert_refused(*run([*sft_cmd(world, clean_run, far_pairs), *guard(world, "--db_root", str(tmp_path / "other" / "database"))], capsys),
                   "error: train sft: ", "pairs belong to the evaluation set", "database 'renamed' (", expected)


def test_an_evaluation_question_with_other_punctuation_is_refused(world, tmp_path, capsys, past_the_guard):
    """(b) "what is the average age." is the evaluation question "What is the average age?"."""
    run_dir = rollout(world["punctuation"], tmp_path / "run")
    pairs = mine(run_dir, tmp_path / "raw.jsonl")
    expected = "question 'what is the average age.' is an evaluation question"
    assert_refused(*run([*mine_cmd(run_dir, tmp_path / "natural.jsonl"), *guard(world)], capsys), "error: pairs mine: 1 trajectories", expected)
    assert_refused(*run([*merge_cmd(pairs, tmp_path / "merged.jsonl"), *guard(world)], capsys), "pairs belong to the evaluation set", expected)
    assert_refused(*run([*sft_cmd(world, run_dir), *guard(world)], capsys), "error: train sft: 1 trajectories", expected)
    assert not (tmp_path / "natural.jsonl").exists() and not (tmp_path / "merged.jsonl").exists()


def test_evaluation_prompts_under_edited_metadata_are_refused(world, tmp_path, capsys, past_the_guard):
    """(c) trajectories and pairs of the evaluation examples, relabelled as questions over pets_1."""
    run_dir = rollout(world["spider"], tmp_path / "run", split="dev")
    trajectories = [json.loads(line) for line in (run_dir / "trajectories.jsonl").read_text().splitlines()]
    assert len(trajectories) == 2
    edited = tmp_path / "edited" / "trajectories.jsonl"
    edited.parent.mkdir()
    edited.write_text("".join(json.dumps({**t, "id": f"edited{k}", "db_id": "pets_1", "question": f"How many pets are there {k}?"}) + "\n"
                              for k, t in enumerate(trajectories)))
    pairs = [json.loads(line) for line in mine(run_dir, tmp_path / "raw.jsonl").read_text().splitlines()]
    edited_pairs = tmp_path / "edited_pairs.jsonl"
    edited_pairs.write_text("".join(json.dumps({**p, "meta": {**p["meta"], "example_id": f"edited{k}", "db_id": "pets_1", "question": "How many pets?"}}) + "\n"
                                    for k, p in enumerate(pairs)))

    expected = f"a user message of turn 1 contains evaluation question {DEV_QUESTION!r}"
    assert_refused(*run([*mine_cmd(edited, tmp_path / "natural.jsonl"), *guard(world)], capsys), "error: pairs mine: 2 trajectories", expected)
    assert_refused(*run([*merge_cmd(edited_pairs, tmp_path / "merged.jsonl"), *guard(world)], capsys),
                   f"{len(pairs)} pairs belong to the evaluation set", "a user message of its prompt contains evaluation question")
    assert_refused(*run([*sft_cmd(world, edited), *guard(world)], capsys), "error: train sft: 2 trajectories", expected)
    clean_run = rollout(world["clean"], tmp_path / "clean_run")
    assert_refused(*run([*sft_cmd(world, clean_run, edited_pairs), *guard(world)], capsys),
                   f"error: train sft: {len(pairs)} pairs belong", "a user message of its prompt contains evaluation question")


def test_an_empty_evaluation_set_is_refused(world, tmp_path, capsys, past_the_guard):
    """(d) --eval_dataset pointing at an empty file checks nothing: an error, not a pass."""
    run_dir = rollout(world["clean"], tmp_path / "run")
    pairs = mine(run_dir, tmp_path / "raw.jsonl")
    empty = ["--eval_dataset", str(world["empty"])]
    expected = f"{world['empty']}"
    assert_refused(*run([*mine_cmd(run_dir, tmp_path / "natural.jsonl"), *empty], capsys), expected, "holds no examples")
    assert_refused(*run([*merge_cmd(pairs, tmp_path / "merged.jsonl"), *empty], capsys), expected, "holds no examples")
    assert_refused(*run([*sft_cmd(world, run_dir), *empty], capsys), expected, "holds no examples")
    assert not (tmp_path / "natural.jsonl").exists() and not (tmp_path / "merged.jsonl").exists()


def test_rollout_and_synth_leave_out_copies_and_reworded_questions(world, tmp_path, capsys):
    """The stages that pick examples leave out the same overlap the later stages refuse."""
    mixed = world["spider"] / "mixed.json"  # beside its database folder
    mixed.write_text(json.dumps([
        {"db_id": "pets_1", "question": "How many pets are there?", "query": "SELECT count(*) FROM pet"},
        {"db_id": "stars", "question": "List the names of all stars.", "query": "SELECT name FROM singer"},  # (a)
        {"db_id": "pets_1", "question": "What is the average age.", "query": "SELECT avg(age) FROM pet"},  # (b)
    ]))
    capsys.readouterr()
    run_dir = rollout(mixed, tmp_path / "run", eval_dataset=str(world["spider"]))
    err = capsys.readouterr().err
    assert "rollout: left out 2 of 3 examples" in err and "has the schema of evaluation database 'concert_singer'" in err
    assert [json.loads(line)["question"] for line in (run_dir / "trajectories.jsonl").read_text().splitlines()] == ["How many pets are there?"]
    assert cli(["pairs", "synth", "--dataset_path", str(mixed), "--out", str(tmp_path / "synth.jsonl"), "--no_progress", *guard(world)]) == 0
    assert "pairs synth: left out 2 of 3 examples" in capsys.readouterr().err
    assert {json.loads(line)["meta"]["db_id"] for line in (tmp_path / "synth.jsonl").read_text().splitlines()} <= {"pets_1"}


def test_a_same_database_split_is_guarded_by_question_not_by_database(demo_dataset: Path):
    """test_same_db asks new questions of the training databases: training on those databases
    is the point, training on those questions is a leak."""
    from text2sql_mlops.data.load import load_examples

    guard = load_eval_split(str(demo_dataset), None, "dev", same_db_split="test_same_db")
    train = load_examples(str(demo_dataset), None, "train")
    held_out = load_examples(str(demo_dataset), None, "test_same_db")
    assert exclude_leaks(train, guard, "rollout") == train  # same databases, other questions: kept
    leaked = held_out[0]
    assert leak_reason(leaked, guard) == f"example id {leaked.id} is an evaluation example"
    assert "test_same_db" in guard.source
    dev = load_examples(str(demo_dataset), None, "dev")
    assert "evaluation" in leak_reason(dev[0], guard)
    # "none" (what params.yaml says for a dataset without such a split) is no second split
    assert load_eval_split(str(demo_dataset), None, "dev", same_db_split="none") == load_eval_split(str(demo_dataset), None, "dev")


def test_an_eval_output_is_never_mined_or_trained_on_even_without_eval_dataset(demo_dataset: Path, tiny_llama: Path,
                                                                               tmp_path: Path, capsys):
    """The content checks need --eval_dataset; without it, `pairs mine --trajectories <an eval
    of dev>` mined 60 pairs. An `eval` folder (its analysis.json) is refused by both readers."""
    ev, run = tmp_path / "ev", tmp_path / "run"
    assert cli(["eval", "--generator", "mock", "--dataset_path", str(demo_dataset), "--limit", "4", "--output_dir", str(ev),
                "--no_progress"]) == 0
    assert cli(["rollout", "--dataset_path", str(demo_dataset), "--limit", "4", "--output_dir", str(run), "--no_progress"]) == 0
    capsys.readouterr()
    for argv in (["pairs", "mine", "--trajectories", str(ev), "--out", str(tmp_path / "p.jsonl")],
                 ["pairs", "mine", "--trajectories", str(run), str(ev / "trajectories.jsonl"), "--out", str(tmp_path / "p.jsonl")],
                 ["train", "sft", "--model", str(tiny_llama), "--trajectories", str(ev), "--out", str(tmp_path / "sft")]):
        assert cli(argv) == 2, argv
        err = capsys.readouterr().err
        assert "is an `eval` output" in err and err.count("\n") == 1, err
    assert not (tmp_path / "p.jsonl").exists() and not (tmp_path / "sft").exists()
    # an eval killed after its trajectories, before analysis.json (written last): refused all the same
    (ev / "analysis.json").unlink()
    (ev / "examples.jsonl").unlink()
    assert cli(["pairs", "mine", "--trajectories", str(ev), "--out", str(tmp_path / "p.jsonl")]) == 2
    assert "is an `eval` output" in capsys.readouterr().err
    # and a rollout run again into an eval's folder does not make it trainable
    assert cli(["rollout", "--dataset_path", str(demo_dataset), "--limit", "4", "--output_dir", str(ev), "--no_progress",
                "--overwrite"]) == 0
    assert cli(["pairs", "mine", "--trajectories", str(ev), "--out", str(tmp_path / "p.jsonl")]) == 2
    capsys.readouterr()
    assert cli(["pairs", "mine", "--trajectories", str(run), "--out", str(tmp_path / "p.jsonl")]) == 0  # a rollout is fine
