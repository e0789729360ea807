"""The rollout end to end with the mock generator on real SQLite files.

The mock answers turn 1 with the gold SQL's first table renamed (``no such table``)
and later turns with the gold SQL itself; with two samples, sample 1 of turn 1 is
gold too. So every summary number below is worked out by hand from the dataset.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import CONCERT_SQL, make_db

from text2sql_mlops.cli import main as cli_main
from text2sql_mlops.core.errors import UserError
from text2sql_mlops.generation.mock import MockGenerator, broken_variant
from text2sql_mlops.rollout.command import merge_runs, run_rollout
from text2sql_mlops.rollout.config import (
    RolloutConfig,
    chunk_size_for,
    generator_options,
    ignored_flags,
    run_identity,
    sql_workers_for,
)
from text2sql_mlops.rollout.rewards import cost_reward, rule_reward
from text2sql_mlops.rollout.store import WORK_FILE
from text2sql_mlops.sql.plan import PlanFlags

GOLD = [
    "SELECT count(*) FROM singer",
    "SELECT name FROM singer WHERE country = 'France'",
    "SELECT name FROM singer ORDER BY age",  # its plan sorts: cost reward -0.02
    "SELECT T2.concert_name FROM singer_in_concert AS T1 JOIN concert AS T2 ON T1.concert_id = T2.concert_id",
    "SELECT nme FROM singer",  # bad gold: no such column
]
N, BAD = len(GOLD), 1
OUTPUTS = ("run.json", "trajectories.jsonl", "grpo_rollouts.jsonl")


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    make_db(tmp_path / "database" / "concert_singer" / "concert_singer.sqlite", CONCERT_SQL)
    examples = [{"db_id": "concert_singer", "question": f"Question {i}?", "query": sql} for i, sql in enumerate(GOLD)]
    path = tmp_path / "questions.json"
    path.write_text(json.dumps(examples))
    return path


def rollout(dataset: Path, out: Path, generator=None, **settings) -> dict:
    """Run a rollout; its summary as summary.json holds it."""
    config = RolloutConfig(dataset_path=str(dataset), output_dir=str(out), progress=False, **settings)
    return run_rollout(config, generator=generator).to_dict()


def read(out: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (out / name).read_text().splitlines()]


def assert_same_outputs(a: Path, b: Path) -> None:
    for name in OUTPUTS:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    summaries = [json.loads((folder / "summary.json").read_text()) for folder in (a, b)]
    assert [{k: v for k, v in s.items() if k != "timing"} for s in summaries][0] == {k: v for k, v in summaries[1].items() if k != "timing"}
    assert not (a / WORK_FILE).exists() and not (b / WORK_FILE).exists()


def mock_tokens(sql: str) -> int:
    return len(f"```sql\n{sql}\n```".split())


class Recording(MockGenerator):
    """The mock, remembering how many requests each generate call carried."""

    def __init__(self):
        self.batches: list[int] = []

    def generate(self, requests, params):
        self.batches.append(len(requests))
        return super().generate(requests, params)


class Crashing(MockGenerator):
    """The mock, failing on its (calls + 1)-th generate call, as a dying process would."""

    def __init__(self, calls: int):
        self.left = calls

    def generate(self, requests, params):
        if self.left == 0:
            raise RuntimeError("injected crash")
        self.left -= 1
        return super().generate(requests, params)


# --------------------------------------------------------------------------- every number


def test_verified_three_turns_every_number(dataset: Path, tmp_path: Path):
    recording = Recording()
    s = rollout(dataset, tmp_path / "out", recording, max_turns=3, repair_scope="verified", feedback_mode="error_only")
    good = N - BAD
    candidates = 2 * good + 3 * BAD  # good: broken, gold; bad gold: three failures
    assert recording.batches == [N, N, BAD]  # every active example of a turn in ONE generate call
    assert s["examples"] == N and s["candidates"] == candidates
    assert s["configuration"] == {"repair_scope": "verified", "feedback_mode": "error_only", "feedback_detail": "minimal",
                                  "max_turns": 3, "num_samples": 1, "uses_gold": True}
    assert s["first_turn_ex"] == 0.0
    assert s["final_ex_oracle"] == good / N
    assert "stops at the first candidate that matches gold" in s["final_ex_oracle_configuration"]
    # error_only feedback is gold-free, so the online run's answers can be read off this one
    assert s["final_ex_strict"] == good / N and s["final_ex_strict_configuration"].startswith("online scope")
    assert s["first_turn_candidate_ex"] == 0.0
    assert s["candidate_ex"] == good / candidates
    assert s["executable_rate"] == s["schema_valid_rate"] == good / candidates
    assert s["first_turn_executable_rate"] == 0.0 and s["final_executable_rate"] == good / N
    assert s["repair"] == {"first_turn_failed": N, "repaired": good, "repair_success_rate": good / N,
                           "repaired_seed_rule": good, "repair_success_rate_seed_rule": good / N}  # verified: the rules agree
    zero = dict.fromkeys(s["error_types"]["first_turn"], 0)
    assert s["error_types"] == {
        "first_turn": {**zero, "no_such_table": N},
        "all_candidates": {**zero, "no_such_table": N, "no_such_column": 2 * BAD},
        "final": {**zero, "no_such_column": BAD},
    }
    assert s["bad_gold"] == BAD
    assert s["turns"] == {"mean": candidates / N, "histogram": {"2": good, "3": BAD}, "stop_reasons": {"correct": good, "max_turns": BAD}}
    rule = -0.2 * N + 0.7 * good - 0.2 * BAD - 0.5 * BAD  # turn 1 errors, turn 2 fixes; bad gold: error, then wrong at the last turn
    assert s["rewards"]["mean_reward"] == pytest.approx(rule / candidates)
    assert s["rewards"]["mean_cost_reward"] == pytest.approx(-0.02 / candidates)
    assert s["rewards"]["mean_total_reward"] == pytest.approx((rule - 0.02) / candidates)
    assert s["generated_tokens"] == sum(mock_tokens(broken_variant(g)) for g in GOLD) + sum(mock_tokens(g) for g in GOLD) + mock_tokens(GOLD[-1])
    assert s["gold_fallback_targets"] == 0
    assert s["config"]["repair_scope"] == "verified" and s["config"]["examples"] == N
    assert s["timing"]["examples_per_s"] > 0 and s["timing"]["resumed_chunks"] == 0
    checked = {"examples", "candidates", "configuration", "first_turn_ex", "final_ex_oracle", "final_ex_oracle_configuration",
               "final_ex_strict", "final_ex_strict_configuration", "first_turn_candidate_ex", "candidate_ex", "executable_rate",
               "schema_valid_rate", "first_turn_executable_rate", "final_executable_rate", "repair", "error_types", "bad_gold",
               "turns", "rewards", "generated_tokens", "gold_fallback_targets", "config", "timing"}
    assert set(s) == checked  # a new number needs its expectation here


def test_trajectory_and_grpo_records(dataset: Path, tmp_path: Path):
    rollout(dataset, tmp_path / "out", max_turns=3, repair_scope="verified", feedback_mode="oracle_rows", feedback_detail="column")
    trajectories = read(tmp_path / "out", "trajectories.jsonl")
    assert [t["index"] for t in trajectories] == list(range(N)) and [t["gold"] for t in trajectories] == GOLD
    first = trajectories[1]
    assert first["gold_row_count"] == 2 and first["gold_error"] is None and first["schema_tables"]
    turn1, turn2 = first["turns"]
    assert turn1["candidates"][0]["sql"] == broken_variant(GOLD[1])
    assert turn1["candidates"][0] | {"text": None} == {
        "text": None, "sql": broken_variant(GOLD[1]), "num_tokens": mock_tokens(broken_variant(GOLD[1])), "executed": False,
        "error": "no such table: singer_missing", "error_type": "no_such_table", "row_count": None, "truncated": False,
        "schema_valid": False, "plan": None, "signals": ["error", "schema_invalid"], "correct": False,
        "reward": -0.2, "cost_reward": 0.0, "total_reward": -0.2,
    }
    assert turn1["feedback"].startswith("The query failed with an error: no such table: singer_missing\nInvalid identifier")
    # the next prompt is the first one plus the answer and the feedback
    assert turn2["messages"][:2] == turn1["messages"]
    assert turn2["messages"][2] == {"role": "assistant", "content": f"```sql\n{broken_variant(GOLD[1])}\n```"}
    assert turn2["messages"][3]["content"].startswith(turn1["feedback"])
    assert turn2["candidates"][0]["correct"] and turn2["candidates"][0]["row_count"] == 2 and turn2["feedback"] is None
    assert (first["final_sql"], first["final_correct"], first["stop_reason"]) == (GOLD[1], True, "correct")
    assert first["target"] == {"sql": GOLD[1], "source": "model"}
    bad = trajectories[-1]
    assert bad["gold_error"] and bad["gold_row_count"] is None and bad["target"] is None and len(bad["turns"]) == 3

    groups = read(tmp_path / "out", "grpo_rollouts.jsonl")
    assert len(groups) == sum(len(t["turns"]) for t in trajectories)
    assert groups[0] == {"id": trajectories[0]["id"], "turn": 1, "prompt": trajectories[0]["turns"][0]["messages"],
                         "completions": [trajectories[0]["turns"][0]["candidates"][0]["text"]], "rewards": [-0.2]}


def test_two_samples_example_level_is_any_correct(dataset: Path, tmp_path: Path):
    s = rollout(dataset, tmp_path / "out", max_turns=3, repair_scope="verified", num_samples=2, temperature=0.7)
    good = N - BAD
    candidates = 2 * N + 2 * 2 * BAD  # turn 1 for all; the bad gold goes on for two more turns
    assert s["first_turn_ex"] == s["final_ex_oracle"] == good / N  # sample 1 is gold at turn 1
    assert s["first_turn_candidate_ex"] == good / (2 * N)
    assert s["candidate_ex"] == good / candidates
    assert s["final_ex_strict"] is None  # sampling: the online run cannot be read off this one
    assert s["turns"]["histogram"] == {"1": good, "3": BAD}
    groups = read(tmp_path / "out", "grpo_rollouts.jsonl")
    assert all(len(g["completions"]) == len(g["rewards"]) == 2 for g in groups)
    assert groups[0]["rewards"] == [-0.2, 1.0]


# --------------------------------------------------------------------------- strict vs oracle


def test_strict_run_reports_strict_only(dataset: Path, tmp_path: Path):
    s = rollout(dataset, tmp_path / "out", max_turns=3, repair_scope="online", feedback_mode="error_only")
    assert s["configuration"]["uses_gold"] is False
    assert s["final_ex_strict"] == (N - BAD) / N and "strict" in s["final_ex_strict_configuration"]
    assert s["final_ex_oracle"] is None and s["final_ex_oracle_configuration"] is None
    assert s["turns"]["stop_reasons"] == {"executed": N - BAD, "max_turns": BAD}


@pytest.mark.parametrize(("scope", "mode"), [("online", "error_only"), ("online", "online_visible"), ("online_guarded", "online_visible")])
def test_strict_feedback_carries_no_gold(dataset: Path, tmp_path: Path, scope: str, mode: str):
    rollout(dataset, tmp_path / "out", max_turns=3, repair_scope=scope, feedback_mode=mode)
    feedback = [turn["feedback"] for t in read(tmp_path / "out", "trajectories.jsonl") for turn in t["turns"] if turn["feedback"]]
    assert feedback and not any("expected" in text for text in feedback)


@pytest.mark.parametrize(("scope", "mode"), [("verified", "result_status"), ("online_guarded", "oracle_rows"), ("online", "result_status")])
def test_oracle_run_reports_oracle_only(dataset: Path, tmp_path: Path, scope: str, mode: str):
    s = rollout(dataset, tmp_path / "out", max_turns=3, repair_scope=scope, feedback_mode=mode)
    assert s["configuration"]["uses_gold"] is True
    assert s["final_ex_oracle"] == (N - BAD) / N and "oracle" in s["final_ex_oracle_configuration"]
    assert s["final_ex_strict"] is None and s["final_ex_strict_configuration"] is None


def test_one_shot_gold_fallback_is_never_a_prediction(dataset: Path, tmp_path: Path):
    s = rollout(dataset, tmp_path / "out", max_turns=1, use_gold_when_failed=True)
    assert s["first_turn_ex"] == s["final_ex_strict"] == s["final_ex_oracle"] == 0.0
    assert s["gold_fallback_targets"] == N - BAD and s["rewards"]["mean_reward"] == -0.5
    for trajectory in read(tmp_path / "out", "trajectories.jsonl"):
        assert trajectory["final_sql"] == broken_variant(trajectory["gold"]) and not trajectory["final_correct"]
        expected = None if trajectory["gold_error"] else {"sql": trajectory["gold"], "source": "gold"}
        assert trajectory["target"] == expected


# --------------------------------------------------------------------------- resume, shards, merge


def test_resume_after_a_crash_gives_identical_files(dataset: Path, tmp_path: Path):
    # Chunks of 2 of the 5 examples: [0, 1] and [2, 3] take two turns, [4] (bad gold) three;
    # one chunk after the other, the 4th call is chunk 1's turn 2, so chunk 0 alone is saved.
    rollout(dataset, tmp_path / "reference", chunk_size=2, repair_scope="verified")
    with pytest.raises(RuntimeError, match="injected crash"):
        rollout(dataset, tmp_path / "out", Crashing(calls=3), chunk_size=2, repair_scope="verified")
    work = tmp_path / "out" / WORK_FILE
    assert [json.loads(line)["chunk"] for line in work.read_text().splitlines()] == [0]
    with open(work, "ab") as handle:  # and the kill came in the middle of appending chunk 1
        handle.write(b'{"chunk": 1, "ids": ["')
    recording = Recording()
    s = rollout(dataset, tmp_path / "out", recording, chunk_size=2, repair_scope="verified")
    assert recording.batches == [2, 2, 1, 1, 1]  # chunks 1 and 2 only
    assert s["timing"]["resumed_chunks"] == 1
    assert_same_outputs(tmp_path / "out", tmp_path / "reference")


def test_resume_after_a_crash_with_two_chunks_in_flight(dataset: Path, tmp_path: Path):
    # With SQL workers two chunks advance together, in an order that depends on which
    # evaluations finish first; whatever was saved before the crash is a prefix of the chunks,
    # the rest is redone, and the files equal the serial run's.
    rollout(dataset, tmp_path / "reference", chunk_size=2, repair_scope="verified", sql_workers=0)
    with pytest.raises(RuntimeError, match="injected crash"):
        rollout(dataset, tmp_path / "out", Crashing(calls=4), chunk_size=2, repair_scope="verified", sql_workers=2)
    work = tmp_path / "out" / WORK_FILE  # written with the first finished chunk
    saved = [json.loads(line)["chunk"] for line in work.read_text().splitlines()] if work.exists() else []
    assert saved == list(range(len(saved))) and len(saved) < 3
    s = rollout(dataset, tmp_path / "out", chunk_size=2, repair_scope="verified", sql_workers=2)
    assert s["timing"]["resumed_chunks"] == len(saved)
    assert_same_outputs(tmp_path / "out", tmp_path / "reference")


class FirstIds(MockGenerator):
    """The mock, remembering the first example of each generate call."""

    def __init__(self, frees_cpu: bool):
        self.frees_cpu = frees_cpu
        self.calls: list[str] = []

    def generate(self, requests, params):
        self.calls.append(requests[0].meta["id"])
        time.sleep(0.05)  # as a GPU would take: the workers finish what they were given meanwhile
        return super().generate(requests, params)


def test_sql_runs_beside_the_model_only_when_the_model_leaves_the_cpu_free(dataset: Path, tmp_path: Path):
    on_cpu, on_gpu = FirstIds(frees_cpu=False), FirstIds(frees_cpu=True)
    rollout(dataset, tmp_path / "cpu", on_cpu, chunk_size=2, repair_scope="verified")
    rollout(dataset, tmp_path / "gpu", on_gpu, chunk_size=2, repair_scope="verified")
    ids = [t["id"] for t in read(tmp_path / "cpu", "trajectories.jsonl")]
    chunk = {ids[0]: 0, ids[2]: 1, ids[4]: 2}
    assert [chunk[i] for i in on_cpu.calls] == [0, 0, 1, 1, 2, 2, 2]  # one chunk after the other
    # Two chunks in flight, served in turn (the one whose first SQL finished first goes first).
    assert [chunk[i] for i in on_gpu.calls] in ([0, 1, 0, 1, 2, 2, 2], [1, 0, 1, 0, 2, 2, 2])
    assert_same_outputs(tmp_path / "cpu", tmp_path / "gpu")


def test_backends_that_batch_themselves_get_whole_turns_and_cpu_models_no_sql_threads():
    config = RolloutConfig(dataset_path="d", output_dir="o")
    assert [chunk_size_for(replace(config, generator=name)) for name in ("mock", "hf", "vllm", "openai")] == [64, 64, 1024, 1024]
    assert chunk_size_for(replace(config, generator="vllm", chunk_size=8)) == 8
    assert [sql_workers_for(config, frees_cpu) for frees_cpu in (False, True)] == [0, 1]
    assert sql_workers_for(replace(config, sql_workers=2), False) == 2


class SlowMock(MockGenerator):
    """The mock, taking a while per call as a model does, and noting which calls overlapped SQL."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def generate(self, requests, params):
        time.sleep(self.seconds)
        return super().generate(requests, params)


