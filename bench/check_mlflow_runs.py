"""After `make repro`: check what the MLflow store says about the pipeline run, fact by fact.

    python bench/check_mlflow_runs.py [--project .] [--log repro.log] [--load_champion]

Reads the project's store (mlruns/mlflow.db) with MLflow's client and checks, for the
latest pipeline execution (the newest parent run):

* every stage is a child run whose duration is its own (start and end recorded by the
  stage, not by `track`): with ``--log`` (the `make repro` output), each stage's duration
  is compared with the time between the "Running stage" lines DVC printed around it;
* params and metrics are disjoint in every run (configuration is never a metric);
* every training and evaluation run lists the datasets it read (``mlflow.log_input``);
* the registered model's ``champion`` version is a logged MLflow model of the transformers
  flavor, and with ``--load_champion`` it loads with plain ``mlflow.transformers.load_model``.

Prints one line per fact and a table of stage durations; exits 1 if a fact fails.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from datetime import datetime
from pathlib import Path

MODEL_NAME = "text2sql-sft-dpo"
TRAINING_AND_EVAL = re.compile(r"^(sft|dpo|sft_dpo|eval_.*)$")


def dvc_stage_seconds(log: Path) -> dict[str, float]:
    """Seconds between consecutive "Running stage 'X':" lines of a `make repro` log whose lines
    start with an ISO time (`make repro 2>&1 | while IFS= read -r l; do echo "$(date -u +%FT%T) $l"; done`).
    Without timestamps in the log, nothing."""
    stamped = re.compile(r"^\[?(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\]? .*Running stage '([^']+)'")
    times = [(datetime.fromisoformat(m.group(1)), m.group(2)) for line in log.read_text(errors="replace").splitlines()
             if (m := stamped.match(line))]
    return {name: (times[i + 1][0] - when).total_seconds() for i, (when, name) in enumerate(times[:-1])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path("."))
    parser.add_argument("--log", type=Path, help="the make repro output with timestamped lines, to compare durations")
    parser.add_argument("--load_champion", action="store_true", help="also load the champion with mlflow.transformers")
    args = parser.parse_args()
    os.chdir(args.project)
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri("sqlite:///mlruns/mlflow.db")
    mlflow.set_registry_uri("sqlite:///mlruns/mlflow.db")
    client = MlflowClient()
    failures = []

    def fact(ok: bool, text: str) -> None:
        print(("ok   " if ok else "FAIL ") + text)
        if not ok:
            failures.append(text)

    experiments = [e for e in client.search_experiments() if e.name != "Default"]
    runs = [r for e in experiments for r in client.search_runs([e.experiment_id], max_results=5000)]
    parents = [r for r in runs if r.data.tags.get("pipeline_parent") == "true"]
    fact(bool(parents), f"{len(parents)} pipeline parent run(s) in {', '.join(e.name for e in experiments)}")
    if not parents:
        return 1
    parent = max(parents, key=lambda r: r.info.start_time)
    stages = sorted((r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id),
                    key=lambda r: r.info.start_time)
    fact(bool(stages), f"latest parent {parent.info.run_name!r}: {len(stages)} stage runs")

    measured = dvc_stage_seconds(args.log) if args.log else {}
    print(f"\n{'stage':<32} {'MLflow duration':>16} {'DVC log':>10}")
    for run in stages:
        stage = run.data.tags.get("stage", run.info.run_name)
        seconds = ((run.info.end_time or run.info.start_time) - run.info.start_time) / 1000
        dvc_name = next((name for name in measured if name.replace("@", "_").replace("-", "_") == stage), None)
        shown = f"{measured[dvc_name]:>9.1f}s" if dvc_name else f"{'':>10}"
        print(f"{stage:<32} {seconds:>15.1f}s {shown}")
        if dvc_name and measured[dvc_name] > 30:  # short stages are dominated by `track` itself
            fact(abs(seconds - measured[dvc_name]) <= 0.10 * measured[dvc_name],
                 f"{stage}: MLflow {seconds:.0f} s within 10% of DVC's {measured[dvc_name]:.0f} s")
    print()
    overlap = {r.data.tags.get("stage", r.info.run_name): sorted(set(r.data.params) & set(r.data.metrics))
               for r in [parent, *stages]}
    fact(not any(overlap.values()), "params and metrics are disjoint in every run"
         + "".join(f"; {stage}: {keys[:3]}" for stage, keys in overlap.items() if keys))
    for run in stages:
        stage = run.data.tags.get("stage", "")
        if TRAINING_AND_EVAL.match(stage):
            inputs = [d.dataset.name for d in (run.inputs.dataset_inputs if run.inputs else [])]
            fact(bool(inputs), f"{stage} lists its datasets: {', '.join(inputs) or 'none'}")

    champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    fact(champion.source.startswith("models:/m-") or bool(getattr(champion, "model_id", None)),
         f"champion is version {champion.version}, source {champion.source}")
    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{MODEL_NAME}/{champion.version}/MLmodel")
        flavors = Path(local).read_text()
    except mlflow.exceptions.MlflowException as exc:
        flavors = f"(no MLmodel: {str(exc).splitlines()[0]})"
    fact("transformers:" in flavors, "the champion's MLmodel has the transformers flavor"
         + ("" if "transformers:" in flavors else f" {flavors}"))
    if args.load_champion:
        loaded = mlflow.transformers.load_model(f"models:/{MODEL_NAME}@champion")
        model = loaded["model"] if isinstance(loaded, dict) else loaded.model
        fact(model is not None, f"mlflow.transformers.load_model('models:/{MODEL_NAME}@champion') -> {type(model).__name__}")
    print(f"\n{len(failures)} failed" if failures else "\nall facts hold")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
