"""core/records.py: the records read back are checked (one error line naming file, line and field,
and where good files come from), and ``to_dict(from_dict(x)) == x`` byte for byte on what
``rollout``, ``pairs mine``, ``pairs synth`` and ``pairs merge`` really write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from text2sql_mlops.cli import main as cli
from text2sql_mlops.core.errors import UserError
from text2sql_mlops.core.records import (
    PAIR_SOURCE,
    SUMMARY_SOURCE,
    TRAJECTORY_SOURCE,
    Pair,
    Summary,
    Trajectory,
    read_pairs,
    read_summary,
    read_trajectories,
)


@pytest.fixture(scope="module")
def outputs(demo_dataset: Path, tmp_path_factory) -> Path:
    """Two mock rollouts (three samples a turn; one sample, repaired over three turns), the pairs
    mined from them, synthetic pairs, the reference project's dpo_pairs.json and a merge of all three."""
    out = tmp_path_factory.mktemp("records")
    rollout = ["rollout", "--dataset_path", str(demo_dataset), "--generator", "mock", "--limit", "12", "--max_turns", "3", "--no_progress"]
    commands = [
        [*rollout, "--num_samples", "3", "--use_gold_when_failed", "--output_dir", str(out / "run")],
        [*rollout, "--repair_scope", "verified", "--feedback_detail", "column", "--output_dir", str(out / "repair")],
        ["pairs", "mine", "--trajectories", str(out / "run"), str(out / "repair"), "--out", str(out / "natural.jsonl"),
         "--use_gold_when_failed"],
        ["pairs", "synth", "--dataset_path", str(demo_dataset), "--limit", "4", "--out", str(out / "synth.jsonl"), "--no_progress"],
    ]
    for argv in commands:
        assert cli(argv) == 0, argv
    natural = [json.loads(line) for line in (out / "natural.jsonl").read_text().splitlines()]
    reference = [{"prompt": p["prompt"][-1]["content"], "chosen": p["chosen"], "rejected": p["rejected"], "db_id": p["meta"]["db_id"]}
                 for p in natural[:3]]
    (out / "dpo_pairs.json").write_text(json.dumps(reference))
    assert cli(["pairs", "merge", "--inputs", str(out / "natural.jsonl"), str(out / "synth.jsonl"), str(out / "dpo_pairs.json"),
                "--output", str(out / "merged.jsonl")]) == 0
    return out


def lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return text[:-1].split("\n")


@pytest.mark.parametrize("name, record", [("run/trajectories.jsonl", Trajectory), ("repair/trajectories.jsonl", Trajectory),
                                          ("natural.jsonl", Pair), ("synth.jsonl", Pair), ("merged.jsonl", Pair)])
def test_records_written_by_the_commands_round_trip_byte_for_byte(outputs: Path, name: str, record: type):
    written = lines(outputs / name)
    assert written
    for number, line in enumerate(written, start=1):
        read = record.from_dict(json.loads(line), f"{name}:{number}")
        assert read.to_dict() == json.loads(line)
        assert json.dumps(read.to_dict(), ensure_ascii=False) == line  # same keys, same order, same numbers


def test_the_readers_give_typed_records_in_file_order(outputs: Path):
    trajectories = read_trajectories(outputs / "run")
    assert [t.index for t in trajectories] == list(range(12))
    assert read_trajectories(outputs / "run" / "trajectories.jsonl") == trajectories
    assert all(len(turn.candidates) == 3 for t in trajectories for turn in t.turns)
    assert all(len(t.turns) > 1 for t in read_trajectories(outputs / "repair") if t.gold_error is None)
    merged = read_pairs(outputs / "merged.jsonl")
    assert {p.meta["source"] for p in merged} == {"natural", "synthetic"}
    assert any(p.meta.get("converted_from") for p in merged)  # the reference's pairs came through merge
    summary = read_summary(outputs / "run")
    assert summary.examples == 12 and summary == read_summary(outputs / "run" / "summary.json")
    assert json.dumps(summary.to_dict(), indent=2) == json.dumps(json.loads((outputs / "run" / "summary.json").read_text()), indent=2)


def test_trajectory_shortcuts_name_the_selected_answers(outputs: Path):
    for t in read_trajectories(outputs / "run") + read_trajectories(outputs / "repair"):
        assert t.first is t.turns[0] and t.last is t.turns[-1]
        assert (t.final_sql, t.final_correct) == (t.last.answer.sql, t.last.answer.correct)
        assert t.last.answer is t.last.candidates[t.last.selected]
        assert t.solved == any(c.correct for c in t.candidates())
        assert [c for turn in t.turns for c in turn.candidates] == list(t.candidates())


def test_a_trajectory_from_before_prompt_styles_reads_as_chat(outputs: Path):
    record = json.loads(lines(outputs / "run" / "trajectories.jsonl")[0])
    assert record.pop("prompt_style") == "chat"  # written by this version
    assert Trajectory.from_dict(record, "old.jsonl:1").prompt_style == "chat"
    with pytest.raises(UserError, match="prompt_style must be a non-empty string"):
        Trajectory.from_dict({**record, "prompt_style": ""}, "bad.jsonl:1")


def spoil_candidate(key: str, value):
    def spoil(record: dict) -> None:
        record["turns"][0]["candidates"][1][key] = value
    return spoil


