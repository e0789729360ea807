"""How many failing first answers could ANY repair candidate fix? (the repair turn's headroom)

    python bench/repair_headroom.py --eval outputs/eval/sft_dpo/dev --model outputs/train/sft_dpo \\
        [--adapter DIR] [--variants greedy beams4 samples8 single] [--out repair_headroom.json]

Strict Column-Minimal repair (``online`` scope) sends back every first-turn answer that
failed to run. This script takes exactly those answers from a finished ``eval`` run and,
for each, asks the same model again in several ways:

  greedy     the repair prompt the loop built (chat history + CM feedback), greedy:
             what ``eval`` itself did, recomputed as a check
  beamsK     the same prompt, K beams (deterministic): K different repairs
  samplesK   the same prompt, K samples at temperature 0.8, top-p 0.95, seeded
  single     one user message: the first-turn prompt, the failed SQL and the feedback
             (no assistant turn to copy), greedy

Two counts per variant: ``strict_fixed`` (the first candidate that runs is correct: a
gold-free choice) and ``any_correct`` (some candidate matches gold: an oracle upper
bound, pass@K). If ``any_correct`` is zero, no decoding rule or candidate selector can
make this model's repairs add EX; only a model that answers differently can.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from text2sql_mlops.core.records import Trajectory, read_trajectories
from text2sql_mlops.data.load import load_examples
from text2sql_mlops.generation.chat import encode, render_prompt
from text2sql_mlops.prompts import extract_sql
from text2sql_mlops.scoring.scorer import Scorer
from text2sql_mlops.sql.sandbox import Sandbox


def variant_settings(name: str) -> dict:
    """``model.generate`` keyword arguments of one variant."""
    if name in ("greedy", "single"):
        return {"do_sample": False, "num_return_sequences": 1}
    if name.startswith("beams"):
        k = int(name[5:])
        return {"do_sample": False, "num_beams": k, "num_return_sequences": k}
    if name.startswith("samples"):
        k = int(name[7:])
        return {"do_sample": True, "temperature": 0.8, "top_p": 0.95, "top_k": 0, "num_return_sequences": k}
    raise SystemExit(f"repair_headroom: unknown variant {name!r}; use greedy, single, beamsK or samplesK")


def repair_messages(trajectory: Trajectory, variant: str) -> list[dict]:
    """The second-turn prompt as the loop recorded it, or its single-message form."""
    messages = trajectory.turns[1].messages
    if variant != "single":
        return messages
    system, first_user, failed, feedback = messages[0], messages[1], messages[2], messages[3]
    failed_sql = extract_sql(failed["content"])
    text = f"{first_user['content']}\n\nThis SQL was wrong:\n{failed_sql}\n{feedback['content']}"
    return [system, {"role": "user", "content": text}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", required=True, type=Path, help="an eval output folder (trajectories.jsonl, run.json)")
    parser.add_argument("--model", required=True, help="the model folder the eval used")
    parser.add_argument("--adapter", help="its LoRA adapter, if any")
    parser.add_argument("--variants", nargs="+", default=["greedy", "beams4", "samples8", "single"])
    parser.add_argument("--max_new_tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, help="only the first N failing answers (a quick check; report all)")
    parser.add_argument("--out", type=Path, help="write the counts as JSON here too")
    args = parser.parse_args()
    for variant in args.variants:
        variant_settings(variant)  # fail on a bad name before loading anything

    run = json.loads((args.eval / "run.json").read_text())
    examples = {e.id: e for e in load_examples(run["dataset_path"], run.get("db_root"), run["split"])}
    trajectories = read_trajectories(args.eval)
    # The answers strict (online) repair sends back: the first turn's selected candidate did not run.
    failing = [t for t in trajectories if not t.first.answer.executed and len(t.turns) > 1][:args.limit]
    print(f"{args.eval}: {len(trajectories)} questions, {len(failing)} first answers that did not run", file=sys.stderr)

    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    if args.adapter:
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, args.adapter).merge_and_unload()
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    results = {}
    with Sandbox() as sandbox:
        scorer = Scorer()
        for variant in args.variants:
            settings = variant_settings(variant)
            torch.manual_seed(args.seed)
            start = time.perf_counter()
            strict_fixed = any_correct = candidates = 0
            for trajectory in failing:
                example = examples[trajectory.id]
                ids = encode(tokenizer, render_prompt(tokenizer, repair_messages(trajectory, variant)))
                with torch.inference_mode():
                    out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                         max_new_tokens=args.max_new_tokens, pad_token_id=pad, **settings)
                sqls = [extract_sql(text) for text in tokenizer.batch_decode(out[:, len(ids):], skip_special_tokens=True)]
                ran = [sandbox.execute(example.db_path, sql).ok for sql in sqls]
                correct = [scorer.score(example.db_path, example.query, sql).match for sql in sqls]
                chosen = next((i for i, ok in enumerate(ran) if ok), 0)  # gold-free: the first that runs
                strict_fixed += correct[chosen]
                any_correct += any(correct)
                candidates += len(sqls)
            results[variant] = {"failing": len(failing), "candidates": candidates, "strict_fixed": strict_fixed,
                                "any_correct": any_correct, "wall_s": round(time.perf_counter() - start, 1)}
            print(f"{variant:>10}: strict fixed {strict_fixed}/{len(failing)}, any candidate correct "
                  f"{any_correct}/{len(failing)} ({candidates} candidates, {results[variant]['wall_s']} s)", flush=True)
        scorer.close()
    report = {"eval": str(args.eval), "model": args.model, "adapter": args.adapter, "questions": len(trajectories),
              "date": time.strftime("%Y-%m-%d"), "variants": results}
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
