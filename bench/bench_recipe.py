"""What a CPU training step costs, per recipe: trained tokens per second of a plain PyTorch step.

    python bench/bench_recipe.py --model models/smollm2-135m-instruct --dataset data/demo \
        [--batch 8] [--steps 3] [--threads 2] [--out FILE]

Rows are the demo's real SFT rows (gold of the train split, compact schema with sample values,
exactly as `train sft --dataset` builds them). For each recipe one plain step is timed: forward,
loss on the answer tokens, backward, AdamW. Recipes:

* ``lora``: LoRA r=16 on every linear layer (the default);
* ``lora_last_<k>``: LoRA on the last k layers only (``--last_layers k``): backward stops there;
* ``full``: full fine-tuning, every weight trained;
* ``..._bucketed``: the same with batches of similar length (less padding).

Prints seconds per step and trained tokens per second (all tokens of the batch, padding
excluded), median over --steps after a warm-up step, with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def rows_for(model: str, dataset: str, limit: int) -> list[dict]:
    from text2sql_mlops.data.load import default_tables_json, load_examples
    from text2sql_mlops.schema.select import PromptConfig
    from text2sql_mlops.training.common import load_tokenizer
    from text2sql_mlops.training.datasets import dataset_targets, sft_rows

    examples = load_examples(dataset, None, "train")[:limit]
    targets, _ = dataset_targets(examples, PromptConfig(schema_format="compact", sample_values=3), default_tables_json(dataset))
    rows, _ = sft_rows(load_tokenizer(model), targets, 2048)
    return rows


def batches(rows: list[dict], batch: int, bucketed: bool) -> list[list[dict]]:
    ordered = sorted(rows, key=lambda r: len(r["input_ids"])) if bucketed else rows
    return [ordered[i:i + batch] for i in range(0, len(ordered) - batch + 1, batch)]


def collate(rows: list[dict]):
    import torch

    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n] = torch.tensor(r["input_ids"])
        mask[i, :n] = 1
        labels[i, :n] = torch.tensor([t if m else -100 for t, m in zip(r["input_ids"], r["completion_mask"])])
    return ids, mask, labels, int(mask.sum())


def build(model_dir: str, recipe: str):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if recipe.startswith("lora"):
        from text2sql_mlops.training.common import linear_module_names

        layers, targets = None, "all-linear"
        if recipe.startswith("lora_last_"):
            k = int(recipe.split("_")[2])
            total = model.config.num_hidden_layers
            layers, targets = list(range(total - k, total)), linear_module_names(model)
        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=targets,
                                                 layers_to_transform=layers, task_type="CAUSAL_LM"))
    model.train()
    return model


def time_recipe(model_dir: str, recipe: str, groups: list[list[dict]], steps: int) -> dict:
    import torch

    model = build(model_dir, recipe.removesuffix("_bucketed"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    times, tokens = [], []
    for group in groups[: steps + 1]:
        ids, mask, labels, count = collate(group)
        start = time.perf_counter()
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
        tokens.append(count)
    seconds = statistics.median(times[1:])
    trained = statistics.median(t / s for t, s in zip(tokens[1:], times[1:]))
    return {"recipe": recipe, "s_per_step": round(seconds, 2), "tokens_per_step": int(statistics.median(tokens[1:])),
            "tokens_per_s": round(trained, 1), "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--dataset", required=True, help="a Spider-layout folder whose train split gives the rows")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per recipe, after one warm-up step")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--recipes", nargs="+", default=["lora", "lora_bucketed", "lora_last_10_bucketed", "full_bucketed"])
    parser.add_argument("--out", help="also write the rows as JSON here")
    args = parser.parse_args()
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    rows = rows_for(args.model, args.dataset, 400)
    import random

    random.Random(0).shuffle(rows)
    results = []
    for recipe in args.recipes:
        groups = batches(rows, args.batch, recipe.endswith("_bucketed"))
        if recipe.endswith("_bucketed"):
            random.Random(1).shuffle(groups)  # buckets in random order, as a length-grouped sampler gives them
        results.append(time_recipe(args.model, recipe, groups, args.steps))
        print(json.dumps(results[-1]), flush=True)
    load = os.getloadavg()[0]
    print(f"\n| recipe | s/step | tokens/step | trained tokens/s | trainable params |  (batch {args.batch}, "
          f"{args.threads} threads, load {load:.1f})")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['recipe']} | {r['s_per_step']} | {r['tokens_per_step']} | {r['tokens_per_s']} | {r['trainable_params']:,} |")
    if args.out:
        Path(args.out).write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "batch": args.batch, "threads": args.threads,
                                              "load": load, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
