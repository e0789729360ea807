"""Choose the post-SFT recipe (SFT phase 2, DPO) on held-out TRAINING databases, never on dev.

    python bench/heldout_databases.py --dataset data/demo --model models/smollm2-135m-instruct \
        --work /tmp/heldout [--variants pipeline no_phase2 repair_only first_turn_only sampled_dpo] [--out result.json]

Dev's databases are ones the model never trained on; a check on new questions of the training
databases did not predict what DPO does there (README). So this holds out whole training
databases instead: ``--databases`` of them (seeded draw), ``--questions`` questions of each
(evenly spaced) as the validation set. SFT phase 1 trains on the other databases with the
pipeline's flags (params.yaml's sections, rendered as dvc.yaml renders them), then each variant
runs the pipeline's rollout_train -> sft (phase 2) -> synth -> pairs -> sft_dpo stages, with
these changes, and ``eval`` on the validation set:

  pipeline         none: params.yaml as dvc.yaml runs it
  no_phase2        no SFT phase 2: DPO continues phase 1
  repair_only      phase 2 on the repair chats alone (without the rollout's first-turn targets)
  first_turn_only  phase 2 on the rollout's first-turn targets alone (the control)
  sampled_dpo      the recipe before phase 2: no phase 2, DPO pairs from a sampled rollout of 48
                   questions (4 samples at temperature 0.8, every wrong answer repaired)

Variants with the same rollout settings share it. Every step is skipped when its output exists,
so a killed run continues. Prints (and with --out writes) one row per model: one-shot, + CM
repair strict, + CM repair oracle EX. About 12 minutes on 2 cores for SFT phase 1, 12 for the
pipeline variant and 6 to 8 for each other one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import yaml

from text2sql_mlops.core.cliutil import section_flags

SAMPLED = {"limit": 48, "num_samples": 4, "temperature": 0.8, "top_p": 0.95, "repair_scope": "verified"}
VARIANTS = {  # (rollout_train changes, SFT phase 2 targets: (repair chats, first-turn targets) or None)
    "pipeline": ({}, (True, True)),
    "no_phase2": ({}, None),
    "repair_only": ({}, (True, False)),
    "first_turn_only": ({}, (False, True)),
    "sampled_dpo": (SAMPLED, None),
}


def heldout_folder(dataset: Path, out: Path, databases: int, questions: int, seed: int) -> dict:
    """A Spider-layout folder: train = the other databases, dev = the held-out ones' questions."""
    train = json.loads((dataset / "train_spider.json").read_text())
    names = sorted({e["db_id"] for e in train})
    held = sorted(random.Random(seed).sample(names, databases))
    dev = []
    for name in held:
        rows = [e for e in train if e["db_id"] == name]
        dev += [rows[(k * len(rows)) // questions] for k in range(min(questions, len(rows)))]
    same_db = dataset / "test_same_db.json"
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_spider.json").write_text(json.dumps([e for e in train if e["db_id"] not in held]))
    (out / "dev.json").write_text(json.dumps(dev))
    if same_db.exists():
        (out / "test_same_db.json").write_text(json.dumps([e for e in json.loads(same_db.read_text()) if e["db_id"] not in held]))
    (out / "tables.json").write_text((dataset / "tables.json").read_text())
    if not (out / "database").exists():
        os.symlink((dataset / "database").resolve(), out / "database")
    return {"held_out_databases": held, "validation_questions": len(dev)}


def run(argv: list[str], done: Path) -> None:
    if done.exists():
        return
    print("+", " ".join(argv), file=sys.stderr, flush=True)
    subprocess.run(argv, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=Path("data/demo"))
    parser.add_argument("--model", default="models/smollm2-135m-instruct")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--databases", type=int, default=3)
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    params = yaml.safe_load(args.params.read_text())
    work = args.work.resolve()
    data = work / "data"
    split = heldout_folder(args.dataset, data, args.databases, args.questions, args.seed)
    cli = [sys.executable, "-m", "text2sql_mlops.cli"]
    schema, generation = section_flags(params["schema"]), section_flags(params["generation"])
    guard = ["--eval_dataset", str(data), "--eval_split", "dev", "--eval_same_db_split", "test_same_db"]
    started = time.time()

    def evaluate(name: str, model: Path) -> dict:
        out = work / "eval" / name
        run([*cli, "eval", "--adapter", str(model), "--model_path", args.model, "--dataset_path", str(data), "--split", "dev",
             *generation, *schema, *section_flags({**params["eval"], "limit": "all"}), "--output_dir", str(out), "--overwrite",
             "--no_progress"], out / "summary.json")
        summary = json.loads((out / "summary.json").read_text())
        return {key: round(100 * summary[key], 2) for key in ("first_turn_ex", "final_ex_strict", "final_ex_oracle")}

    sft_gold = work / "sft"
    run([*cli, "train", "sft", "--model", args.model, "--dataset", str(data), "--split", "train", *schema, "--out", str(sft_gold),
         *section_flags(params["sft_gold"]), *guard], sft_gold / "training_summary.json")
    rows = {"SFT phase 1": evaluate("sft", sft_gold)}
    for name in args.variants:
        rollout_change, phase2 = VARIANTS[name]
        rollout = {**params["rollout_train"], **rollout_change}
        # variants with the same rollout settings share its rollout and synthetic negatives
        shared = work / ("rollout_" + hashlib.sha256(json.dumps(rollout, sort_keys=True).encode()).hexdigest()[:8])
        run([*cli, "rollout", "--model_path", args.model, "--adapter_path", str(sft_gold), "--dataset_path", str(data),
             "--split", "train", *generation, *schema, *section_flags(rollout), *guard, "--output_dir", str(shared / "rollout"),
             "--overwrite", "--no_progress"], shared / "rollout" / "summary.json")
        folder = work / f"variant_{name}"
        folder.mkdir(exist_ok=True)
        policy = sft_gold
        if phase2 is not None:
            policy = folder / "sft"
            sft_phase2(cli, shared, policy, phase2, args.model, sft_gold, params, guard)
            rows[f"SFT ({name})"] = evaluate(f"{name}_sft", policy)
        run([*cli, "pairs", "synth", "--dataset_path", str(data), "--split", "train", "--limit", str(rollout["limit"]),
             "--spread", str(rollout["spread"]).lower(), *schema, *section_flags(params["synth"]), "--timeout_sec",
             str(params["generation"]["timeout_sec"]), *guard, "--out", str(shared / "synth.jsonl"), "--no_progress"],
            shared / "synth.jsonl")
        run([*cli, "pairs", "mine", "--trajectories", str(shared / "rollout"), "--out", str(shared / "natural.jsonl"),
             *section_flags(params["mine"]), *guard], shared / "natural.jsonl")
        run([*cli, "pairs", "merge", "--inputs", str(shared / "natural.jsonl"), str(shared / "synth.jsonl"), "--output",
             str(shared / "train.jsonl"), *section_flags(params["merge"]), *guard], shared / "train.jsonl")
        run([*cli, "train", "dpo", "--model", args.model, "--pairs", str(shared / "train.jsonl"), "--init_adapter", str(policy),
             "--out", str(folder / "sft_dpo"), *section_flags(params["dpo"]), *guard], folder / "sft_dpo" / "training_summary.json")
        rows[f"SFT+DPO ({name})"] = evaluate(f"{name}_sft_dpo", folder / "sft_dpo")
    result = {**split, "date": time.strftime("%Y-%m-%d"), "wall_s": round(time.time() - started), "ex": rows}
    print("| model | one-shot | + CM strict | + CM oracle |\n|---|---:|---:|---:|")
    for name, ex in rows.items():
        print(f"| {name} | {ex['first_turn_ex']:.2f}% | {ex['final_ex_strict']:.2f}% | {ex['final_ex_oracle']:.2f}% |")
    print(json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


def sft_phase2(cli: list[str], shared: Path, out: Path, targets: tuple[bool, bool], model: str, sft_gold: Path, params: dict,
               guard: list[str]) -> None:
    """dvc.yaml's `sft` stage: the rollout's gold_vs_failed_repair pairs give (repair chat, gold)
    targets, its trajectories the first-turn gold and correct answers; phase 1 continued on them."""
    repairs = shared / "repairs.jsonl"
    run([*cli, "pairs", "mine", "--trajectories", str(shared / "rollout"), "--pair_types", "gold_vs_failed_repair",
         "--use_gold_when_failed", "--out", str(repairs), *guard], repairs)
    with_repairs, with_first_turns = targets
    run([*cli, "train", "sft", "--model", model, "--init_adapter", str(sft_gold), *(["--pairs", str(repairs)] if with_repairs else []),
         *(["--trajectories", str(shared / "rollout")] if with_first_turns else []), "--out", str(out),
         *section_flags(params["sft"]), *guard], out / "training_summary.json")


if __name__ == "__main__":
    main()