@pytest.mark.parametrize("spoil, message", [
    (lambda r: r.pop("gold"), "trajectory record lacks gold"),
    (lambda r: r["turns"][0]["candidates"][1].pop("correct"), "trajectory record lacks turns[0].candidates[1].correct"),
    (lambda r: r.update(turns=[]), "turns must be a non-empty list, got []"),
    (lambda r: r.update(note="mine"), "trajectory record has unknown fields 'note'"),
    (lambda r: r["turns"][0].update(selected=3), "turns[0].selected is 3, but the turn has 3 candidates"),
    (lambda r: r["turns"][0]["messages"][1].update(content=None), "turns[0].messages[1].content must be a string, got null"),
    (spoil_candidate("correct", "yes"), 'turns[0].candidates[1].correct must be true or false, got "yes"'),
    (spoil_candidate("total_reward", float("nan")), "turns[0].candidates[1].total_reward must be a finite number, got NaN"),
    (spoil_candidate("row_count", -1), "turns[0].candidates[1].row_count must be a count or null, got -1"),
    (lambda r: r.update(target={"sql": "SELECT 1", "source": "oracle"}), 'target must be null or {"sql": a string'),
    (lambda r: r.update(index="0"), 'index must be a count (an integer, 0 or more), got "0"'),
])
def test_a_bad_trajectory_is_one_line_naming_file_line_and_field(outputs: Path, tmp_path: Path, capsys, spoil, message: str):
    good, second = (json.loads(line) for line in lines(outputs / "run" / "trajectories.jsonl")[:2])
    spoil(second)
    path = tmp_path / "trajectories.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(second) + "\n")
    with pytest.raises(UserError) as error:
        read_trajectories(path)
    text = str(error.value)
    assert text.startswith(f"{path}:2: {message}") and text.endswith(f"; {TRAJECTORY_SOURCE}") and "\n" not in text
    # every command that reads trajectories says the same, on one line, and writes nothing
    run = tmp_path / "run"
    run.mkdir()
    (run / "trajectories.jsonl").write_text(path.read_text())
    (run / "run.json").write_text(json.dumps({"dataset_path": str(tmp_path)}))
    capsys.readouterr()
    assert cli(["pairs", "mine", "--trajectories", str(path), "--out", str(tmp_path / "pairs.jsonl")]) == 2
    assert cli(["report", "routing", "--runs", f"A={run}", "--out", str(tmp_path / "report")]) == 2
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")  # trajectories are read before any model file is
    assert cli(["train", "sft", "--model", str(tmp_path / "model"), "--trajectories", str(path), "--out", str(tmp_path / "sft")]) == 2
    errors = capsys.readouterr().err.splitlines()
    files = (path, run / "trajectories.jsonl", path)
    assert len(errors) == 3 and all(line.startswith(f"error: {file}:2: {message}") for line, file in zip(errors, files)), errors
    assert not any((tmp_path / name).exists() for name in ("pairs.jsonl", "report", "sft"))


def test_a_pair_with_a_field_outside_the_record_is_refused(outputs: Path):
    record = json.loads(lines(outputs / "natural.jsonl")[0])
    with pytest.raises(UserError, match=rf"^x.jsonl:4: pair record has unknown fields 'score'; {PAIR_SOURCE}$"):
        Pair.from_dict({**record, "score": 0.5}, "x.jsonl:4")
    assert Pair.from_dict({**record, "meta": {**record["meta"], "score": 0.5}}, "x.jsonl:4").meta["score"] == 0.5  # meta is open


def test_a_pair_file_that_is_missing_or_a_folder_is_named(tmp_path: Path):
    with pytest.raises(UserError, match="pair file not found"):
        read_pairs(tmp_path / "nowhere.jsonl")
    with pytest.raises(UserError, match="is a folder; give a pair file"):
        read_pairs(tmp_path)


@pytest.mark.parametrize("spoil, message", [
    (lambda s: s.pop("timing"), "summary record lacks timing"),
    (lambda s: s.update(final_ex_strict=float("nan")), "final_ex_strict must be a finite number or null, got NaN"),
    (lambda s: s.update(examples=2.5), "examples must be a count (an integer, 0 or more), got 2.5"),
    (lambda s: s.update(repair=None), "repair must be an object, got null"),
])
def test_a_bad_summary_is_one_line_naming_the_file_and_field(outputs: Path, tmp_path: Path, capsys, spoil, message: str):
    record = json.loads((outputs / "run" / "summary.json").read_text())
    assert Summary.from_dict(json.loads(json.dumps(record)), "s").to_dict() == record
    spoil(record)
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(record))
    with pytest.raises(UserError) as error:
        read_summary(path)
    assert str(error.value) == f"{path}: {message}; {SUMMARY_SOURCE}"
    assert cli(["compare", "--runs", f"A={tmp_path}", "--out", str(tmp_path / "compare")]) == 2
    assert capsys.readouterr().err == f"error: {path}: {message}; {SUMMARY_SOURCE}\n"


def test_an_unreadable_summary_is_named(tmp_path: Path):
    with pytest.raises(UserError, match=r"cannot read .*summary.json: No such file"):
        read_summary(tmp_path)
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(UserError, match=r"summary.json: not a JSON summary"):
        read_summary(tmp_path / "summary.json")
