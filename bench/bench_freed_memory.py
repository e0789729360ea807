"""Training steps with and without ``keep_freed_memory`` (glibc keeps freed memory for the next step).

Runs the pipeline's ``train sft`` (flags from params.yaml's ``schema`` and ``sft`` sections,
``--max_steps`` of them) in fresh processes, taking turns with the setting on (as `train`
runs) and off (the C allocator's defaults), and reports each run's training seconds, loss
and peak memory:

    python bench/bench_freed_memory.py --model models/smollm2-135m-instruct --dataset data/demo --steps 8
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

# The off runs replace the call in training/common.py before the command runs.
RUNNER = """
import resource, sys
import text2sql_mlops.training.common as common
if sys.argv[1] == "off":
    common.keep_freed_memory = lambda: False
from text2sql_mlops.cli import main
code = main(sys.argv[3:])
open(sys.argv[2], "w").write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
sys.exit(code)
"""


def flags(section: dict) -> list[str]:
    out = []
    for key, value in section.items():
        if value is True:
            out.append(f"--{key}")
        elif value is not False and value is not None:
            out += [f"--{key}", str(value)]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/smollm2-135m-instruct")
    parser.add_argument("--dataset", default="data/demo")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    params = yaml.safe_load(Path(args.params).read_text())
    sft = {**params["sft"], "max_steps": args.steps}
    command = ["train", "sft", "--model", args.model, "--dataset", args.dataset, "--split", params["data"]["train_split"],
               *flags(params["schema"]), *flags(sft)]
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; train sft with {args.steps} steps", file=sys.stderr)
    results: dict[str, list[dict]] = {"on": [], "off": []}
    for _ in range(args.repeats):
        for mode in ("on", "off"):
            with tempfile.TemporaryDirectory() as work:
                out, peak = Path(work) / "sft", Path(work) / "peak_kb"
                subprocess.run([sys.executable, "-c", RUNNER, mode, str(peak), *command, "--out", str(out)], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                summary = json.loads((out / "training_summary.json").read_text())
                results[mode].append({"train_s": summary["result"]["train_runtime_s"], "loss": summary["result"]["train_loss"],
                                      "peak_gb": round(int(peak.read_text()) / 1e6, 2)})
                print(mode, results[mode][-1], file=sys.stderr)
    print("| keep_freed_memory | training s (median) | runs | train loss | peak RSS (GB) |")
    print("|---|---:|---|---|---:|")
    for mode in ("off", "on"):
        runs = results[mode]
        each = ", ".join(f"{r['train_s']:.1f}" for r in runs)
        print(f"| {mode} | {statistics.median(r['train_s'] for r in runs):.1f} | {each} "
              f"| {runs[0]['loss']:.10f} | {max(r['peak_gb'] for r in runs)} |")
    same = len({r["loss"] for r in results["on"] + results["off"]}) == 1
    ratio = statistics.median(r["train_s"] for r in results["off"]) / statistics.median(r["train_s"] for r in results["on"])
    print(f"{ratio:.2f}x faster with it; the same loss in every run: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