def test_sql_workers_give_the_same_files_and_overlap_generation(dataset: Path, tmp_path: Path, monkeypatch):
    # Each query takes 100 ms; each generate call 100 ms (sleeps: the test needs little CPU). One chunk per example, two in flight:
    # the workers run one chunk's SQL while the model answers the other's turn.
    import text2sql_mlops.rollout.loop as loop

    real_observe = loop.observe

    def slow_observe(*args, **kwargs):
        time.sleep(0.1)
        return real_observe(*args, **kwargs)

    monkeypatch.setattr(loop, "observe", slow_observe)
    times = {}
    for workers in (0, 4):
        start = time.perf_counter()
        rollout(dataset, tmp_path / f"w{workers}", SlowMock(0.1), chunk_size=1, repair_scope="verified", sql_workers=workers)
        times[workers] = time.perf_counter() - start
    assert_same_outputs(tmp_path / "w0", tmp_path / "w4")
    # In a row: 11 generate calls and 12 slowed queries, about 2.3 s. Overlapped it measured
    # 0.70 of that on 2 busy cores; the bound leaves room for a loaded CI machine.
    assert times[4] < 0.85 * times[0], times


def test_resume_after_kill_9(dataset: Path, tmp_path: Path):
    rollout(dataset, tmp_path / "reference", chunk_size=2, repair_scope="verified")
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        import time
        from text2sql_mlops.generation.mock import MockGenerator
        from text2sql_mlops.rollout.command import RolloutConfig, generator_options, run_rollout

        class Stalls(MockGenerator):
            calls = 0
            def generate(self, requests, params):
                Stalls.calls += 1
                if Stalls.calls == 5:  # chunk 2, turn 1 (chunks 0 and 1 are saved): wait for the kill
                    time.sleep(600)
                return super().generate(requests, params)

        run_rollout(RolloutConfig(dataset_path={str(dataset)!r}, output_dir={str(out)!r}, progress=False,
                                  chunk_size=2, repair_scope="verified"), generator=Stalls())
    """)
    process = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parent)
    deadline = time.monotonic() + 60
    while not ((out / WORK_FILE).exists() and (out / WORK_FILE).read_bytes().endswith(b"\n")):
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "summary.json").exists()
    rollout(dataset, out, chunk_size=2, repair_scope="verified")
    assert_same_outputs(out, tmp_path / "reference")


def test_offset_limit_and_shard_pick_examples_by_position(dataset: Path, tmp_path: Path):
    rollout(dataset, tmp_path / "a", offset=1, limit=3)
    assert [t["index"] for t in read(tmp_path / "a", "trajectories.jsonl")] == [1, 2, 3]
    rollout(dataset, tmp_path / "b", offset=1, limit=3, shard="2/2")
    assert [t["index"] for t in read(tmp_path / "b", "trajectories.jsonl")] == [2]
    # --spread: the --limit examples evenly spaced over what follows --offset, not the first ones
    rollout(dataset, tmp_path / "c", offset=1, limit=2, spread=True)
    assert [t["index"] for t in read(tmp_path / "c", "trajectories.jsonl")] == [1, 3]
    rollout(dataset, tmp_path / "d", limit=99, spread=True)
    assert [t["index"] for t in read(tmp_path / "d", "trajectories.jsonl")] == list(range(len(GOLD)))


def test_a_finished_run_is_not_redone_and_other_settings_are_refused(dataset: Path, tmp_path: Path):
    out = tmp_path / "out"
    first = rollout(dataset, out)
    recording = Recording()
    assert rollout(dataset, out, recording) == first and recording.batches == []
    with pytest.raises(UserError, match=r"other settings \(max_turns: 3 -> 2\)"):
        rollout(dataset, out, max_turns=2)
    assert rollout(dataset, out, max_turns=2, overwrite=True)["configuration"]["max_turns"] == 2


@pytest.mark.parametrize("run_json", ['{"lr": 0.1}\n', "not json", "[1, 2]"])
def test_a_users_folder_holding_a_run_json_is_not_taken_for_a_rollout(dataset: Path, tmp_path: Path, capsys, run_json: str):
    """Any folder with a run.json passed for a rollout's: it was marked as this tool's and
    `--overwrite` replaced the user's run.json and summary.json; an unreadable run.json ended
    in a traceback. Only the marker, or a rollout's own run.json, makes a folder a rollout's."""
    users = tmp_path / "experiment"
    users.mkdir()
    (users / "run.json").write_text(run_json)
    (users / "summary.json").write_text('{"accuracy": 0.93}\n')
    before = {path.name: path.read_bytes() for path in users.iterdir()}
    for extra in ([], ["--overwrite"]):
        code = cli_main(["rollout", "--dataset_path", str(dataset), "--output_dir", str(users), "--generator", "mock", "--no_progress", *extra])
        err = capsys.readouterr().err
        assert code == 2 and "is a folder this tool did not write" in err and err.count("\n") == 1, err
    assert {path.name: path.read_bytes() for path in users.iterdir()} == before
    out = tmp_path / "out"
    rollout(dataset, out, max_turns=1)
    (out / "run.json").write_text("not json")  # a rollout's folder with its record spoiled: one line
    code = cli_main(["rollout", "--dataset_path", str(dataset), "--output_dir", str(out), "--generator", "mock", "--max_turns", "1", "--no_progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("error:") == 1 and "not a rollout's run record" in err.splitlines()[-1], err


def test_shards_merge_into_the_unsharded_run(dataset: Path, tmp_path: Path):
    rollout(dataset, tmp_path / "whole", chunk_size=2, repair_scope="verified")
    for i in (1, 2):
        s = rollout(dataset, tmp_path / f"shard{i}", chunk_size=2, repair_scope="verified", shard=f"{i}/2")
        assert s["examples"] == (3 if i == 1 else 2)
    assert cli_main(["rollout", "merge", "--inputs", str(tmp_path / "shard2"), str(tmp_path / "shard1"),
                     "--output_dir", str(tmp_path / "merged")]) == 0
    assert_same_outputs(tmp_path / "merged", tmp_path / "whole")


def test_shards_of_machines_that_keep_the_data_elsewhere_merge(dataset: Path, tmp_path: Path):
    """Machine B keeps the same dataset under another path: its shard is of the same run (the
    examples' hash pins the examples), which merge refused as "a shard of another rollout"."""
    import shutil

    elsewhere = tmp_path / "machine_b" / "data"
    shutil.copytree(dataset.parent / "database", elsewhere / "database")
    shutil.copy(dataset, elsewhere / dataset.name)
    rollout(dataset, tmp_path / "whole", chunk_size=2, repair_scope="verified")
    rollout(dataset, tmp_path / "shard1", chunk_size=2, repair_scope="verified", shard="1/2")
    rollout(elsewhere / dataset.name, tmp_path / "shard2", chunk_size=2, repair_scope="verified", shard="2/2")
    assert cli_main(["rollout", "merge", "--inputs", str(tmp_path / "shard1"), str(tmp_path / "shard2"),
                     "--output_dir", str(tmp_path / "merged")]) == 0
    assert_same_outputs(tmp_path / "merged", tmp_path / "whole")  # run.json: the first shard's paths
    rollout(dataset, tmp_path / "other", chunk_size=2, repair_scope="verified", shard="2/2", max_turns=2)
    with pytest.raises(UserError, match="a shard of another rollout"):  # a setting that changes results still differs
        merge_runs([str(tmp_path / "shard1"), str(tmp_path / "other")], str(tmp_path / "bad"))


def repairing_model(golds: dict[str, str]):
    """A server-side "model" that answers like the mock generator, but from the chat alone (a
    server sees no metadata): the question's gold SQL with its first table renamed on the first
    turn (SQLite: no such table), the gold SQL once feedback follows in the chat."""

    def answer(body: dict, index: int) -> str:
        users = [message["content"] for message in body["messages"] if message["role"] == "user"]
        gold = next(sql for question, sql in golds.items() if question in users[0])
        return f"```sql\n{gold if len(users) > 1 else broken_variant(gold)}\n```"

    return answer


def test_sharded_rollouts_through_an_openai_server_merge_into_the_unsharded_run(dataset: Path, tmp_path: Path, fake_openai):
    """Scale-out as the README's "Scale-out" runs it: one OpenAI-compatible server (here a fake
    `vllm serve`), two `rollout --shard i/2` processes asking it at once with bounded
    concurrency (two machines' worth), then `rollout merge`: the unsharded run's files."""
    golds = {example["question"]: example["query"] for example in json.loads(dataset.read_text())}
    server = fake_openai(fail_first=False, answer=repairing_model(golds))

    def command(out: Path, *extra: str) -> list[str]:
        return [sys.executable, "-m", "text2sql_mlops.cli", "rollout", "--dataset_path", str(dataset), "--output_dir", str(out),
                "--generator", "openai", "--base_url", server.base_url, "--model_name", "served-model", "--max_concurrency", "2",
                "--generator_option", "backoff_s=0.01", "--repair_scope", "verified", "--chunk_size", "2", "--no_progress", *extra]

    shards = [subprocess.Popen(command(tmp_path / f"shard{i}", "--shard", f"{i}/2"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for i in (1, 2)]
    for shard in shards:
        _, err = shard.communicate(timeout=300)
        assert shard.returncode == 0, err
    assert 1 < server.max_in_flight <= 4  # concurrent requests, at most max_concurrency per shard
    whole = subprocess.run(command(tmp_path / "whole"), capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    assert cli_main(["rollout", "merge", "--inputs", str(tmp_path / "shard1"), str(tmp_path / "shard2"),
                     "--output_dir", str(tmp_path / "merged")]) == 0
    assert_same_outputs(tmp_path / "merged", tmp_path / "whole")

    summary = json.loads((tmp_path / "merged" / "summary.json").read_text())
    good = N - BAD  # every first turn fails; the feedback reached the server and each good question was repaired
    assert (summary["examples"], summary["first_turn_ex"], summary["final_ex_oracle"]) == (N, 0.0, good / N)
    assert summary["repair"]["repaired"] == good
    assert len(server.bodies) == 2 * (2 * good + 3 * BAD)  # the shards' turns, then the whole run's: 2 per good question, 3 for bad gold


def test_merge_refuses_incomplete_or_mixed_shards(dataset: Path, tmp_path: Path):
    from text2sql_mlops.rollout.command import merge_runs

    rollout(dataset, tmp_path / "a1", shard="1/2")
    rollout(dataset, tmp_path / "b2", shard="2/2", max_turns=2)
    with pytest.raises(UserError, match="shards missing: 2/2"):
        merge_runs([str(tmp_path / "a1")], str(tmp_path / "m"))
    with pytest.raises(UserError, match="shard of another rollout"):
        merge_runs([str(tmp_path / "a1"), str(tmp_path / "b2")], str(tmp_path / "m"))
    with pytest.raises(UserError, match="given twice"):
        merge_runs([str(tmp_path / "a1"), str(tmp_path / "a1")], str(tmp_path / "m"))


# --------------------------------------------------------------------------- command line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: --dataset_path"),
        (["--dataset_path", "{dataset}", "--output_dir", "{out}", "--shard", "3/2"], "--shard 3/2: i must be between 1 and n"),
        (["--dataset_path", "{dataset}", "--output_dir", "{out}", "--feedback_mode", "gold"], "--feedback_mode 'gold' is not one of"),
        (["--dataset_path", "{dataset}", "--output_dir", "{out}", "--generator", "gpt"], "--generator 'gpt' is not one of"),
        (["--dataset_path", "{dataset}", "--output_dir", "{out}", "--max_turns", "0"], "--max_turns must be at least 1"),
        (["--dataset_path", "{dataset}", "--output_dir", "{out}", "--max-turns", "x"], "argument --max_turns"),
        (["--dataset_path", "{out}/none.json", "--output_dir", "{out}"], "dataset not found"),
        (["--dataset_path", "{dataset}", "--output_dir", "{out}", "--timeout_sec", "nan"], "--timeout_sec a positive, finite number of seconds"),
        (["--dataset_path", "{dataset}", "--output_dir", "{out}", "--timeout_sec", "inf"], "--timeout_sec a positive, finite number of seconds"),
        (["--dataset_path", "{dataset}", "--output_dir", "{out}", "--offset", "5"], "--offset 5 select none of the 5 examples"),
        (["--dataset_path", "{dataset}", "--output_dir", "{out}", "--progress_every", "-1"], "--progress_every must be at least 0"),
        (["--dataset_path", "{dataset}", "--output_dir", "{out}", "--limit", "0"], "select none of the 5 examples"),
        (["merge", "--inputs", "{out}", "--output_dir", "{out}/m"], "is not a finished rollout"),
    ],
)
def test_cli_errors_are_one_line(dataset: Path, tmp_path: Path, capsys, argv: list[str], message: str):
    args = [arg.format(dataset=dataset, out=tmp_path / "out") for arg in argv]
    assert cli_main(["rollout", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert not (tmp_path / "out" / "run.json").exists()


@pytest.mark.parametrize("spoil", [
    lambda db: db.write_bytes(b""),  # SQLite opens it as a database without tables
    lambda db: db.write_bytes(db.read_bytes()[:3000]),  # truncated
    lambda db: db.write_text("not a database"),
], ids=["empty", "truncated", "foreign"])
def test_cli_refuses_a_corrupt_database_before_writing_anything(dataset: Path, tmp_path: Path, capsys, spoil):
    db = dataset.parent / "database" / "concert_singer" / "concert_singer.sqlite"
    spoil(db)
    assert cli_main(["rollout", "--dataset_path", str(dataset), "--output_dir", str(tmp_path / "out"), "--no_progress"]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith(f"error: corrupt database {db}"), captured.err
    assert captured.out == "" and not (tmp_path / "out").exists()


def test_cli_refuses_an_empty_dataset(tmp_path: Path, capsys):
    (tmp_path / "empty.json").write_text("[]")
    assert cli_main(["rollout", "--dataset_path", str(tmp_path / "empty.json"), "--output_dir", str(tmp_path / "out"), "--no_progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds no examples" in err and not (tmp_path / "out").exists()


def test_cli_on_the_demo_train_split_never_imports_torch(tmp_path: Path):
    from text2sql_mlops.data.demo.build import build_demo

    build_demo(tmp_path / "demo")
    argv = ["rollout", "--dataset-path", str(tmp_path / "demo"), "--output-dir", str(tmp_path / "out"), "--limit", "40",
            "--max_turns", "3", "--repair_scope", "online_guarded", "--feedback_mode", "online_visible", "--no_progress"]
    probe = ("import sys; from text2sql_mlops.cli import main; code = main(%r); "
             "print('TORCH', 'torch' in sys.modules, file=sys.stderr); sys.exit(code)" % argv)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "TORCH False" in result.stderr
    headline = json.loads(result.stdout)
    assert headline["examples"] == 40 and headline["first_turn_ex"] == 0.0 and headline["final_ex_strict"] == 1.0
    assert headline["final_ex_oracle"] is None


def test_progress_every_prints_a_line_per_n_examples(dataset: Path, tmp_path: Path, capsys):
    """The reference's --progress_every N: plain lines for logs, besides (or without) the bar."""
    argv = ["rollout", "--dataset_path", str(dataset), "--output_dir", str(tmp_path / "out"),
            "--chunk_size", "2", "--progress_every", "4", "--no_progress"]
    assert cli_main(argv) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if " examples, final EX so far " in line]
    assert [line.split(" examples")[0] for line in lines] == ["rollout: 4/5", "rollout: 5/5"]  # every 4, and the end


# --------------------------------------------------------------------------- rewards


@pytest.mark.parametrize(
    ("correct", "executable", "turn", "max_turns", "reward"),
    [
        (True, True, 1, 3, 1.0), (True, True, 2, 3, 0.7), (True, True, 3, 3, 0.6), (True, True, 4, 5, 0.5),
        (False, True, 1, 3, 0.2), (False, False, 2, 3, -0.2), (False, True, 3, 3, -0.5), (False, False, 3, 3, -0.5),
        (True, True, 1, 1, 1.0), (False, True, 1, 1, -0.5),
    ],
)
def test_rule_reward(correct: bool, executable: bool, turn: int, max_turns: int, reward: float):
    assert rule_reward(correct, executable, turn, max_turns) == reward


def test_cost_reward():
    assert cost_reward(None) == 0.0
    assert cost_reward(PlanFlags(full_scans=1)) == 0.0  # one full scan is how small tables are read
    assert cost_reward(PlanFlags(full_scans=2, inner_full_scans=1, temp_btrees=1)) == -0.12
    assert cost_reward(PlanFlags(full_scans=9, inner_full_scans=5, looped_full_scans=2)) == -0.3



def test_generator_options_are_the_ones_given():
    config = RolloutConfig(dataset_path="d", output_dir="o", generator="hf", model_path="m", batch_size=8,
                           generator_option=("progress=false", "dtype=float32", "device=cpu"))
    assert generator_options(config) == {"model_path": "m", "batch_size": 8, "progress": False, "dtype": "float32", "device": "cpu"}
    quiet = RolloutConfig(dataset_path="d", output_dir="o", generator="hf", model_path="m", progress=False)
    assert generator_options(quiet) == {"model_path": "m", "progress": False}  # --no_progress silences the batch bar too
    served = RolloutConfig(dataset_path="d", output_dir="o", generator="openai", model_name="qwen", base_url="http://h/v1", max_concurrency=4)
    assert generator_options(served) == {"model": "qwen", "base_url": "http://h/v1", "max_concurrency": 4}
    # A profile's generation flags reach only the backends that declare them (--no_progress too).
    profiled = replace(served, batch_size=64, model_path="m", progress=False)
    assert generator_options(profiled) == generator_options(served) and ignored_flags(profiled) == ["batch_size", "model_path"]
    assert ignored_flags(config) == []
    # ... and cannot change the run: it is left out of the run's identity.
    assert run_identity(replace(served, batch_size=64), ["x"]) == run_identity(served, ["x"])
    assert run_identity(replace(config, batch_size=64), ["x"]) != run_identity(config, ["x"])
    with pytest.raises(UserError, match="KEY=VALUE"):
        generator_options(RolloutConfig(dataset_path="d", output_dir="o", generator_option=("oops",)))


def test_examples_overlapping_the_evaluation_set_are_left_out_before_the_limit(dataset: Path, tmp_path: Path, capsys):
    make_db(tmp_path / "evaldb" / "other" / "other.sqlite", "CREATE TABLE t (a INTEGER);")
    evaluation = tmp_path / "dev.json"
    evaluation.write_text(json.dumps([{"db_id": "other", "question": "question 0?", "query": "SELECT 1"}]))
    summary = rollout(dataset, tmp_path / "run", max_turns=1, limit=2, eval_dataset=str(evaluation),
                      eval_db_root=str(tmp_path / "evaldb"))
    assert "left out 1 of" in capsys.readouterr().err
    questions = [t["question"] for t in read(tmp_path / "run", "trajectories.jsonl")]
    assert summary["examples"] == 2 and questions == ["Question 1?", "Question 2?"]


class WithoutDistinct(MockGenerator):
    """Answers every prompt with the gold query minus its DISTINCT."""

    def generate(self, requests, params):
        from text2sql_mlops.generation import Completion

        return [[Completion("```sql\n" + r.meta["gold_sql"].replace("DISTINCT ", "") + "\n```", 5)] * params.num_samples
                for r in requests]


def test_matcher_seed_judges_as_the_reference_did(tmp_path: Path):
    """--matcher seed keeps DISTINCT (the reference ran queries as written): a missing DISTINCT
    over duplicate rows is wrong there and right under the official evaluator."""
    make_db(tmp_path / "database" / "concert_singer" / "concert_singer.sqlite", CONCERT_SQL)
    dataset = tmp_path / "questions.json"
    dataset.write_text(json.dumps([{"db_id": "concert_singer", "question": "Countries?", "query": "SELECT DISTINCT country FROM singer"}]))
    official = rollout(dataset, tmp_path / "official", WithoutDistinct(), max_turns=1)
    seed = rollout(dataset, tmp_path / "seed", WithoutDistinct(), max_turns=1, matcher="seed")
    assert official["first_turn_ex"] == 1.0 and seed["first_turn_ex"] == 0.0
    assert json.loads((tmp_path / "seed" / "run.json").read_text())["matcher"] == "seed"


def test_repair_success_by_the_reference_rule_counts_a_correct_turn_the_run_went_past():
    """Ours: the final answer is correct. The reference's: some later turn had a correct candidate."""
    from built_records import candidate, turn
    from built_records import trajectory as built_trajectory

    from text2sql_mlops.rollout.metrics import rollout_summary

    def trajectory(*turns: list[bool]):
        return built_trajectory(*(turn(k + 1, [candidate(correct=c) for c in correct]) for k, correct in enumerate(turns)))

    trajectories = [trajectory([False], [False, True], [False]),  # a correct sample at turn 2, not kept
                    trajectory([False], [True]),                  # repaired both ways
                    trajectory([False], [False]),                 # not repaired
                    trajectory([True])]                           # right at once: not in the denominator
    config = {"repair_scope": "online", "feedback_mode": "error_only", "feedback_detail": "minimal", "max_turns": 3,
              "num_samples": 2, "temperature": 0.8}
    repair = rollout_summary(trajectories, config).repair
    assert repair == {"first_turn_failed": 3, "repaired": 1, "repair_success_rate": 1 / 3,
                      "repaired_seed_rule": 2, "repair_success_rate_seed_rule": 2 / 3}


def test_rollout_refuses_a_repair_adapter_it_cannot_use(demo_dataset: Path, tmp_path: Path, capsys):
    """``rollout --repair_adapter_path``: a missing folder is one line before any work."""
    args = ["rollout", "--generator", "hf", "--model_path", str(tmp_path), "--dataset_path", str(demo_dataset), "--limit", "2",
            "--max_turns", "2", "--repair_adapter_path", str(tmp_path / "none"), "--output_dir", str(tmp_path / "out"), "--no_progress"]
    assert cli_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "--repair_adapter_path" in err and "no such folder" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("style", ["chat", "seed"])
def test_repair_prompts_only_records_the_repair_prompts_without_a_model_call(dataset: Path, tmp_path: Path, style: str):
    """``--repair_prompts_only`` (rollout_repair): the repair turns get the prompts a model would
    get, byte for byte, and repeat the failed query instead of calling the model, so nothing is
    repaired and every failing answer's repair chat can be mined."""
    settings = dict(max_turns=2, repair_scope="online", feedback_mode="error_only", prompt_style=style, use_gold_when_failed=True)
    recording = Recording()
    answered = rollout(dataset, tmp_path / "model", recording, **settings)
    recording_only = Recording()
    recorded = rollout(dataset, tmp_path / "prompts", recording_only, repair_prompts_only=True, **settings)
    assert recording.batches == [N, N] and recording_only.batches == [N]  # turn 1 only reaches the model
    assert answered["final_ex_strict"] > answered["first_turn_ex"] == recorded["first_turn_ex"] == recorded["final_ex_strict"]
    model_runs, prompt_runs = read(tmp_path / "model", "trajectories.jsonl"), read(tmp_path / "prompts", "trajectories.jsonl")
    for with_model, prompts_only in zip(model_runs, prompt_runs, strict=True):
        assert len(with_model["turns"]) == len(prompts_only["turns"])
        for turn_model, turn_prompts in zip(with_model["turns"], prompts_only["turns"]):
            assert turn_model["messages"] == turn_prompts["messages"]
        if len(prompts_only["turns"]) == 2:
            first, repeat = (turn["candidates"][0] for turn in prompts_only["turns"])
            assert repeat["sql"] == first["sql"] and not repeat["correct"] and repeat["num_tokens"] == 0
    assert json.loads((tmp_path / "prompts" / "run.json").read_text())["repair_prompts_only"] is True
    assert "repair_prompts_only" not in json.loads((tmp_path / "model" / "run.json").read_text())

    # pairs mine: a repair chat for every failing answer (the mock model repaired them all, so it gives none)
    chats = {}
    for name in ("model", "prompts"):
        out = tmp_path / f"{name}.jsonl"
        assert cli_main(["pairs", "mine", "--trajectories", str(tmp_path / name), "--out", str(out), "--use_gold_when_failed",
                         "--pair_types", "gold_vs_failed_repair"]) == 0
        chats[name] = [json.loads(line) for line in out.read_text().splitlines()]
    repair_turns = [t["turns"][1]["messages"] for t in prompt_runs if len(t["turns"]) == 2 and not t["gold_error"]]
    assert chats["model"] == [] and [chat["prompt"] for chat in chats["prompts"]] == repair_turns and len(repair_turns) == N - BAD


@pytest.mark.parametrize(("extra", "message"), [
    (["--max_turns", "1"], "--max_turns 1 has none"),
    (["--max_turns", "2", "--repair_adapter_path", "."], "give one of them"),
])
def test_repair_prompts_only_refuses_settings_it_cannot_serve(dataset: Path, tmp_path: Path, capsys, extra, message):
    args = ["rollout", "--dataset_path", str(dataset), "--output_dir", str(tmp_path / "out"), "--repair_prompts_only", *extra]
    assert cli_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and not (tmp_path / "out").exists()


class Answers(MockGenerator):
    """Answers every prompt with one fixed SQL query."""

    def __init__(self, sql: str):
        self.sql = sql

    def generate(self, requests, params):
        from text2sql_mlops.generation import Completion

        return [[Completion(f"```sql\n{self.sql}\n```", 5)] * params.num_samples for _ in requests]


def test_a_verdict_covers_every_sqlite_file_of_the_database_folder_as_the_official_evaluator(tmp_path: Path):
    """The official evaluator runs gold and prediction on every .sqlite file of
    database/<db_id>/ (the test-suite's variants); `score` did, but rollouts, eval and synth
    judged on <db_id>.sqlite alone: a prediction right there and wrong on a variant counted
    as correct. A flat layout (<root>/<db_id>.sqlite) keeps judging the one file."""
    from text2sql_mlops.scoring.scorer import Scorer

    folder = tmp_path / "database" / "ts"
    make_db(folder / "ts.sqlite", "CREATE TABLE t (x INT); INSERT INTO t VALUES (1), (2);")
    make_db(folder / "ts_variant.sqlite", "CREATE TABLE t (x INT); INSERT INTO t VALUES (1), (3);")
    dataset = tmp_path / "dev.json"
    dataset.write_text(json.dumps([{"db_id": "ts", "question": "Which x are below 3?", "query": "SELECT x FROM t WHERE x < 3"}]))
    prediction = "SELECT x FROM t ORDER BY x LIMIT 2"  # right on ts.sqlite only
    with Scorer() as scorer:
        assert not scorer.score(folder, "SELECT x FROM t WHERE x < 3", prediction).match
        assert scorer.score(folder / "ts.sqlite", "SELECT x FROM t WHERE x < 3", prediction).match
    summary = rollout(dataset, tmp_path / "run", Answers(prediction), max_turns=1)
    assert summary["first_turn_ex"] == 0.0
    assert rollout(dataset, tmp_path / "right", Answers("SELECT x FROM t WHERE x < 3"), max_turns=1)["first_turn_ex"] == 1.0
    flat = tmp_path / "flat"
    make_db(flat / "ts.sqlite", "CREATE TABLE t (x INT); INSERT INTO t VALUES (1), (2);")
    make_db(flat / "other.sqlite", "CREATE TABLE t (x INT); INSERT INTO t VALUES (1), (3);")  # another database
    assert rollout(dataset, tmp_path / "flat_run", Answers(prediction), max_turns=1, db_root=str(flat))["first_turn_ex"] == 1.0


def test_an_adapter_retrained_in_place_is_another_run(tmp_path: Path):
    """The run identity named the adapter by its path alone: after a retraining into the same
    folder, an eval said "complete; nothing to do" and kept the old model's numbers (or resumed,
    mixing two models in one result). Its weights' digest is part of the identity now, the same
    for a copy elsewhere, so shards on other machines still merge."""
    from text2sql_mlops.rollout.config import run_identity
    from text2sql_mlops.rollout.store import RunFolder

    adapter = tmp_path / "sft"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"r": 8}')
    (adapter / "adapter_model.safetensors").write_bytes(b"weights v1")
    config = RolloutConfig(dataset_path="d", output_dir=str(tmp_path / "run"), generator="hf", model_path="m",
                           adapter_path=str(adapter))
    first = run_identity(config, ["a", "b"])
    copy = tmp_path / "elsewhere"
    shutil.copytree(adapter, copy)
    assert run_identity(replace(config, adapter_path=str(copy)), ["a", "b"])["adapter_sha256"] == first["adapter_sha256"]
    (adapter / "adapter_model.safetensors").write_bytes(b"weights v2")
    second = run_identity(config, ["a", "b"])
    assert second["adapter_sha256"] != first["adapter_sha256"]
    folder = RunFolder(tmp_path / "run")
    with folder:
        folder.claim(first)
        with pytest.raises(UserError, match=r"other settings \(adapter_sha256: "):
            folder.prepare(second)
    assert "adapter_sha256" not in run_identity(replace(config, generator="mock"), ["a"])  # the mock loads no adapter
    # a run from before the digests (its run.json has none) still resumes
    older = {key: value for key, value in first.items() if key != "adapter_sha256"}
    with folder:
        (tmp_path / "run" / "run.json").write_text(json.dumps(older))
        assert folder.prepare(second) == []
    # shards whose machines keep the same adapter at other paths merge; other weights do not
    from text2sql_mlops.rollout.store import shards_of

    shards = []
    for number, (where, identity) in enumerate(((adapter, second), (copy, first)), 1):
        shard = RunFolder(tmp_path / f"shard{number}")
        with shard:
            shard.claim({**identity, "adapter_path": str(where), "shard": f"{number}/2"})
        shards.append(shard)
    with pytest.raises(UserError, match="is a shard of another rollout"):
        shards_of(shards)
    (copy / "adapter_model.safetensors").write_bytes(b"weights v2")
    with shards[1]:
        shards[1].claim({**run_identity(replace(config, adapter_path=str(copy)), ["a", "b"]), "shard": "2/2"}, overwrite=True)
    assert shards_of(shards)["adapter_sha256"] == second["adapter_sha256"]


def test_a_run_resumes_with_its_dataset_given_relative_or_absolute(dataset: Path, tmp_path: Path, monkeypatch):
    """`--dataset_path data/demo` and then `/home/me/t2s/data/demo` refused the resume as
    "other settings (dataset_path: ...)", and suggested --overwrite, which discards the run."""
    monkeypatch.chdir(dataset.parent)
    first = rollout(Path(dataset.name), tmp_path / "out", max_turns=1)
    recording = Recording()
    assert rollout(dataset.resolve(), tmp_path / "out", recording, max_turns=1)["final_ex_strict"] == first["final_ex_strict"]
    assert recording.batches == []  # complete: nothing computed again


def test_a_correct_answer_over_the_sandbox_caps_reads_executable_and_a_cut_gold_says_so(tmp_path: Path):
    """The scorer reads what the official evaluator reads (a 9 MiB cell); the feedback sandbox
    caps a value at 8 MiB. A correct candidate on such a cell read correct and not executable
    (executable_rate below first-turn EX), and its gold observed as failing. A gold of more
    rows than a rollout fetches said gold_row_count 10000 as if that were its count."""
    import sqlite3

    from text2sql_mlops.rollout.loop import MAX_ROWS

    db = tmp_path / "db" / "docs" / "docs.sqlite"
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE doc (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO doc VALUES (1, ?)", ("x" * (9 * 2**20),))
    conn.executemany("INSERT INTO doc VALUES (?, ?)", ((i, "short") for i in range(2, MAX_ROWS + 10)))
    conn.commit()
    conn.close()
    golds = ["SELECT body FROM doc WHERE id = 1", "SELECT id FROM doc", "SELECT count(*) FROM doc"]
    dataset = tmp_path / "data.json"
    dataset.write_text(json.dumps([{"db_id": "docs", "question": f"q{i}", "query": gold} for i, gold in enumerate(golds)]))
    s = rollout(dataset, tmp_path / "out", max_turns=2, db_root=str(tmp_path / "db"))
    trajectories = read(tmp_path / "out", "trajectories.jsonl")
    big = trajectories[0]
    assert big["gold_error"] is None and big["final_correct"] and big["gold_row_count"] == 1 and not big["gold_truncated"]
    answer = big["turns"][-1]["candidates"][0]
    assert answer["correct"] and answer["executed"] and answer["error"] is None and answer["row_count"] == 1, answer
    cut, small = trajectories[1], trajectories[2]
    assert cut["gold_row_count"] == MAX_ROWS and cut["gold_truncated"] and cut["final_correct"]
    assert small["gold_row_count"] == 1 and not small["gold_truncated"]
    assert s["final_executable_rate"] == 1.0 and s["final_ex_strict"] == 1.0
    # The same SQL wrong for another example reads as the sandbox ran it, whichever example's
    # answer (or gold) ran it first in the chunk: the scorer's run is kept apart.
    class Always(MockGenerator):
        def generate(self, requests, params):
            return [[Completion(text="```sql\nSELECT body FROM doc WHERE id = 1\n```", num_tokens=8)] for _ in requests]

    from text2sql_mlops.generation import Completion

    pair = [{"db_id": "docs", "question": "big?", "query": golds[0]}, {"db_id": "docs", "question": "one?", "query": "SELECT 1"}]
    for order in (pair, pair[::-1]):
        dataset.write_text(json.dumps(order))
        rollout(dataset, tmp_path / "order", Always(), max_turns=1, db_root=str(tmp_path / "db"), overwrite=True)
        answers = {t["question"]: t["turns"][0]["candidates"][0] for t in read(tmp_path / "order", "trajectories.jsonl")}
        assert answers["big?"]["correct"] and answers["big?"]["executed"]
        assert not answers["one?"]["correct"] and not answers["one?"]["executed"] and "too big" in answers["one?"]["error"]
    # files written before the field read as not cut
    from text2sql_mlops.core.records import Trajectory

    old = {key: value for key, value in big.items() if key != "gold_truncated"}
    assert Trajectory.from_dict(old, "old.jsonl:1").gold_truncated is False


def test_a_rollout_that_fails_before_its_first_result_leaves_no_folder_it_made(demo_dataset: Path, tmp_path: Path, capsys):
    """A rollout into a/b/run whose model does not load removed run/ but left a/b behind."""
    (tmp_path / "mine").mkdir()
    for out in (tmp_path / "a" / "b" / "run", tmp_path / "mine" / "b" / "run", tmp_path / "c" / "x" / ".." / "y" / "run"):
        args = ["rollout", "--generator", "hf", "--model_path", str(tmp_path / "nowhere"), "--dataset_path", str(demo_dataset),
                "--limit", "2", "--output_dir", str(out), "--no_progress"]
        assert cli_main(args) == 2
        assert "not found" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"] and not any((tmp_path / "mine").iterdir())
