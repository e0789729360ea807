"""The hf backend's repair turn with and without the kept caches of the first turn's answers.

Replays turns 1 and 2 of a finished eval or rollout (its prompts, sampling settings and batch
size) through one generator, once with ``turn_cache_mb`` at its default and once at 0 (every
repair prompt read whole), taking turns, and reports each turn's seconds and whether every
generated text is the same:

    python bench/bench_turn_cache.py --run outputs/eval/base/dev --model models/smollm2-135m-instruct
    python bench/bench_turn_cache.py --run outputs/eval/sft/dev --model models/smollm2-135m-instruct \\
        --trained_model outputs/train/sft
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from run_turns import add_run_arguments, sampling_params, turn_requests  # noqa: E402

from text2sql_mlops.generation.hf import HFGenerator  # noqa: E402
from text2sql_mlops.generation.hf_options import HFOptions  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, turn=2)
    args = parser.parse_args()

    run = Path(args.run)
    config, first = turn_requests(run, 1)
    _, repairs = turn_requests(run, 2)
    params = sampling_params(config)
    model = args.trained_model or args.model
    print(f"{run}: {len(first)} first-turn and {len(repairs)} repair prompts, batch {config['batch_size']}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}", file=sys.stderr)

    seconds: dict[int, list[tuple[float, float]]] = {}
    texts: dict[int, list] = {}
    for _ in range(args.repeats):
        for cache_mb in (HFOptions.turn_cache_mb, 0):
            generator = HFGenerator(HFOptions(model_path=model, batch_size=int(config["batch_size"]), progress=False,
                                              turn_cache_mb=cache_mb))
            started = time.perf_counter()
            generator.generate(first, params)
            middle = time.perf_counter()
            answers = generator.generate(repairs, params)
            seconds.setdefault(cache_mb, []).append((middle - started, time.perf_counter() - middle))
            texts[cache_mb] = [[completion.text for completion in samples] for samples in answers]
            generator.close()

    kept, plain = HFOptions.turn_cache_mb, 0
    same = sum(a == b for a, b in zip(texts[kept], texts[plain]))
    print("| turn_cache_mb | turn 1 s | turn 2 (repairs) s |")
    print("|---:|---:|---:|")
    for cache_mb in (plain, kept):
        first_s = statistics.median(s for s, _ in seconds[cache_mb])
        repair_s = statistics.median(s for _, s in seconds[cache_mb])
        print(f"| {cache_mb} | {first_s:.1f} | {repair_s:.1f} |")
    ratio = statistics.median(s for _, s in seconds[plain]) / statistics.median(s for _, s in seconds[kept])
    print(f"repair turn {ratio:.2f}x faster with the kept caches; same texts {same}/{len(repairs)}")
    return 0 if same == len(repairs) else 1


if __name__ == "__main__":
    sys.exit(main())
