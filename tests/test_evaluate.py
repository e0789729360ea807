"""eval (a rollout with evaluation defaults + error analysis) and compare (the comparison report)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from text2sql_mlops.cli import main as cli
from text2sql_mlops.core.errors import UserError
from text2sql_mlops.mlops.evaluate import resolve_models


def run_eval(demo: Path, out: Path, *extra: str) -> dict:
    assert cli(["eval", "--generator", "mock", "--dataset_path", str(demo), "--output_dir", str(out), "--no_progress", *extra]) == 0
    return json.loads((out / "summary.json").read_text())


def test_eval_defaults_give_one_shot_strict_and_oracle_numbers(demo_dataset: Path, tmp_path: Path):
    summary = run_eval(demo_dataset, tmp_path / "ev", "--limit", "12")
    config = summary["config"]
    assert config["split"] == "dev" and config["repair_scope"] == "verified" and config["feedback_mode"] == "error_only"
    # The mock breaks turn 1 and answers gold at turn 2: one-shot 0, both finals 1.
    assert (summary["first_turn_ex"], summary["final_ex_strict"], summary["final_ex_oracle"]) == (0.0, 1.0, 1.0)
    analysis = json.loads((tmp_path / "ev" / "analysis.json").read_text())
    assert sum(level["examples"] for level in analysis["by_hardness"].values()) == 12
    assert all(level["first_turn_ex"] == 0.0 and level["final_ex"] == 1.0 for level in analysis["by_hardness"].values())
    assert analysis["final_error_types"] == {"correct": 12}
    assert analysis["repair_transitions"] == {"no_such_table -> correct": 12}
    rows = [json.loads(line) for line in (tmp_path / "ev" / "examples.jsonl").read_text().splitlines()]
    trajectories = [json.loads(line) for line in (tmp_path / "ev" / "trajectories.jsonl").read_text().splitlines()]
    assert [row["id"] for row in rows] == [t["id"] for t in trajectories]
    assert all(row["turn1_error_type"] == "no_such_table" and row["turn1_correct"] is False and row["turn2_correct"] is True
               and row["final_correct_strict"] and row["final_correct_oracle"] and row["gold"] == t["gold"]
               for row, t in zip(rows, trajectories))


def test_example_rows_tell_strict_from_oracle():
    """A query that ran but was wrong is final for a gold-free run (strict: wrong); only the
    verified (oracle) run repairs it."""
    from built_records import candidate, trajectory, turn

    from text2sql_mlops.mlops.evaluate import example_rows

    [row] = example_rows([trajectory(turn(1, [candidate("SELECT b FROM t", False, error_type="wrong_result")]),
                                     turn(2, [candidate("SELECT a FROM t", True)]),
                                     id="e1", db_id="db", question="Q?", gold="SELECT a FROM t")])
    assert row == {"id": "e1", "db_id": "db", "hardness": "easy", "question": "Q?", "gold": "SELECT a FROM t",
                   "turn1_sql": "SELECT b FROM t", "turn1_error_type": "wrong_result", "turn1_correct": False,
                   "turn2_sql": "SELECT a FROM t", "turn2_error_type": "correct", "turn2_correct": True, "turns": 2,
                   "final_correct_strict": False, "final_correct_oracle": True}


def test_compare_builds_the_table_and_refuses_different_sets(demo_dataset: Path, tmp_path: Path, capsys):
    run_eval(demo_dataset, tmp_path / "a", "--limit", "8")
    run_eval(demo_dataset, tmp_path / "b", "--limit", "8", "--max_turns", "1")
    run_eval(demo_dataset, tmp_path / "c", "--limit", "5")
    assert cli(["compare", "--runs", f"Repair={tmp_path / 'a'}", f"OneShot={tmp_path / 'b'}", "--out", str(tmp_path / "cmp")]) == 0
    report = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert list(report["runs"]) == ["Repair", "OneShot"]
    assert report["runs"]["Repair"]["final_ex_strict"] == 1.0 and report["runs"]["OneShot"]["final_ex_strict"] == 0.0
    assert report["runs"]["Repair"]["repair_success_rate"] == report["runs"]["Repair"]["repair_success_rate_seed_rule"] == 1.0
    # The mock's first answers all fail and its repairs all run: 8 of 16 candidates, every final answer.
    assert report["runs"]["Repair"]["executable_rate"] == 0.5 and report["runs"]["Repair"]["final_executable_rate"] == 1.0
    markdown = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| Repair | 0.00% | 100.00% | 100.00% | 100.00% |" in markdown
    rows = json.loads((tmp_path / "cmp" / "ex_by_run.json").read_text())
    assert {"run": "OneShot", "metric": "final_ex_strict", "value": 0.0} in rows
    capsys.readouterr()
    assert cli(["compare", "--runs", f"A={tmp_path / 'a'}", f"C={tmp_path / 'c'}", "--out", str(tmp_path / "bad")]) == 2
    assert "different examples" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    capsys.readouterr()
    assert cli(["compare", "--runs", f"A={tmp_path / 'nowhere'}", "--out", str(tmp_path / "bad")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nowhere'}: not found; give a finished eval or rollout folder\n"
    # the same examples judged by the seed project's matcher: not one number with the official's
    run_eval(demo_dataset, tmp_path / "seed", "--limit", "8", "--matcher", "seed")
    capsys.readouterr()
    assert cli(["compare", "--runs", f"A={tmp_path / 'a'}", f"S={tmp_path / 'seed'}", "--out", str(tmp_path / "bad")]) == 2
    assert "different matchers" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert report["matcher"] == "official"
    (tmp_path / "a" / "analysis.json").write_text("{trunc")
    assert cli(["compare", "--runs", f"A={tmp_path / 'a'}", "--out", str(tmp_path / "bad")]) == 2
    assert "analysis.json: not an eval's analysis" in capsys.readouterr().err


def test_compare_per_split_with_charts(demo_dataset: Path, tmp_path: Path, capsys):
    for split in ("dev", "test_same_db"):
        run_eval(demo_dataset, tmp_path / "repair" / split, "--split", split, "--limit", "6")
        run_eval(demo_dataset, tmp_path / "oneshot" / split, "--split", split, "--limit", "6", "--max_turns", "1")
    curve = tmp_path / "metrics.jsonl"
    curve.write_text("".join(json.dumps({"step": step, "loss": 1.0 / step}) + "\n" for step in (1, 2, 3)))
    argv = ["compare", "--runs", f"Repair={tmp_path / 'repair'}", f"OneShot={tmp_path / 'oneshot'}",
            "--splits", "dev", "test_same_db", "--training", f"SFT={curve}"]
    assert cli([*argv, "--out", str(tmp_path / "cmp")]) == 0
    out = tmp_path / "cmp"
    for split in ("dev", "test_same_db"):
        report = json.loads((out / split / "compare.json").read_text())  # the one-split schema, per split
        assert list(report["runs"]) == ["Repair", "OneShot"] and report["runs"]["Repair"]["examples"] == 6
        assert (out / split / "compare.md").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dev"]["Repair"]["final_ex_strict"] == 1.0 and metrics["test_same_db"]["OneShot"]["final_ex_strict"] == 0.0
    assert {"split": "dev", "run": "OneShot", "metric": "first_turn_ex", "value": 0.0} in json.loads((out / "ex_by_run.json").read_text())
    chart, loss = (out / "ex_by_run.png").read_bytes(), (out / "training_loss.png").read_bytes()
    assert chart.startswith(b"\x89PNG") and loss.startswith(b"\x89PNG")
    assert cli([*argv, "--out", str(tmp_path / "again")]) == 0  # the same data draws the same bytes
    assert (tmp_path / "again" / "ex_by_run.png").read_bytes() == chart
    capsys.readouterr()
    assert cli(["compare", "--runs", f"A={tmp_path / 'repair'}", "--splits", "nope", "--out", str(tmp_path / "bad")]) == 2
    assert "nope" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_resolve_models_names_what_is_missing(tmp_path: Path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tmp_path / "base-3b")}))
    (adapter / "adapter_model.safetensors").write_text("w")  # an adapter without weights is refused
    with pytest.raises(UserError, match=r"base model .*base-3b.* is not available on this machine"):
        resolve_models(str(adapter), None, "hf")
    (tmp_path / "base-3b").mkdir()
    assert resolve_models(str(adapter), None, "hf") == (str(tmp_path / "base-3b"), str(adapter))
    with pytest.raises(UserError, match="give --model_path"):
        resolve_models(None, None, "hf")
    with pytest.raises(UserError, match="not found"):
        resolve_models(None, str(tmp_path / "missing"), "hf")
    assert resolve_models(None, None, "mock") == (None, None)


def test_eval_refuses_an_adapter_it_would_ignore_or_drop(demo_dataset: Path, tmp_path: Path, capsys):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tmp_path / "base")}))
    (adapter / "adapter_model.safetensors").write_text("w")
    (tmp_path / "base").mkdir()
    capsys.readouterr()
    base = ["eval", "--dataset_path", str(demo_dataset), "--output_dir", str(tmp_path / "out"), "--no_progress"]
    assert cli([*base, "--generator", "mock", "--adapter", str(adapter)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mock" in err[0] and "adapter" in err[0]
    assert cli([*base, "--adapter", str(adapter), "--adapter_path", str(adapter)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--adapter" in err[0] and "--adapter_path" in err[0]
    assert not (tmp_path / "out").exists()
    # --adapter_path alone is kept (and checked like --adapter), never dropped.
    assert resolve_models(None, None, "hf", adapter_path=str(adapter)) == (str(tmp_path / "base"), str(adapter))
    (adapter / "adapter_model.safetensors").unlink()
    with pytest.raises(UserError, match="no weights"):
        resolve_models(None, None, "hf", adapter_path=str(adapter))


@pytest.mark.parametrize("timeout", ["nan", "inf", "0"])
def test_eval_refuses_a_timeout_that_is_not_positive_and_finite(demo_dataset: Path, tmp_path: Path, capsys, timeout: str):
    argv = ["eval", "--generator", "mock", "--dataset_path", str(demo_dataset), "--output_dir", str(tmp_path / "ev"),
            "--no_progress", "--timeout_sec", timeout]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--timeout_sec a positive, finite number of seconds" in err
    assert not (tmp_path / "ev").exists()


def test_eval_refuses_repair_prompts_only(demo_dataset: Path, tmp_path: Path, capsys):
    argv = ["eval", "--generator", "mock", "--dataset_path", str(demo_dataset), "--output_dir", str(tmp_path / "ev"),
            "--no_progress", "--max_turns", "2", "--repair_prompts_only"]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "makes none" in err and not (tmp_path / "ev").exists()


def test_replay_answers_recorded_prompts_and_asks_the_model_only_for_new_ones():
    from built_records import candidate, trajectory, turn

    from text2sql_mlops.generation import Completion, GenerationRequest, SamplingParams
    from text2sql_mlops.generation.replay import ReplayGenerator, recorded_answers

    recorded = trajectory(turn(1, [candidate(text="SELECT 1", num_tokens=3)], messages=[{"role": "user", "content": "Q1"}]),
                          turn(2, [candidate(text="SELECT 2"), candidate(text="SELECT 3")],  # two samples: no single answer
                               messages=[{"role": "user", "content": "Q2"}]))
    made, asked = [], []

    class Model:
        def generate(self, requests, params):
            asked.append([r.messages[0]["content"] for r in requests])
            return [[Completion("SELECT new", 2)] for _ in requests]

        def close(self):
            made.append("closed")

    def make():
        made.append("made")
        return Model()

    replay = ReplayGenerator(recorded_answers([recorded]), make)
    greedy = SamplingParams(max_new_tokens=8)
    [[only]] = replay.generate([GenerationRequest([{"role": "user", "content": "Q1"}])], greedy)
    assert (only.text, made) == ("SELECT 1", [])  # nothing new: the model is never built
    answers = replay.generate([GenerationRequest([{"role": "user", "content": q}]) for q in ("Q2", "Q1", "Q3")], greedy)
    assert [a[0].text for a in answers] == ["SELECT new", "SELECT 1", "SELECT new"] and asked == [["Q2", "Q3"]]
    replay.generate([GenerationRequest([{"role": "user", "content": "Q3"}])], greedy)  # answered once, kept
    assert (replay.replayed, replay.generated, made, len(asked)) == (3, 2, ["made"], 1)
    with pytest.raises(ValueError, match="greedy"):
        replay.generate([GenerationRequest([{"role": "user", "content": "Q1"}])], SamplingParams(temperature=0.7))
    replay.close()
    assert made == ["made", "closed"]


def test_eval_reference_settings_replay_the_run_and_match_fresh_runs(demo_dataset: Path, tmp_path: Path, capsys):
    """The reference project's result_status (oracle) and verifier-constrained (strict) rows:
    each a rollout that replays the eval's answers, equal to a fresh run of that setting."""
    run_eval(demo_dataset, tmp_path / "ev", "--limit", "8", "--reference_settings")
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["final_ex_oracle_result_status"] == 1.0 and line["final_ex_strict_verifier"] == 1.0
    reference = json.loads((tmp_path / "ev" / "analysis.json").read_text())["reference_settings"]
    assert "oracle" in reference["final_ex_oracle_result_status_configuration"]
    assert "strict" in reference["final_ex_strict_verifier_configuration"]
    # The mock answers the same prompts alike, so both settings' 16 prompts each are the eval's own.
    assert (reference["replayed_answers"], reference["generated_answers"]) == (32, 0)
    for folder, scope, mode in (("result_status", "verified", "result_status"), ("verifier", "online_guarded", "online_visible")):
        fresh = run_eval(demo_dataset, tmp_path / f"fresh_{folder}", "--limit", "8", "--repair_scope", scope, "--feedback_mode", mode)
        replayed = json.loads((tmp_path / "ev" / folder / "summary.json").read_text())
        assert {k: v for k, v in replayed.items() if k not in ("timing", "config")} == \
               {k: v for k, v in fresh.items() if k not in ("timing", "config")}
        assert (tmp_path / "ev" / folder / "trajectories.jsonl").read_text() == \
               (tmp_path / f"fresh_{folder}" / "trajectories.jsonl").read_text()
    assert cli(["compare", "--runs", f"Mock={tmp_path / 'ev'}", "--out", str(tmp_path / "cmp")]) == 0
    markdown = (tmp_path / "cmp" / "compare.md").read_text()
    assert "## The reference project's settings" in markdown and "| Mock | 100.00% | 100.00% |" in markdown
    capsys.readouterr()
    assert cli(["eval", "--generator", "mock", "--dataset_path", str(demo_dataset), "--output_dir", str(tmp_path / "sampled"),
                "--no_progress", "--limit", "2", "--temperature", "0.7", "--reference_settings"]) == 2
    assert "greedy" in capsys.readouterr().err and not (tmp_path / "sampled").exists()


