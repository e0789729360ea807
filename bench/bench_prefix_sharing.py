"""A training step with the batch's shared prompt prefix read once vs read in every row.

    python bench/bench_prefix_sharing.py --model models/smollm2-135m-instruct --dataset data/demo \
        [--batch 8] [--steps 4] [--threads 2]

Rows are the demo's SFT rows (gold of the train split, compact schema with sample values, as
`train sft --dataset` builds them). Two batchings of the same rows:

* ``by length``: batches of similar length (``--group_by_length``), read plainly;
* ``by database``: batches of one database's questions (``--group_by_prefix``), read plainly
  and with the shared prefix read once (``training/prefixes.py``).

Each step is TRL's fused-loss forward (answer tokens only), backward and AdamW on the fully
fine-tuned model; the three run in turn, each on its own copy of the same starting weights, so
that they see the same load. Prints seconds per step (median after one warm-up), the
positions each computes, and the largest difference between the plain and shared losses of
the same batches (the same updates, so the same weights at every step).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def demo_rows(model: str, dataset: str) -> list[dict]:
    from text2sql_mlops.data.load import default_tables_json, load_examples
    from text2sql_mlops.schema.select import PromptConfig
    from text2sql_mlops.training.common import load_tokenizer
    from text2sql_mlops.training.datasets import dataset_targets, sft_rows

    examples = load_examples(dataset, None, "train")
    targets, _ = dataset_targets(examples, PromptConfig(schema_format="compact", sample_values=3), default_tables_json(dataset))
    rows, _ = sft_rows(load_tokenizer(model), targets, 2048)
    return rows


def collate(rows: list[dict], pad: int):
    import torch

    width = max(len(row["input_ids"]) for row in rows)
    ids = torch.full((len(rows), width), pad)
    mask, labels = torch.zeros_like(ids), torch.full_like(ids, -100)
    for i, row in enumerate(rows):
        n = len(row["input_ids"])
        ids[i, :n] = torch.tensor(row["input_ids"])
        mask[i, :n] = 1
        labels[i, :n] = torch.tensor([t if m else -100 for t, m in zip(row["input_ids"], row["completion_mask"])])
    return ids, mask, labels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per reading, after one warm-up")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    from text2sql_mlops.training import prefixes
    from text2sql_mlops.training.device import score_answer_tokens_only

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    score_answer_tokens_only()
    rows = demo_rows(args.model, args.dataset)
    prompts = [row["input_ids"][: len(row["input_ids"]) - sum(row["completion_mask"])] for row in rows]
    order = prefixes.prefix_batches(prompts, args.batch, seed=0)
    by_database = [[rows[i] for i in order[start : start + args.batch]] for start in range(0, len(order), args.batch)]
    by_length_order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    by_length = [[rows[i] for i in by_length_order[start : start + args.batch]] for start in range(0, len(rows) - args.batch + 1, args.batch)]
    by_length = [by_length[i] for i in torch.randperm(len(by_length)).tolist()]

    base = AutoModelForCausalLM.from_pretrained(args.model)
    models = {}
    for name in ("length", "plain", "shared"):
        model = copy.deepcopy(base)
        add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
        if name == "shared":
            prefixes.share_prompt_prefixes(model)
        models[name] = (model.train(), torch.optim.AdamW(model.parameters(), lr=1e-4))
    pad = base.config.pad_token_id if base.config.pad_token_id is not None else 0

    def step(name: str, batch: list[dict]) -> tuple[float, float]:
        model, optimizer = models[name]
        ids, mask, labels = collate(batch, pad)
        started = time.perf_counter()
        loss = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return time.perf_counter() - started, loss.item()

    def positions(batch: list[dict], shared: bool) -> int:
        ids, mask, labels = collate(batch, pad)
        if not shared:
            return ids.numel()
        lengths = mask.sum(dim=1).tolist()
        groups = prefixes._groups(ids, mask, labels) or [(list(range(len(batch))), 0)]
        total = 0
        for members, length in groups:
            total += length
            for bucket in prefixes.length_buckets([lengths[i] - length for i in members]):
                total += len(bucket) * (max(lengths[members[i]] for i in bucket) - length)
        return total

    times = {"by length, plain": [], "by database, plain": [], "by database, shared": []}
    computed = {name: 0 for name in times}
    worst = 0.0
    for index in range(args.steps + 1):
        t_length, _ = step("length", by_length[index])
        t_plain, loss_plain = step("plain", by_database[index])
        t_shared, loss_shared = step("shared", by_database[index])
        worst = max(worst, abs(loss_plain - loss_shared))  # the same batches and updates: the same weights
        if index:
            for name, seconds in zip(times, (t_length, t_plain, t_shared)):
                times[name].append(seconds)
            computed["by length, plain"] += positions(by_length[index], False)
            computed["by database, plain"] += positions(by_database[index], False)
            computed["by database, shared"] += positions(by_database[index], True)
        print(f"step {index}: by length {t_length:.1f} s, by database plain {t_plain:.1f} s, shared {t_shared:.1f} s", file=sys.stderr, flush=True)

    result = {name: {"s_per_step": round(statistics.median(values), 2), "positions_computed": computed[name]} for name, values in times.items()}
    result["shared_vs_by_length_speedup"] = round(result["by length, plain"]["s_per_step"] / result["by database, shared"]["s_per_step"], 2)
    result["shared_vs_plain_speedup"] = round(result["by database, plain"]["s_per_step"] / result["by database, shared"]["s_per_step"], 2)
    result["largest_loss_difference"] = worst
    result["load_average"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
