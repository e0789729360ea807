"""Measure batched ``hf`` generation against one example at a time, on Spider-style prompts.

    python bench/bench_generation.py [--model models/smollm2-135m-instruct] [--spider ../shared/spider-train]
                                     [-n 32] [--start 0 | --random SEED] [--batch-sizes 1 8 16 32]
                                     [--max-new-tokens 128] [--threads N] [--repeat N] [--out FILE]
                                     [--decoders loop generate] [--device cuda]

Builds ``n`` chat prompts from consecutive Spider train questions (the question plus
the CREATE TABLE statements of its database, asking for one query in a ```sql
block). In file order a database's questions come together, as they do when a whole
split is generated, so prompts share their schema; ``--random SEED`` samples
questions from all over the file instead, where almost none do. Generates greedily
with each batch size and prints examples/s, generated tokens/s, the speed-up over
the first batch size and how many outputs differ from it (fp32 sums over different
batch shapes may flip a rare near-tie).

``--decoders loop generate`` times the hf backend's own decoding loop and transformers'
``generate`` (the ``decoder`` option) at each batch size; on a GPU (``--device cuda``) that is
the measurement that picks the GPU's decoder (issue 15, README "Generation speed").

The model is loaded once per batch size, outside the timing, and warmed up first.
On a CPU whose cores other processes also use, torch's OpenMP threads wait for each
other and a run can slow down tenfold: the load average is printed, ``--repeat``
keeps the fastest of several runs, and ``--threads 1`` is steadier on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from text2sql_mlops.generation import GenerationRequest, SamplingParams, create_generator  # noqa: E402

SYSTEM = "You are an expert SQLite developer. Answer the question with one SQLite query inside a ```sql code block."


def schema_text(db_file: Path) -> str:
    """The database's CREATE TABLE statements, as SQLite stored them."""
    conn = sqlite3.connect(f"{db_file.as_uri()}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL").fetchall()
    finally:
        conn.close()
    return "\n".join(sql.strip() + ";" for (sql,) in rows)


def spider_requests(spider: Path, count: int, start: int, sample_seed: int | None) -> list[GenerationRequest]:
    examples = json.loads((spider / "train_spider.json").read_text())
    if sample_seed is None:
        examples = examples[start : start + count]
    else:
        examples = random.Random(sample_seed).sample(examples, count)
    requests = []
    for example in examples:
        schema = schema_text(spider / "database" / example["db_id"] / f"{example['db_id']}.sqlite")
        user = f"Database schema:\n{schema}\n\nQuestion: {example['question']}"
        requests.append(GenerationRequest([{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]))
    return requests


def measure(model: str, requests: list[GenerationRequest], params: SamplingParams, batch_size: int, repeat: int,
            decoder: str = "loop", device: str = "auto") -> dict:
    generator = create_generator("hf", model_path=model, batch_size=batch_size, progress=False, decoder=decoder, device=device)
    generator.generate(requests[:1], SamplingParams(max_new_tokens=4))  # first calls pay one-time set-up costs
    seconds = float("inf")
    for _ in range(repeat):  # the fastest run is the one least slowed by other processes
        start = time.perf_counter()
        results = generator.generate(requests, params)
        seconds = min(seconds, time.perf_counter() - start)
    tokens = sum(samples[0].num_tokens for samples in results)
    return {
        "decoder": decoder,
        "batch_size": batch_size,
        "seconds": round(seconds, 1),
        "examples_per_s": len(requests) / seconds,
        "tokens_per_s": tokens / seconds,
        "generated_tokens": tokens,
        "texts": [samples[0].text for samples in results],
    }


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models/smollm2-135m-instruct", help="a model folder (e.g. from `text2sql-mlops model prepare`)")
    parser.add_argument("--spider", type=Path, default=REPO.parent / "shared" / "spider-train")
    parser.add_argument("-n", "--examples", type=int, default=32)
    parser.add_argument("--start", type=int, default=0, help="index of the first of the consecutive questions")
    parser.add_argument("--random", type=int, metavar="SEED", help="sample the questions at random with this seed instead")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 16, 32], help="the first one is the baseline")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--repeat", type=int, default=1, help="time each batch size this many times, keep the fastest")
    parser.add_argument("--decoders", nargs="+", default=["loop"], choices=["loop", "generate"],
                        help="hf decoders to time at each batch size (the first decoder's first batch size is the baseline)")
    parser.add_argument("--device", default="auto", help="auto (cuda when there is one), cpu, cuda, ...")
    parser.add_argument("--out", type=Path, help="also write the results as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    requests = spider_requests(args.spider, args.examples, args.start, args.random)
    params = SamplingParams(max_new_tokens=args.max_new_tokens)
    print(f"{args.examples} Spider train prompts, greedy, max_new_tokens={args.max_new_tokens}, model {args.model}, device {args.device}, "
          f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}", flush=True)

    rows = []
    for decoder in args.decoders:
        for batch_size in args.batch_sizes:
            rows.append(measure(args.model, requests, params, batch_size, args.repeat, decoder, args.device))
            print(f"  {decoder}, batch {batch_size}: {rows[-1]['seconds']} s (load average {os.getloadavg()[0]:.1f})", flush=True)
    baseline = rows[0]
    print(f"\n| decoder | batch | seconds | examples/s | generated tokens/s | speed-up | outputs differing from "
          f"{baseline['decoder']} at batch {baseline['batch_size']} |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        row["speedup"] = row["examples_per_s"] / baseline["examples_per_s"]
        row["differing"] = sum(a != b for a, b in zip(row["texts"], baseline["texts"]))
        print(f"| {row['decoder']} | {row['batch_size']} | {row['seconds']} | {row['examples_per_s']:.3f} | {row['tokens_per_s']:.1f} | {row['speedup']:.1f}x | {row['differing']}/{len(requests)} |")
    best = max(rows, key=lambda row: row["speedup"])
    print(f"\nbest: {best['decoder']} at batch {best['batch_size']}, {best['speedup']:.1f}x one example at a time "
          f"(target 5x), {best['differing']} of {len(requests)} outputs differ (allowed: {len(requests) // 16})")
    if args.out:
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
