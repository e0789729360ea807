"""The clean-split guard: evaluation examples, questions and databases never reach training data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import CONCERT_SQL, make_db
from text2sql_mlops.errors import UserError
from text2sql_mlops.records import Example, Pair, example_id
from text2sql_mlops.split_guard import EvalSplit, leak_reason, load_eval_split, normalize_question, record_keys, refuse_leaks

DEV_QUESTION, DEV_SQL = "What is the average age?", "SELECT avg(age) FROM singer"
DEV_ID = example_id("concert_singer", DEV_QUESTION, DEV_SQL)


def pair_record(example: str, question: str, db_id: str) -> dict:
    return Pair.create([{"role": "user", "content": question}], "SELECT 1", "SELECT 2", pair_type="gold_vs_failed_attempt",
                       source="natural", gold_fallback=True, example_id=example, db_id=db_id, question=question, gold_sql="SELECT 1",
                       chosen_reward=1.0, rejected_reward=0.0, turn=1, chosen_executable=True, rejected_executable=True,
                       rejected_error_type="wrong_result").to_dict()


def example_record(example: str, question: str, db_id: str) -> dict:
    return Example(id=example, db_id=db_id, question=question, query="SELECT 1", db_path="x.sqlite").to_dict()


def trajectory_record(example: str, question: str, db_id: str) -> dict:
    return {"index": 0, "id": example, "db_id": db_id, "question": question, "gold": "SELECT 1", "turns": []}


KINDS = [pair_record, example_record, trajectory_record]


@pytest.fixture
def dev(spider_layout: Path) -> EvalSplit:
    return load_eval_split(str(spider_layout), split="dev")


def test_load_eval_split_of_a_spider_folder(spider_layout: Path, dev: EvalSplit):
    assert dev.source == f"{spider_layout} (dev)"
    assert dev.ids == {DEV_ID} and dev.questions == {"what is the average age?"} and dev.db_ids == {"concert_singer"}
    train = load_eval_split(str(spider_layout), split="train")
    assert len(train.ids) == 2 and train.db_ids == {"concert_singer"}


def test_load_eval_split_of_a_json_file(tmp_path: Path):
    make_db(tmp_path / "database" / "pets_1" / "pets_1.sqlite", CONCERT_SQL)
    path = tmp_path / "held_out.json"
    path.write_text(json.dumps([{"db_id": "pets_1", "question": "  How MANY singers? ", "query": "SELECT count(*) FROM singer"}]))
    split = load_eval_split(str(path))
    assert split.source == str(path) and split.db_ids == {"pets_1"} and split.questions == {"how many singers?"}
    assert split.ids == {example_id("pets_1", "  How MANY singers? ", "SELECT count(*) FROM singer")}


def test_normalize_question():
    assert normalize_question("  What IS\tthe   average\nage? ") == "what is the average age?"


@pytest.mark.parametrize("make", KINDS)
def test_leak_reasons_for_every_record_kind(dev: EvalSplit, make):
    # the same example (even on a renamed database and with another question)
    assert leak_reason(make(DEV_ID, "Something else?", "other_db"), dev) == f"example id {DEV_ID} is an evaluation example"
    # a question over an evaluation database
    assert leak_reason(make("x1", "How many concerts?", "concert_singer"), dev) == "database 'concert_singer' is an evaluation database"
    # the same question, asked with other case and spacing, over another database
    reason = leak_reason(make("x2", "  what is THE average   age?", "other_db"), dev)
    assert reason == "question '  what is THE average   age?' is an evaluation question"
    # nothing shared
    assert leak_reason(make("x3", "What is the average age of dogs?", "pets_1"), dev) is None


def test_record_keys_reads_pairs_from_meta():
    assert record_keys(pair_record("e", "Q?", "db")) == ("e", "Q?", "db")
    assert record_keys(trajectory_record("e", "Q?", "db")) == ("e", "Q?", "db")
    assert record_keys({"meta": {"note": 1}, "id": "e"}) == ("e", None, None)  # meta without example_id: top level


def test_refuse_leaks_names_the_count_the_first_offender_and_the_fix(dev: EvalSplit):
    records = [pair_record("a", "Fine?", "pets_1"), pair_record("b", "Q?", "concert_singer"), pair_record(DEV_ID, "Q2?", "x")]
    with pytest.raises(UserError) as error:
        refuse_leaks(records, dev, where="pairs.jsonl", what="pairs")
    message = str(error.value)
    assert message.startswith(f"pairs.jsonl: 2 pairs belong to the evaluation set {dev.source} ")
    assert "(first: #2, database 'concert_singer' is an evaluation database)" in message
    assert "train on another split or hold out other databases" in message and "\n" not in message
    refuse_leaks(records[:1], dev, where="pairs.jsonl")  # clean: no error


def test_no_eval_split_is_a_no_op():
    refuse_leaks([trajectory_record(DEV_ID, DEV_QUESTION, "concert_singer")], None, where="anything")
    refuse_leaks(iter(()), None, where="anything")
