"""Run the pipeline at two commits and say which outputs differ: the check that a refactor changed no behaviour.

    python bench/compare_pipeline_outputs.py BEFORE AFTER [--workdir /tmp/cmp] [--full] [--set eval.limit=8 ...]
    python bench/compare_pipeline_outputs.py --existing WORKSPACE_A WORKSPACE_B   # two finished runs

Each commit is cloned from this repository into ``--workdir/<commit>``, gets the same params
overrides (by default a small pipeline: a few training steps, few evaluation questions; ``--full``
runs the demo profile as it is), and runs ``dvc pull data.dvc && dvc repro`` with this checkout's
virtual environment and the clone's own code (PYTHONPATH; a ``text2sql-mlops`` shim on PATH).
The two pipelines run side by side with one torch thread each, so both see the same arithmetic.

Then every output ``dvc.lock`` records (``outs`` and metrics files) is compared by content hash;
for a folder or a JSON file that differs, the files and JSON keys that differ are listed, so
that the expected differences (MLflow run ids, wall times, registry versions) can be told from
real ones: each output is identical, differs only in such keys, only adds records (a key or a
file the before side lacks), or changed. ``--existing`` compares two workspaces that already ran (e.g. two fresh clones'
``make repro``) without running anything. Prints a Markdown table and writes it with the details to ``--workdir/report.md``.
Exit status 1 when an output changed (a value the before side had differs outside the keys
that record when or where a run happened, ``VOLATILE_KEYS``, or a file is gone), else 0.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
# A small demo pipeline that still runs every stage: 12 rollout questions of a 2-step SFT policy
# solve none, so the pair caps are opened (at their defaults, only an empty set meets them).
SMALL = ["eval.limit=8", "rollout_train.limit=12", "sft.max_steps=2", "sft.logging_steps=1",
         "dpo.max_steps=2", "dpo.logging_steps=1", "merge.pair_type_max_fractions=[gold_vs_failed_attempt=1.0]",
         "merge.input_fraction_limits=[1.0,1.0]"]
# Keys whose values say when, how long, where or under which MLflow id a stage ran: they differ
# between any two runs, refactor or not.
VOLATILE_KEYS = {"run_id", "experiment_id", "parent_run_id", "model_id", "model_uri", "adapter_uri", "artifact_uri",
                 "tracking_uri", "started", "ended", "start_time", "end_time", "date", "created", "timestamp",
                 "timing", "runtime", "version", "source", "commit", "git_commit", "pipeline_run", "path", "output_dir"}


def is_volatile(key: str) -> bool:
    """A key path naming a volatile key, or a duration or rate (``wall_s``, ``steps_per_s``)."""
    return any(part in VOLATILE_KEYS or part.endswith("_s") or part.endswith("_sec") for part in key.replace(" ", ".").split("."))


def clone(commit: str, workdir: Path, overrides: list[str]) -> Path:
    where = workdir / commit
    if not where.exists():
        subprocess.run(["git", "clone", "-q", str(REPO), str(where)], check=True)
        subprocess.run(["git", "-C", str(where), "checkout", "-q", commit], check=True)
        params = yaml.safe_load((where / "params.yaml").read_text())
        for item in overrides:
            key, _, value = item.partition("=")
            section, _, name = key.partition(".")
            params[section][name] = yaml.safe_load(value)
        (where / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        shim = where / ".shim"
        shim.mkdir()
        (shim / "text2sql-mlops").write_text(
            f"#!/bin/sh\nexec {sys.executable} -c 'import sys; from text2sql_mlops.cli import main; sys.exit(main())' \"$@\"\n")
        (shim / "text2sql-mlops").chmod(0o755)
    return where


def start(where: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(where), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PATH=f"{where / '.shim'}:{Path(sys.executable).parent}:{os.environ['PATH']}",
               TEXT2SQL_PIPELINE_RUN=f"compare {where.name}")
    log = open(where / "repro.log", "w")
    return subprocess.Popen("dvc pull -q data.dvc && dvc repro", shell=True, cwd=where, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def lock_outputs(where: Path) -> dict[str, str]:
    lock = yaml.safe_load((where / "dvc.lock").read_text())
    found = {}
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            found[out["path"]] = out.get("md5") or out.get("hash", "")
    return found


def digest(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def json_differences(a, b, prefix="") -> list[str]:
    """Key paths whose values differ (lists compared item by item)."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                found.append(f"{prefix}{key} (only in {'after' if key in b else 'before'})")
            else:
                found += json_differences(a[key], b[key], f"{prefix}{key}.")
        return found
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in json_differences(x, y, f"{prefix}{i}.")]
    return [] if a == b else [prefix.rstrip(".")]


