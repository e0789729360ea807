"""The DVC pipeline end to end in a temp git repo: real `dvc pull`/`dvc repro`, a real MLflow store.

The project's own dvc.yaml, data.dvc and committed demo remote are used as they are;
params.yaml is the project's with the model swapped for a tiny random Llama (built
here, no download) generating with the hf backend (adapters are really loaded), and
the sizes shrunk, so every stage runs in seconds. What is checked: every stage ran and logged one MLflow run, metrics and
plots files exist, the champion alias points at the SFT+DPO adapter, `dvc status` is
clean afterwards, and the registered adapter can be pulled and evaluated.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow  # dvc repro of the whole pipeline on a tiny model: minutes

REPO = Path(__file__).resolve().parents[1]
SPLITS = ("dev", "test_same_db")
STAGES = ("model", "data_train", "data_test_same_db", "data_dev", "schema_recall", "sft", "rollout_train", "synth_negatives",
          "pairs", "dpo", "sft_dpo", "rollout_repair", "repair", *(f"eval_{model}_{split}" for model in ("base", "sft", "dpo", "sft_dpo") for split in SPLITS),
          "compare", *(f"report_{name}" for name in ("repair-breakdown", "routing", "online-repair", "column-errors")), "register")


def run(cmd: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_llama) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("pipeline") / "project"
    root.mkdir()
    for name in ("dvc.yaml", "data.dvc", ".dvcignore", "text2sql_mlops"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, root / name)
    (root / ".dvc").mkdir()
    shutil.copy2(REPO / ".dvc" / "config", root / ".dvc" / "config")
    shutil.copytree(REPO / ".dvc" / "demo-remote", root / ".dvc" / "demo-remote")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["model"] = {"path": "models/tiny", "source": "local"}
    params["generation"].update(generator="hf", max_new_tokens=16)
    params["eval"]["limit"] = 6
    params["rollout_train"]["limit"] = 10
    params["sft"].update(max_steps=2, per_device_train_batch_size=2, max_length=4096)
    params["dpo"].update(max_steps=2, per_device_train_batch_size=2, max_length=4096)
    params["rollout_repair"]["limit"] = 8
    params["repair"].update(max_steps=2, per_device_train_batch_size=2, max_length=4096)
    # A random model repairs nothing: its natural pairs are all gold fallbacks, which Synth20's two
    # 0.2 caps (gold fallback, synthetic) would leave no room for.
    params["merge"].update(input_fraction_limits=[1.0, 0.5], pair_type_max_fractions=["gold_vs_failed_attempt=0.5"])
    params["tracking"]["experiment"] = "pipeline-test"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copytree(tiny_llama, root / "models" / "tiny")  # 4096 positions: demo schemas are long in its tiny vocabulary
    (root / ".gitignore").write_text("/models/\n/mlruns/\n/data\n.dvc/cache/\n.dvc/tmp/\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    env.pop("MLFLOW_TRACKING_URI", None)
    run(["git", "init", "-q"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "project"], root, env)
    # A user's own dataset beside the demo (data/spider, as import-spider places it): no pull
    # or repro may absorb it into data.dvc or remove it.
    (root / "data" / "spider").mkdir(parents=True)
    (root / "data" / "spider" / "notes.txt").write_text("mine\n")
    run(["dvc", "pull", "-q", "data.dvc"], root, env)
    run(["dvc", "repro"], root, env)
    return root, env


def test_a_users_dataset_beside_the_demo_is_left_alone(project):
    """data.dvc tracks data/demo only: `dvc repro` once re-added the whole data/ folder (the
    user's data/spider copied into the cache and into data.dvc), and a later checkout of
    data.dvc deleted it."""
    root, env = project
    assert (root / "data" / "spider" / "notes.txt").read_text() == "mine\n"
    assert run(["git", "status", "--porcelain", "data.dvc"], root, env) == ""
    run(["dvc", "pull", "-q", "data.dvc"], root, env)
    run(["dvc", "checkout", "-q", "data.dvc"], root, env)
    assert (root / "data" / "spider" / "notes.txt").read_text() == "mine\n"


def test_every_stage_ran_and_status_is_clean(project):
    root, env = project
    assert "up to date" in run(["dvc", "status"], root, env)
    for split in ("train", *SPLITS):  # pulled offline from the committed remote
        assert (root / "data" / "demo" / {"train": "train_spider.json"}.get(split, f"{split}.json")).is_file()
    names = ["rollout_train", "pairs", "sft", "dpo", "sft_dpo", "rollout_repair", "repair", "compare", "register",
             *(f"eval_{model}_{split}" for model in ("base", "sft", "dpo", "sft_dpo") for split in SPLITS)]
    for name in names:
        assert (root / "metrics" / f"{name}.json").is_file(), name
    assert json.loads(run(["dvc", "metrics", "show", "--json"], root, env))
    plots = run(["dvc", "plots", "show", "--json"], root, env)
    assert "training loss" in plots and "EX by run and split" in plots and "ex_by_run.png" in plots
    for name in ("sft", "dpo", "sft_dpo", "repair"):
        # the demo recipe fine-tunes every weight of the last layers: whole model folders
        assert (root / "outputs" / "train" / name / "model.safetensors").is_file()
        assert [row["step"] for row in json.loads((root / "plots" / f"{name}.json").read_text())][-1] == 2
    # A random tiny model answers nonsense: every number is 0, but every stage ran on it.
    # The repair model: SFT+DPO continued on the repair chats of its own failures; it answers SFT+DPO's
    # repair turns (and only SFT+DPO's).
    chats = [json.loads(line) for line in (root / "outputs" / "repair" / "chats.jsonl").read_text().splitlines()]
    assert chats and all(pair["meta"]["pair_type"] == "gold_vs_failed_repair" for pair in chats)
    # rollout_repair --repair_prompts_only: each failing answer's repair turn repeats it (no model call), so
    # every one of them (but bad gold) is a repair chat
    rolled = [json.loads(line) for line in (root / "outputs" / "rollout_repair" / "trajectories.jsonl").read_text().splitlines()]
    repeated = [t for t in rolled if len(t["turns"]) == 2]
    assert all(t["turns"][1]["candidates"][0]["sql"] == t["turns"][0]["candidates"][0]["sql"] for t in repeated)
    assert len(chats) == sum(not t["gold_error"] for t in repeated)
    repair = json.loads((root / "outputs" / "train" / "repair" / "training_summary.json").read_text())
    assert repair["settings"]["init_adapter"] == "outputs/train/sft_dpo"
    for split in SPLITS:
        for model in ("sft", "dpo", "sft_dpo"):
            config = json.loads((root / "outputs" / "eval" / model / split / "summary.json").read_text())["config"]
            assert config.get("repair_adapter_path") == ("outputs/train/repair" if model == "sft_dpo" else None)
    for split in SPLITS:
        base = json.loads((root / "outputs" / "eval" / "base" / split / "summary.json").read_text())
        assert (base["examples"], base["first_turn_ex"], base["final_ex_strict"], base["final_ex_oracle"]) == (6, 0.0, 0.0, 0.0)
        assert base["config"]["split"] == split
    quality = json.loads((root / "outputs" / "pairs" / "dashboard" / "pair_quality.json").read_text())
    filtered = quality["quality"]["Filtered"]
    synthetic_cap = yaml.safe_load((root / "params.yaml").read_text())["merge"]["input_fraction_limits"][1]
    assert filtered["pairs"] > 0 and filtered["synthetic_fraction"] <= synthetic_cap
    for split in SPLITS:
        compare = json.loads((root / "outputs" / "compare" / split / "compare.json").read_text())
        assert list(compare["runs"]) == ["Base", "SFT", "DPO", "SFT+DPO"]
    assert (root / "outputs" / "compare" / "ex_by_run.png").read_bytes().startswith(b"\x89PNG")
    assert (root / "outputs" / "compare" / "training_loss.png").read_bytes().startswith(b"\x89PNG")
    routing = json.loads((root / "outputs" / "reports" / "routing" / "routing.json").read_text())
    assert list(routing["runs"]) == ["Base", "SFT", "DPO", "SFT+DPO"]


def test_each_stage_is_one_finished_mlflow_run_and_the_champion_is_registered(project):
    root, env = project
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("pipeline-test")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("pipeline_parent") == "true"]
    runs = [r for r in runs if r not in parents]
    assert sorted(r.data.tags["stage"] for r in runs) == sorted(STAGES)
    assert all(r.info.status == "FINISHED" for r in runs)
    # one dvc repro: one parent run spanning every stage, with compare's table
    assert len(parents) == 1 and {r.data.tags["mlflow.parentRunId"] for r in runs} == {parents[0].info.run_id}
    assert parents[0].info.start_time <= min(r.info.start_time for r in runs)
    assert parents[0].info.end_time >= max(r.info.end_time for r in runs)
    assert "compare/dev.SFT_DPO.final_ex_strict" in parents[0].data.metrics
    by_stage = {r.data.tags["stage"]: r for r in runs}
    assert by_stage["pairs"].data.metrics["pairs/quality.Filtered.pairs"] > 0
    assert "compare/dev.SFT_DPO.final_ex_strict" in by_stage["compare"].data.metrics  # MLflow keys allow no "+"
    assert "train/loss" in by_stage["sft_dpo"].data.metrics
    # params and metrics are disjoint: configuration is a param, never a metric
    for run in runs:
        assert not any(key.split("/", 1)[-1].startswith(("config.", "configuration.", "settings.", "runtime.")) for key in run.data.metrics)
    # params are the configuration each command recorded, so they are the values that ran
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert by_stage["eval_sft_dev"].data.params["eval.batch_size"] == str(params["generation"]["batch_size"])
    # the SFT output is a whole model (the demo recipe): it ran as the model itself, not params.yaml's model.path
    assert (by_stage["eval_sft_dev"].data.params["eval.model_path"], by_stage["eval_sft_dev"].data.params["eval.adapter_path"]) == (
        "outputs/train/sft", "None")
    assert by_stage["sft"].data.params["sft.max_steps"] == "2" and by_stage["sft"].data.params["runtime.device"] == "cpu"
    assert by_stage["rollout_train"].data.params["rollout.temperature"] == str(params["rollout_train"]["temperature"])
    assert by_stage["pairs"].data.params["merge.input_fraction_limits"] == "[1.0, 0.5]"
    assert by_stage["pairs"].data.params["mine.use_gold_when_failed"] == "True"
    assert by_stage["synth_negatives"].data.params["synth.limit"] == "10"
    assert by_stage["sft_dpo"].data.params["dpo.init_adapter"] == "outputs/train/sft"
    assert by_stage["schema_recall"].data.params["schema.mode"] == params["schema"]["schema_mode"]
    assert by_stage["data_dev"].data.params["data.split"] == "dev" and by_stage["register"].data.params["register.model_name"]
    assert by_stage["model"].data.params["model.hidden_size"] == "64"
    assert {a.path for a in client.list_artifacts(by_stage["pairs"].info.run_id, "dashboard")} >= {
        "dashboard/pair_quality.html", "dashboard/pair_types.png"}
    champion = client.get_model_version_by_alias("text2sql-sft-dpo", "champion")
    assert champion.run_id == by_stage["sft_dpo"].info.run_id
    # the version is the SFT+DPO run's logged MLflow model (a whole model in the demo recipe)
    record = json.loads((root / "outputs" / "train" / "sft_dpo" / "mlflow_run.json").read_text())
    assert champion.source == record["model_uri"] == f"models:/{record['model_id']}"
    assert client.get_logged_model(record["model_id"]).tags["kind"] == "whole_model"
    assert champion.tags["base_model"] == "models/tiny" and champion.tags["final_ex_strict"] == "0.0"
    # its repair model, registered beside it, holds champion with it
    paired = client.get_model_version_by_alias("text2sql-sft-dpo-repair", "champion")
    assert champion.tags["repair_model"] == f"models:/text2sql-sft-dpo-repair/{paired.version}"
    assert paired.run_id == by_stage["repair"].info.run_id


def test_an_mlflow_server_shows_the_runs_and_the_champion(project):
    """What the UI shows, through the REST API of a real `mlflow server` (bench/mlflow_ui_screenshots.py
    checks the rendered pages in a browser): every stage's run, nested under the execution's
    parent run, with its datasets, and the registered model's champion alias."""
    import socket
    import urllib.request

    root, env = project
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root / 'mlruns' / 'mlflow.db'}",
                               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                              cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/api/2.0/mlflow"

    def call(path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(f"{base}/{path}", data=json.dumps(body).encode() if body else None,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    try:
        for _ in range(120):
            try:
                experiment = call("experiments/get-by-name?experiment_name=pipeline-test")["experiment"]
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not start")
        runs = call("runs/search", {"experiment_ids": [experiment["experiment_id"]], "max_results": 500})["runs"]
        champion = call("registered-models/alias?name=text2sql-sft-dpo&alias=champion")["model_version"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs]
    assert sorted(t["stage"] for t in tags if "stage" in t) == sorted(STAGES)
    parent = next(r["info"]["run_id"] for r, t in zip(runs, tags) if t.get("pipeline_parent") == "true")
    assert all(t["mlflow.parentRunId"] == parent for t in tags if "stage" in t)
    eval_run = next(r for r, t in zip(runs, tags) if t.get("stage") == "eval_sft_dev")
    assert [d["dataset"]["name"] for d in eval_run["inputs"]["dataset_inputs"]] == ["dev"]
    assert "champion" in champion["aliases"]


def test_the_champion_is_pulled_and_evaluated(project, tmp_path):
    root, env = project
    out = tmp_path / "champion_eval"
    run(["text2sql-mlops", "eval", "--adapter", "models:/text2sql-sft-dpo@champion", "--generator", "hf",
         "--dataset_path", "data/demo", "--limit", "2", "--max_turns", "1", "--max_new_tokens", "8",
         "--output_dir", str(out), "--no_progress"], root, env)
    summary = json.loads((out / "summary.json").read_text())
    # the champion is a whole fine-tuned model (the demo recipe): it is the model, no adapter on a base
    assert summary["examples"] == 2 and summary["config"]["model_path"].startswith("models/registry/text2sql-sft-dpo/v")
    assert summary["config"]["adapter_path"] is None
    # the pair as the pipeline evaluated it: the champion and its repair model, both pulled, give the eval stage's answers
    out = tmp_path / "pair_eval"
    run(["text2sql-mlops", "eval", "--adapter", "models:/text2sql-sft-dpo@champion", "--generator", "hf",
         "--repair_adapter_path", "models:/text2sql-sft-dpo-repair@champion", "--dataset_path", "data/demo",
         "--output_dir", str(out), "--no_progress", *pipeline_eval_flags(root)], root, env)
    pulled = [json.loads(line) for line in (out / "trajectories.jsonl").read_text().splitlines()]
    staged = [json.loads(line) for line in (root / "outputs" / "eval" / "sft_dpo" / "dev" / "trajectories.jsonl").read_text().splitlines()]
    assert [[c["text"] for turn in t["turns"] for c in turn["candidates"]] for t in pulled] == \
           [[c["text"] for turn in t["turns"] for c in turn["candidates"]] for t in staged]
    assert any(len(t["turns"]) == 2 for t in pulled), "some repair turn was answered"


def pipeline_eval_flags(root: Path) -> list[str]:
    """The flags the pipeline's eval stages give (params.yaml's generation, schema and eval sections)."""
    from text2sql_mlops.core.cliutil import section_flags

    params = yaml.safe_load((root / "params.yaml").read_text())
    return [*section_flags(params["generation"]), *section_flags(params["schema"]), *section_flags(params["eval"])]