def test_overwrite_leaves_no_report_of_the_old_run(demo_dataset: Path, tmp_path: Path):
    """`rollout --overwrite` into an eval's folder: the eval's examples.jsonl and analysis.json
    described the old run, so they go with its files instead of sitting beside the new ones."""
    out = tmp_path / "ev"
    run_eval(demo_dataset, out, "--limit", "4")
    assert (out / "examples.jsonl").is_file() and (out / "analysis.json").is_file()
    assert cli(["rollout", "--generator", "mock", "--dataset_path", str(demo_dataset), "--split", "dev", "--limit", "3",
                "--output_dir", str(out), "--overwrite", "--no_progress"]) == 0
    assert json.loads((out / "summary.json").read_text())["examples"] == 3
    assert not (out / "examples.jsonl").exists() and not (out / "analysis.json").exists()


def test_a_repair_adapter_answers_the_repair_turns_and_only_those(demo_dataset: Path, tmp_path: Path, tiny_llama: Path,
                                                                   tiny_lora: Path, capsys, one_torch_thread):
    """``--repair_adapter_path``: the first turn is the model's own answer, every repair turn is
    the repair model's answer to the prompt the loop built (checked by asking each model directly)."""
    from text2sql_mlops.core.records import read_trajectories
    from text2sql_mlops.generation import GenerationRequest, SamplingParams, create_generator

    common = ["--generator", "hf", "--model_path", str(tiny_llama), "--dataset_path", str(demo_dataset), "--limit", "4",
              "--max_turns", "2", "--repair_scope", "online", "--max_new_tokens", "8", "--batch_size", "4", "--no_progress"]
    assert cli(["eval", *common, "--output_dir", str(tmp_path / "alone")]) == 0
    assert cli(["eval", *common, "--repair_adapter_path", str(tiny_lora), "--reference_settings",
                "--output_dir", str(tmp_path / "routed")]) == 0
    alone, routed = read_trajectories(tmp_path / "alone"), read_trajectories(tmp_path / "routed")
    assert [t.first.answer.text for t in routed] == [t.first.answer.text for t in alone]
    repaired = [t for t in routed if len(t.turns) == 2]
    assert repaired, "the random model's answers do not run, so each gets a repair turn"
    requests = [GenerationRequest(t.turns[1].messages) for t in repaired]
    greedy = SamplingParams(max_new_tokens=8)

    def answers(**options) -> list[str]:
        return [c[0].text for c in create_generator("hf", model_path=str(tiny_llama), progress=False, **options)
                .generate(requests, greedy)]

    assert [t.turns[1].answer.text for t in repaired] == answers(adapter_path=str(tiny_lora))
    assert answers(adapter_path=str(tiny_lora)) != answers(), "the adapter changes the answers, so the check can fail"
    assert json.loads((tmp_path / "routed" / "analysis.json").read_text())["repair_adapter"] == str(tiny_lora)
    assert json.loads((tmp_path / "routed" / "run.json").read_text())["repair_adapter_path"] == str(tiny_lora)
    assert "repair_adapter_path" not in json.loads((tmp_path / "alone" / "run.json").read_text())
    # The reference settings' replays keep the split: recorded repair prompts get the repair model's answers.
    verifier = {t.id: t for t in read_trajectories(tmp_path / "routed" / "verifier")}
    for t in repaired:
        replayed = verifier[t.id]
        if len(replayed.turns) == 2 and replayed.turns[1].messages == t.turns[1].messages:
            assert replayed.turns[1].answer.text == t.turns[1].answer.text

    # compare says which run's repair turns another model answered
    assert cli(["compare", "--runs", f"Alone={tmp_path / 'alone'}", f"Routed={tmp_path / 'routed'}", "--out", str(tmp_path / "cmp")]) == 0
    report = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert (report["runs"]["Alone"]["repair_model"], report["runs"]["Routed"]["repair_model"]) == (None, str(tiny_lora))
    assert f"by a repair model (`eval --repair_adapter_path`), first turns by the run's own: Routed (`{tiny_lora}`)" in \
           (tmp_path / "cmp" / "compare.md").read_text()

    capsys.readouterr()
    for extra, message in ((["--generator", "mock"], "needs --generator hf"), (["--max_turns", "1"], "--max_turns 1 has none"),
                           (["--repair_adapter_path", str(tmp_path / "none")], "no LoRA adapter at")):
        args = ["eval", *common, "--repair_adapter_path", str(tiny_lora), *extra, "--output_dir", str(tmp_path / "bad")]
        assert cli(args) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and not (tmp_path / "bad").exists()
