"""Rollout wall time with the candidates' SQL run by worker threads (overlapping the model's
next generate call) against the same rollout with the SQL run between generate calls.

    python bench/bench_rollout_overlap.py --dataset ../shared/spider-train --model models/smollm2-135m-instruct \
        [--generator hf] [--limit 48] [--chunk-size 16] [--workers 0 4] [--repeat 2] [--out FILE]
    python bench/bench_rollout_overlap.py --dataset ../shared/spider-train --generator mock --emulate-gpu 0.5 \
        --limit 512 --chunk-size 64

``--emulate-gpu S`` stands in for a model on a GPU or behind a server without one: the
mock's answers, each generate call taking S seconds during which the CPU is free.

One generator is built once and shared by every run (model loading is not timed). Each
repeat runs every --workers value in turn, alternating the order, into a fresh folder;
the fastest wall time per value is reported with its generation time, and the runs'
trajectories.jsonl must be byte-identical (the workers change when SQL runs, never what
it returns). Overlap needs at least two chunks: --limit over --chunk-size.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from text2sql_mlops.generation import create_generator  # noqa: E402
from text2sql_mlops.generation.mock import MockGenerator  # noqa: E402
from text2sql_mlops.rollout.command import run_rollout  # noqa: E402
from text2sql_mlops.rollout.config import RolloutConfig, generator_options  # noqa: E402


class EmulatedGPU(MockGenerator):
    """The mock's answers after ``seconds`` of sleep per call: the CPU stays free meanwhile."""

    frees_cpu = True

    def __init__(self, seconds: float):
        self.seconds = seconds

    def generate(self, requests, params):
        time.sleep(self.seconds)
        return super().generate(requests, params)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="Spider-layout folder")
    parser.add_argument("--split", default="train")
    parser.add_argument("--generator", default="hf")
    parser.add_argument("--model", help="model folder (hf)")
    parser.add_argument("--limit", type=int, default=48)
    parser.add_argument("--chunk-size", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 4])
    parser.add_argument("--max-turns", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--emulate-gpu", type=float, metavar="S", help="the mock, S seconds per generate call")
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args()

    base = dict(dataset_path=args.dataset, split=args.split, generator=args.generator, model_path=args.model,
                batch_size=args.batch_size if args.generator == "hf" else None, limit=args.limit,
                chunk_size=args.chunk_size, max_turns=args.max_turns, max_new_tokens=args.max_new_tokens,
                schema_format="compact", sample_values=3, repair_scope="online", feedback_detail="minimal",
                progress=False)
    probe = RolloutConfig(output_dir="unused", **base)
    if args.emulate_gpu is not None:
        generator = EmulatedGPU(args.emulate_gpu)
    else:
        generator = create_generator(args.generator, **generator_options(probe))  # progress=False: no bars of its own
    results: dict[int, list[dict]] = {w: [] for w in args.workers}
    with tempfile.TemporaryDirectory(prefix="bench-overlap-") as scratch:
        for repeat in range(args.repeat):
            order = args.workers if repeat % 2 == 0 else list(reversed(args.workers))
            for workers in order:
                out = Path(scratch) / f"r{repeat}-w{workers}"
                start = time.perf_counter()
                summary = run_rollout(RolloutConfig(output_dir=str(out), sql_workers=workers, **base), generator=generator)
                wall = time.perf_counter() - start
                results[workers].append({"wall_s": round(wall, 2), "generation_s": summary.timing["generation_s"],
                                         "trajectories": (out / "trajectories.jsonl").read_bytes()})
                print(f"repeat {repeat} workers {workers}: {wall:.1f} s (generation {summary.timing['generation_s']:.1f} s)",
                      file=sys.stderr, flush=True)
    generator.close()
    outputs = {run["trajectories"] for runs in results.values() for run in runs}
    reference = min(r["wall_s"] for r in results[args.workers[0]])
    rows = []
    for workers, runs in results.items():
        best = min(runs, key=lambda r: r["wall_s"])
        rows.append({"sql_workers": workers, "wall_s": best["wall_s"], "generation_s": best["generation_s"],
                     "speedup": round(reference / best["wall_s"], 3)})
    report = {"date": time.strftime("%Y-%m-%d"), "generator": args.generator, "emulate_gpu_s": args.emulate_gpu,
              "examples": args.limit,
              "chunk_size": args.chunk_size, "max_turns": args.max_turns, "identical_trajectories": len(outputs) == 1,
              "rows": rows}
    print("| sql_workers | wall s (best of %d) | generation s | speed-up |\n|---:|---:|---:|---:|" % args.repeat)
    for row in rows:
        print(f"| {row['sql_workers']} | {row['wall_s']:.1f} | {row['generation_s']:.1f} | {row['speedup']:.2f}x |")
    print(f"identical trajectories: {report['identical_trajectories']}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["identical_trajectories"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
