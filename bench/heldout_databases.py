"""Choose the post-SFT recipe (DPO, repair SFT) on held-out TRAINING databases, never on dev.

    python bench/heldout_databases.py --dataset data/demo --model models/smollm2-135m-instruct \\
        --work /tmp/heldout [--variants first spread spread_repair_pairs spread_rpo spread_rpo_lr5e5 \\
        spread_synth_repair synth_repair_only spread_synth_repair_rpo] \\
        [--repair_variants repair_only repair_mixed first_turn_only repair_replay] [--repair_seeds 0 1 2] \\
        [--repair_source greedy|sampled] [--repair_group_by_prefix] [--repair_group_by_length] [--repair_questions 200] [--repair_steps 12] \\
        [--repair_from sft|VARIANT] [--repair_turn_only] [--out result.json]

Dev's databases are ones the model never trained on; a check on new questions of the training
databases did not predict what DPO does there (README). So this holds out whole training
databases instead: ``--databases`` of them (seeded draw), ``--questions`` questions of each
(evenly spaced) as the validation set. SFT trains on the other databases with the pipeline's
flags (params.yaml's sections, rendered as dvc.yaml renders them), then each variant runs the
pipeline's rollout_train -> synth -> pairs -> sft_dpo stages and ``eval`` on the validation set:

  first                rollout and synthetic negatives on the first TRAIN_LIMIT questions
  spread               on TRAIN_LIMIT questions evenly spaced over the split (every database)
  spread_repair_pairs  spread, and pairs mine also gold_vs_failed_repair
  spread_rpo           spread_repair_pairs, DPO loss sigmoid + an SFT term on the chosen answers
  spread_rpo_lr5e5     spread_rpo at repair SFT's learning rate (5e-5, 10x the pipeline's DPO)
  spread_synth_repair  spread's pairs + synthetic repair-turn pairs (synth_repair_pairs.py: gold
                       vs. the failed query repeated), 16 steps at 2e-5
  synth_repair_only    those synthetic repair-turn pairs alone, 16 steps at 1e-4
  spread_synth_repair_rpo  spread_synth_repair with an SFT term (loss sigmoid,sft), 16 steps at 5e-5

Repair variants (``--repair_variants``) continue the SFT model on the repair turn instead
(``repair_sft`` below): ``repair_only`` on its own failures' repair chats with the gold SQL,
``repair_mixed`` also on that rollout's first-turn targets, ``first_turn_only`` on those alone,
``repair_replay`` on repair_mixed's targets and the gold of every training question (replay, to
hold the first answers in place: repair_mixed cost the demo's test_same_db 19 points, README).
Their repair chats come from a greedy strict rollout of 200 spread training questions
(``--repair_source greedy``) or from the pipeline's own rollout_train (``sampled``: no extra
rollout, but 48 questions' 4 samples give 24 distinct repair chats); ``--repair_group_by_prefix``
batches them by shared prompt prefix, ``--repair_group_by_length`` by length (less padding). ``--repair_from spread`` continues that variant's SFT+DPO
model (on its own failures) instead of the SFT model; ``--repair_turn_only`` evaluates each
repair model as the repair turns' model only (``eval --repair_adapter_path``): the first turn
stays the model it continued, so its one-shot answers are that model's own. ``--repair_from
spread --repair_turn_only --repair_variants repair_only`` is the pipeline's ``repair`` stage.

Every step is skipped when its output exists, so a killed run continues. Prints (and with
--out writes) one row per model: one-shot, + CM repair strict, + CM repair oracle EX on the
held-out databases and (``--same_db``, the default) on the held-out folder's test_same_db:
new questions on the training databases, where a recipe can cost what it gains on new
databases (repair SFT did: README). About 45 minutes on 2 cores for SFT and the four DPO
variants (two rollouts), 8 more for each repair variant and seed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import yaml

from text2sql_mlops.core.cliutil import section_flags as flags
from text2sql_mlops.core.records import NATURAL_PAIR_TYPES

WITH_REPAIR_PAIRS = ["--pair_types", *NATURAL_PAIR_TYPES]  # the default types and gold_vs_failed_repair
VARIANTS = {  # (rollout_train changes, pairs mine flags, dpo changes)
    "first": ({"spread": False}, [], {}),
    "spread": ({"spread": True}, [], {}),
    "spread_repair_pairs": ({"spread": True}, WITH_REPAIR_PAIRS, {}),
    "spread_rpo": ({"spread": True}, WITH_REPAIR_PAIRS, {"loss_type": "sigmoid,sft"}),
    # the SFT term at repair SFT's learning rate (10x DPO's), so that it can teach the repair turn
    "spread_rpo_lr5e5": ({"spread": True}, WITH_REPAIR_PAIRS, {"loss_type": "sigmoid,sft", "learning_rate": "0.00005"}),
    # + synthetic repair-turn pairs (synth_repair_pairs.py): gold vs. the failed query repeated
    "spread_synth_repair": ({"spread": True}, [], {"max_steps": 16, "learning_rate": "0.00002"}),
    "synth_repair_only": ({"spread": True}, [], {"max_steps": 16, "learning_rate": "0.0001"}),
    # with an SFT term on the chosen answers, which keeps DPO from lowering both sides' likelihood
    "spread_synth_repair_rpo": ({"spread": True}, [], {"max_steps": 16, "learning_rate": "0.00005", "loss_type": "sigmoid,sft"}),
}
SYNTH_REPAIR_KEEPS_PIPELINE_PAIRS = {"spread_synth_repair": True, "synth_repair_only": False, "spread_synth_repair_rpo": True}


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


# Repair SFT: continue SFT on the repair turn of the SFT policy's own failures. Its greedy
# rollout (strict scope: only answers that fail to run get a repair turn) on REPAIR_QUESTIONS
# evenly spaced training questions; gold_vs_failed_repair pairs give (repair chat, gold)
# targets; `train sft --pairs` learns their chosen side, with --trajectories also the
# rollout's first-turn gold and correct answers (so the first turn is not forgotten).
REPAIR_QUESTIONS = 200
REPAIR_STEPS = 12
REPAIR_LEARNING_RATE = "0.00005"
REPAIR_VARIANTS = {  # (repair targets, the rollout's first-turn targets, the train split's gold)
    "repair_only": (True, False, False),
    "repair_mixed": (True, True, False),
    "first_turn_only": (False, True, False),  # the control: the same rollout's first-turn targets alone
    "repair_replay": (True, True, True),
}


def repair_sft(name: str, seed: int, work: Path, sft: Path, data: Path, params: dict, cli: list[str], generation: list[str],
               schema: list[str], guard: list[str], model: str, source: str, group_by_prefix: bool,
               questions: int = REPAIR_QUESTIONS, steps: int = REPAIR_STEPS, learning_rate: str = REPAIR_LEARNING_RATE,
               folder_name: str = "repair", group_by_length: bool = False) -> Path:
    """``source``: whose failures give the repair chats: ``greedy`` (a strict greedy rollout of
    ``questions`` spread training questions) or ``sampled`` (the pipeline's rollout_train, the
    one DPO's pairs come from: no rollout of its own). ``sft`` is the model continued (and
    rolled out); ``folder_name`` the folder under ``work`` its repair runs go to."""
    folder = work / folder_name
    sized = "" if questions == REPAIR_QUESTIONS else f"_q{questions}"
    if source == "greedy":
        rollout = folder / f"rollout{sized}"
        run([*cli, "rollout", "--model_path", model, "--adapter_path", str(sft), "--dataset_path", str(data), "--split", "train",
             *generation, *schema, "--offset", "1", "--limit", str(questions), "--spread", "--max_turns", "2",
             "--num_samples", "1", "--temperature", "0", "--feedback_detail", params["eval"]["feedback_detail"],
             "--feedback_mode", "error_only", "--repair_scope", "online", "--use_gold_when_failed", *guard,
             "--output_dir", str(rollout), "--overwrite", "--no_progress"], rollout / "summary.json")
    else:
        rollout = pipeline_rollout(work, sft, data, params, cli, generation, schema, guard, model, spread=True)
    targets = folder / (f"repairs{sized}.jsonl" if source == "greedy" else f"repairs_{source}.jsonl")
    run([*cli, "pairs", "mine", "--trajectories", str(rollout), "--out", str(targets), "--use_gold_when_failed",
         "--pair_types", "gold_vs_failed_repair", *guard], targets)
    repairs, first_turns, replay = REPAIR_VARIANTS[name]
    tags = ([] if source == "greedy" else [source]) + ([sized[1:]] if sized and source == "greedy" else [])
    tags += (["prefix"] if group_by_prefix else []) + (["bylength"] if group_by_length else [])
    tags += [] if steps == REPAIR_STEPS else [f"{steps}steps"]
    tags += ([] if float(learning_rate) == float(REPAIR_LEARNING_RATE) else [f"lr{float(learning_rate):g}"]) + ([f"seed{seed}"] if seed else [])
    out = folder / "_".join([f"sft_{name}", *tags])
    run([*cli, "train", "sft", "--model", model, "--init_adapter", str(sft), *(["--pairs", str(targets)] if repairs else []),
         *(["--trajectories", str(rollout)] if first_turns else []),
         *(["--dataset", str(data), "--split", "train", *schema] if replay else []),
         "--out", str(out), "--full_finetune", "--last_layers", "0", "--per_device_train_batch_size", "8", "--max_steps", str(steps),
         "--learning_rate", learning_rate,
         *(["--group_by_prefix"] if group_by_prefix else []), *(["--group_by_length"] if group_by_length else []),
         "--max_length", "1024", "--logging_steps", "4", "--seed", str(seed), *guard], out / "training_summary.json")
    return out


def pipeline_rollout(work: Path, sft: Path, data: Path, params: dict, cli: list[str], generation: list[str], schema: list[str],
                     guard: list[str], model: str, spread: bool) -> Path:
    """The pipeline's rollout_train of the SFT model (params.yaml's section), on the first or spread questions."""
    rollout = work / ("spread" if spread else "first") / "rollout"  # variants with the same questions share it
    run([*cli, "rollout", "--model_path", model, "--adapter_path", str(sft), "--dataset_path", str(data), "--split", "train",
         *generation, *schema, *flags({**params["rollout_train"], "spread": spread}), *guard, "--output_dir", str(rollout),
         "--overwrite", "--no_progress"], rollout / "summary.json")
    return rollout


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
    parser.add_argument("--repair_variants", nargs="*", default=list(REPAIR_VARIANTS), choices=list(REPAIR_VARIANTS))
    parser.add_argument("--repair_seeds", nargs="+", type=int, default=[0], help="data-order seeds of the repair variants")
    parser.add_argument("--repair_source", choices=["greedy", "sampled"], default="greedy",
                        help="repair chats from a greedy rollout of 200 questions, or from the pipeline's rollout_train")
    parser.add_argument("--repair_group_by_prefix", action="store_true", help="repair SFT in batches that share a prompt prefix")
    parser.add_argument("--repair_group_by_length", action="store_true", help="repair SFT in batches of similar length (less padding)")
    parser.add_argument("--repair_questions", type=int, default=REPAIR_QUESTIONS, help="questions of the greedy repair rollout")
    parser.add_argument("--repair_steps", type=int, default=REPAIR_STEPS, help="repair SFT steps (of 8 examples)")
    parser.add_argument("--repair_learning_rate", default=REPAIR_LEARNING_RATE, help="repair SFT's learning rate")
    parser.add_argument("--repair_from", default="sft",
                        help="the model repair SFT continues (and whose failures it learns): sft, or a variant's SFT+DPO")
    parser.add_argument("--repair_turn_only", action="store_true",
                        help="evaluate each repair model on the repair turns only, the first turn staying the model it continued")
    parser.add_argument("--same_db", action=argparse.BooleanOptionalAction, default=True,
                        help="also evaluate on test_same_db: new questions of the training databases (default: on)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    params = yaml.safe_load(args.params.read_text())
    work = args.work.resolve()
    data = work / "data"
    split = heldout_folder(args.dataset, data, args.databases, args.questions, args.seed)
    cli = [sys.executable, "-m", "text2sql_mlops.cli"]
    schema, generation = flags(params["schema"]), flags(params["generation"])
    guard = ["--eval_dataset", str(data), "--eval_split", "dev", "--eval_same_db_split", "test_same_db"]
    started = time.time()

    def evaluate(name: str, adapter: Path, repair_adapter: Path | None = None) -> dict:
        """EX on the held-out databases (dev) and, with --same_db, on new questions of the training ones;
        with ``repair_adapter``, that model answers the repair turns."""
        ex = {}
        for split in ("dev", "test_same_db") if args.same_db else ("dev",):
            out = work / "eval" / (name if split == "dev" else f"{name}_{split}")
            repair = ["--repair_adapter_path", str(repair_adapter)] if repair_adapter else []
            run([*cli, "eval", "--adapter", str(adapter), "--model_path", args.model, "--dataset_path", str(data), "--split", split,
                 *generation, *schema, *flags({**params["eval"], "limit": "all"}), *repair, "--output_dir", str(out), "--overwrite",
                 "--no_progress"], out / "summary.json")
            summary = json.loads((out / "summary.json").read_text())
            ex[split] = {key: round(100 * summary[key], 2) for key in ("first_turn_ex", "final_ex_strict", "final_ex_oracle")}
        return ex

    sft = work / "sft"
    run([*cli, "train", "sft", "--model", args.model, "--dataset", str(data), "--split", "train", *schema, "--out", str(sft),
         *flags(params["sft"]), *guard], sft / "training_summary.json")
    rows = {"SFT": evaluate("sft", sft)}
    for name in args.variants:
        rollout_change, mine_flags, dpo_change = VARIANTS[name]
        folder = work / f"variant_{name}"
        folder.mkdir(exist_ok=True)
        rollout = {**params["rollout_train"], **rollout_change}
        questions = pipeline_rollout(work, sft, data, params, cli, generation, schema, guard, args.model, rollout["spread"]).parent
        run([*cli, "pairs", "synth", "--dataset_path", str(data), "--split", "train", "--limit", str(rollout["limit"]),
             "--spread", str(rollout["spread"]).lower(), *schema, *flags(params["synth"]), "--timeout_sec",
             str(params["generation"]["timeout_sec"]), *guard, "--out", str(questions / "synth.jsonl"), "--no_progress"],
            questions / "synth.jsonl")
        run([*cli, "pairs", "mine", "--trajectories", str(questions / "rollout"), "--out", str(folder / "natural.jsonl"),
             *flags(params["mine"]), *mine_flags, *guard], folder / "natural.jsonl")
        run([*cli, "pairs", "merge", "--inputs", str(folder / "natural.jsonl"), str(questions / "synth.jsonl"), "--output",
             str(folder / "train.jsonl"), *flags(params["merge"]), *guard], folder / "train.jsonl")
        pairs = [folder / "train.jsonl"]
        if name in SYNTH_REPAIR_KEEPS_PIPELINE_PAIRS:
            synthetic = work / "synth_repair.jsonl"
            run([sys.executable, str(Path(__file__).with_name("synth_repair_pairs.py")), "--dataset", str(data), "--params",
                 str(args.params), "--out", str(synthetic)], synthetic)
            pairs = (pairs if SYNTH_REPAIR_KEEPS_PIPELINE_PAIRS[name] else []) + [synthetic]
        run([*cli, "train", "dpo", "--model", args.model, "--pairs", *map(str, pairs), "--init_adapter", str(sft),
             "--out", str(folder / "sft_dpo"), *flags({**params["dpo"], **dpo_change}), *guard], folder / "sft_dpo" / "training_summary.json")
        rows[f"SFT+DPO ({name})"] = evaluate(name, folder / "sft_dpo")
    start, start_name = (sft, "SFT") if args.repair_from == "sft" else \
        (work / f"variant_{args.repair_from}" / "sft_dpo", f"SFT+DPO ({args.repair_from})")
    folder_name = "repair" if args.repair_from == "sft" else f"repair_from_{args.repair_from}"
    for name in args.repair_variants:
        for seed in args.repair_seeds:
            model = repair_sft(name, seed, work, start, data, params, cli, generation, schema, guard, args.model, args.repair_source,
                               args.repair_group_by_prefix, args.repair_questions, args.repair_steps, args.repair_learning_rate,
                               folder_name, args.repair_group_by_length)
            label = model.name.removeprefix("sft_") + ("" if args.repair_from == "sft" else f", from {args.repair_from}")
            if args.repair_turn_only:
                rows[f"{start_name}, repair turns by repair SFT ({label})"] = evaluate(
                    f"{folder_name}_turns_{model.name}", start, repair_adapter=model)
            else:
                rows[f"{start_name} + repair SFT ({label})"] = evaluate(
                    model.name if args.repair_from == "sft" else f"{folder_name}_{model.name}", model)
    result = {**split, "date": time.strftime("%Y-%m-%d"), "wall_s": round(time.time() - started), "ex": rows}
    splits = list(next(iter(rows.values())))
    print("| model | " + " | ".join(f"{split}: one-shot | + CM strict | + CM oracle" for split in splits) + " |")
    print("|---|" + "---:|" * 3 * len(splits))
    for name, ex in rows.items():
        print(f"| {name} | " + " | ".join(f"{ex[split]['first_turn_ex']:.2f}% | {ex[split]['final_ex_strict']:.2f}% | "
                                         f"{ex[split]['final_ex_oracle']:.2f}%" for split in splits) + " |")
    print(json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