def read_json(path: Path):
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError:
            return None


# Verdicts, mildest first: what differs is only when/how long/which run id; the after side only
# adds records (a key or file the before side lacks); or a value the before side had changed.
VOLATILE, ADDED, CHANGED = "differs only in run ids, times or places", "adds records only", "**changed**"
VERDICTS = (VOLATILE, ADDED, CHANGED)


def verdict_of(key: str) -> str:
    if is_volatile(key.removesuffix(" (only in after)")):
        return VOLATILE
    return ADDED if key.endswith("(only in after)") else CHANGED


def file_differences(before: Path, after: Path) -> tuple[list[str], str]:
    """(what differs, the worst verdict) between two files or folders."""
    if before.is_dir() and after.is_dir():
        names = sorted({p.relative_to(before) for p in before.rglob("*") if p.is_file()}
                       | {p.relative_to(after) for p in after.rglob("*") if p.is_file()})
        found, verdicts = [], [VOLATILE]
        for name in names:
            a, b = before / name, after / name
            if name.name == ".text2sql-mlops.lock":  # the pid of the last writer (DVC ignores it too)
                continue
            if not a.exists() or not b.exists():
                found.append(f"{name}: only in {'after' if b.exists() else 'before'}")
                verdicts.append(ADDED if b.exists() else CHANGED)
            elif digest(a) != digest(b):
                lines, verdict = file_differences(a, b)
                found += [f"{name}: {line}" for line in lines]
                verdicts.append(verdict)
        return found, max(verdicts, key=VERDICTS.index)
    a, b = read_json(before), read_json(after)
    if a is None or b is None:
        return ["content differs (not JSON)"], CHANGED
    keys = json_differences(a, b)
    shown = ", ".join(keys[:12]) + (f" (+{len(keys) - 12} more)" if len(keys) > 12 else "")
    return [shown], max((verdict_of(key) for key in keys), key=VERDICTS.index, default=VOLATILE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", help="commit (or, with --existing, a workspace folder)")
    parser.add_argument("after", help="commit (or, with --existing, a workspace folder)")
    parser.add_argument("--existing", action="store_true", help="compare two finished workspaces; run nothing")
    parser.add_argument("--workdir", default="/tmp/compare-pipeline")
    parser.add_argument("--full", action="store_true", help="the demo profile as committed (about an hour per commit)")
    parser.add_argument("--set", nargs="+", default=[], metavar="SECTION.KEY=VALUE", help="more params overrides")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if args.existing:
        places = [Path(args.before), Path(args.after)]
        commits = [subprocess.run(["git", "-C", str(p), "rev-parse", "--short", "HEAD"], capture_output=True,
                                  text=True).stdout.strip() or p.name for p in places]
        overrides, codes, wall = ["as each workspace ran"], [0, 0], 0.0
    else:
        overrides = ([] if args.full else SMALL) + args.set
        commits = [subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", c], check=True, capture_output=True,
                                  text=True).stdout.strip() for c in (args.before, args.after)]
        places = [clone(c, workdir, overrides) for c in commits]
        began = time.time()
        runs = [start(p) for p in places]
        codes = [r.wait() for r in runs]
        wall = time.time() - began
    if any(codes):
        for place, code in zip(places, codes):
            print(f"{place.name}: dvc repro exited {code}; see {place / 'repro.log'}", file=sys.stderr)
        return 2
    before, after = (lock_outputs(p) for p in places)
    rows, details, changed = [], [], 0
    for path in sorted(set(before) | set(after)):
        if before.get(path) == after.get(path):
            rows.append(f"| `{path}` | identical |")
            continue
        lines, verdict = file_differences(places[0] / path, places[1] / path)
        changed += verdict == CHANGED
        rows.append(f"| `{path}` | {verdict} |")
        details += [f"- `{path}`: {line}" for line in lines]
    report = "\n".join([
        f"Pipeline outputs of `{commits[0]}` and `{commits[1]}` ({time.strftime('%Y-%m-%d', time.gmtime())}, "
        + (f"{wall / 60:.1f} min for both, side by side; " if wall else "")
        + f"params overrides: {' '.join(overrides) or 'none'})", "",
        "| output | before vs after |", "|---|---|", *rows, "", *details])
    (workdir / "report.md").write_text(report + "\n")
    print(report)
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
