"""Reading repair prompts in length buckets vs one padded read (the hf backend).

A repair prompt holds the model's last answer: a few tokens, or max_new_tokens of chatter.
Read as one left-padded batch, most positions of the turn are pads. This replays the
prompts of one turn of a finished rollout or eval (its trajectories.jsonl) through the hf
backend both ways, alternating, and reports seconds, positions read and whether the
generated texts are the same.

    python bench/bench_repair_prefill.py --run outputs/eval/base/dev --model models/smollm2-135m-instruct \
        [--trained_model outputs/train/sft] [--turn 2] [--repeats 2]

``--trained_model``: the model folder the run evaluated when it is not the base (a fully
fine-tuned model is a model folder).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from run_turns import add_run_arguments, turn_requests  # noqa: E402

from text2sql_mlops.generation import SamplingParams  # noqa: E402
from text2sql_mlops.generation import hf as hf_module  # noqa: E402
from text2sql_mlops.generation.hf import HFGenerator  # noqa: E402
from text2sql_mlops.generation.hf_options import HFOptions  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, turn=2)
    args = parser.parse_args()

    run = Path(args.run)
    config, requests = turn_requests(run, args.turn)
    params = SamplingParams(max_new_tokens=int(config["max_new_tokens"]))
    generator = HFGenerator(HFOptions(model_path=args.trained_model or args.model, batch_size=int(config.get("batch_size", 64)), progress=False))

    one_bucket = lambda lengths, waste=0.25: [list(range(len(lengths)))]  # noqa: E731
    bucketed = hf_module.length_buckets
    positions = {"one padded read": 0, "length buckets": 0}
    prefill = generator._prefill

    def counting(rows, computed):
        positions[current] += len(rows) * max(len(own) for _, own in rows)
        return prefill(rows, computed)

    generator._prefill = counting
    seconds: dict[str, list[float]] = {"one padded read": [], "length buckets": []}
    outputs: dict[str, list[str]] = {}
    for _ in range(args.repeats):
        for current, buckets in (("one padded read", one_bucket), ("length buckets", bucketed)):
            hf_module.length_buckets = buckets
            positions[current] = 0
            start = time.perf_counter()
            texts = [samples[0].text for samples in generator.generate(requests, params)]
            seconds[current].append(time.perf_counter() - start)
            outputs[current] = texts
    same = sum(a == b for a, b in zip(outputs["one padded read"], outputs["length buckets"]))
    print(f"{run}, turn {args.turn}: {len(requests)} prompts, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    print("| reading | seconds (median) | own positions read |")
    print("|---|---:|---:|")
    for name in seconds:
        print(f"| {name} | {statistics.median(seconds[name]):.1f} | {positions[name]:,} |")
    ratio = statistics.median(seconds["one padded read"]) / statistics.median(seconds["length buckets"])
    print(f"speed-up {ratio:.2f}x; same text {same}/{len(requests)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
