"""The hf backend's decoding against an earlier commit's, on the prompts of a finished run.

Replays one turn of a finished rollout or eval (its trajectories.jsonl and run.json: the
same prompts, sampling settings and batch size) through the current ``generation/hf.py``
and through the one at ``--baseline`` (read with ``git show``, loaded next to it), taking
turns, and reports seconds, the speed-up and whether every generated text is the same.

    python bench/bench_decoding.py --run outputs/rollout_train --model models/smollm2-135m-instruct \\
        --trained_model outputs/train/sft [--turn 1] [--baseline 61e4584] [--repeats 2]

``--trained_model``: the model folder the run generated with when it is not the base (a
fully fine-tuned model is a model folder). The default baseline is the commit before
decoding kept room in the cache, read a prompt's samples once and sorted only the top
candidates.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from run_turns import add_run_arguments, sampling_params, turn_requests  # noqa: E402

from text2sql_mlops.generation import hf as current  # noqa: E402
from text2sql_mlops.generation.hf_options import HFOptions  # noqa: E402


def module_at(revision: str):
    """``generation/hf.py`` as it was at ``revision``, importable beside the current one."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{revision}:text2sql_mlops/generation/hf.py"],
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "hf_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("text2sql_mlops.generation.hf_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, turn=1)
    parser.add_argument("--baseline", default="61e4584", help="the commit whose hf.py to compare with")
    args = parser.parse_args()

    run = Path(args.run)
    config, requests = turn_requests(run, args.turn)
    params = sampling_params(config)
    options = HFOptions(model_path=args.trained_model or args.model, batch_size=int(config.get("batch_size", 64)), progress=False)
    generators = {f"baseline ({args.baseline})": module_at(args.baseline).HFGenerator(options), "current": current.HFGenerator(options)}
    seconds: dict[str, list[float]] = {name: [] for name in generators}
    outputs: dict[str, list[list[str]]] = {}
    for _ in range(args.repeats):
        for name, generator in generators.items():
            start = time.perf_counter()
            outputs[name] = [[sample.text for sample in samples] for samples in generator.generate(requests, params)]
            seconds[name].append(time.perf_counter() - start)
    baseline, now = (outputs[name] for name in generators)
    same = sum(a == b for a, b in zip(baseline, now))
    print(f"{run}, turn {args.turn}: {len(requests)} prompts x {params.num_samples} samples (temperature {params.temperature}), "
          f"batch {options.batch_size}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, {time.strftime('%Y-%m-%d')}")
    print("| decoding | seconds (median) |")
    print("|---|---:|")
    for name in generators:
        print(f"| {name} | {statistics.median(seconds[name]):.1f} |")
    first, second = (statistics.median(values) for values in seconds.values())
    print(f"speed-up {first / second:.2f}x; the same texts for {same}/{len(requests)} prompts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
