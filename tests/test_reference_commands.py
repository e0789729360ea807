"""The reference project's command lines, spelled as its users type them, run here unchanged.

One chain on the demo data with a tiny random model: rollout (``--device_map auto``,
``--progress_every``), mining, ``pairs synth --output_dir``, ``pairs merge`` with
INDEX=VALUE limits and the reference's ``dpo_pairs.json``, then ``train sft`` and
``train dpo`` with the reference's flag names. Every command must succeed and write
what the next one reads; the aliases mean our flags, so the outputs are ours.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from text2sql_mlops.cli import main as cli

pytestmark = pytest.mark.slow  # a tiny model through rollout and TRL training


def run(capsys, *argv: str) -> str:
    code = cli(list(argv))
    captured = capsys.readouterr()
    assert code == 0, f"{' '.join(argv)}\n{captured.err[-2000:]}"
    return captured.err


def test_the_reference_projects_commands_run_as_written(demo_dataset: Path, tiny_llama: Path, tmp_path: Path, capsys):
    model = tiny_llama
    demo, out = str(demo_dataset), tmp_path

    err = run(capsys, "rollout", "--dataset_path", demo, "--split", "train", "--generator", "hf", "--model_path", str(model),
              "--device_map", "auto", "--progress_every", "2", "--limit", "4", "--max_turns", "2", "--max_new_tokens", "8",
              "--feedback_detail", "minimal", "--repair_scope", "verified", "--use_gold_when_failed",
              "--eval_dataset", demo, "--eval_split", "dev", "--output_dir", str(out / "rollouts"))
    assert "rollout: 4/4 examples" in err  # --progress_every: plain progress lines (one per finished chunk here)
    trajectories = [json.loads(line) for line in (out / "rollouts" / "trajectories.jsonl").read_text().splitlines()]
    assert len(trajectories) == 4

    run(capsys, "pairs", "mine", "--trajectories", str(out / "rollouts"), "--out", str(out / "natural.jsonl"),
        "--use_gold_when_failed", "--eval_dataset", demo, "--eval_split", "dev")
    # The reference's builder wrote its pairs next to the trajectories: the README's row for it.
    for _ in range(2):
        run(capsys, "pairs", "mine", "--trajectories", str(out / "rollouts"), "--out", str(out / "rollouts" / "dpo_pairs.jsonl"),
            "--use_gold_when_failed", "--eval_dataset", demo, "--eval_split", "dev")
    assert (out / "rollouts" / "dpo_pairs.jsonl").read_bytes() == (out / "natural.jsonl").read_bytes()
    run(capsys, "pairs", "synth", "--dataset_path", demo, "--split", "train", "--limit", "6", "--output_dir", str(out / "synth"),
        "--eval_dataset", demo, "--eval_split", "dev")
    assert {p.name for p in (out / "synth").iterdir()} >= {"synthetic_error_sql.jsonl", "dpo_pairs.jsonl", "summary.json"}

    # The reference's builder wrote its pairs as one JSON list with string prompts.
    natural = [json.loads(line) for line in (out / "natural.jsonl").read_text().splitlines()]
    reference = [{"prompt": "\n\n".join(m["content"] for m in p["prompt"]), "chosen": p["chosen"],
                  "rejected": p["rejected"], "db_id": p["meta"]["db_id"], "question": p["meta"]["question"]}
                 for p in natural]
    (out / "dpo_pairs.json").write_text(json.dumps(reference))
    run(capsys, "pairs", "merge", "--inputs", str(out / "natural.jsonl"), str(out / "synth" / "dpo_pairs.jsonl"),
        "--input_fraction_limits", "1=0.20", "--input_limits", "0=308", "1=150", "--output", str(out / "train_pairs.jsonl"))
    merged = [json.loads(line) for line in (out / "train_pairs.jsonl").read_text().splitlines()]
    synthetic = sum(p["meta"]["source"] == "synthetic" for p in merged)
    assert merged and synthetic <= 0.2 * len(merged)
    err = run(capsys, "pairs", "merge", "--inputs", str(out / "dpo_pairs.json"), "--output", str(out / "reference_pairs.jsonl"))
    assert f"{len(reference)} reference pairs converted" in err

    common = ["--model_name_or_path", str(model), "--max_seq_length", "4096", "--max_steps", "1", "--lora_r", "4",
              "--lora_alpha", "8", "--per_device_train_batch_size", "2", "--logging_steps", "1"]
    run(capsys, "train", "sft", *common, "--trajectories", str(out / "rollouts" / "trajectories.jsonl"),
        "--output_dir", str(out / "sft"))
    assert (out / "sft" / "adapter_config.json").is_file()
    run(capsys, "train", "dpo", *common, "--dpo_pairs", str(out / "train_pairs.jsonl"), "--base_adapter_path", str(out / "sft"),
        "--max_prompt_length", "4000", "--output_dir", str(out / "dpo"))
    summary = json.loads((out / "dpo" / "training_summary.json").read_text())
    assert summary["settings"]["init_adapter"] == str(out / "sft") and summary["settings"]["max_prompt_length"] == 4000
    assert summary["data"]["pairs"] == len(merged)
