"""MLflow tracking and the registry on a real store in a temp folder (SQLite backend)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from text2sql_mlops.cli import main as cli


@pytest.fixture
def store(tmp_path: Path, monkeypatch) -> Path:
    """A fresh project folder with its own mlruns/ store and params.yaml; cwd is set to it."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("tracking:\n  experiment: test-exp\neval:\n  limit: 3\n  nested: {a: 1}\n")
    (tmp_path / "data.dvc").write_text("outs:\n- md5: abc123.dir\n  path: data\n")
    return tmp_path


def client():
    from mlflow import MlflowClient

    from text2sql_mlops.tracking import tracking_uri

    return MlflowClient(tracking_uri())


def adapter_folder(path: Path, marker: str) -> Path:
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "models/base", "marker": marker}))
    (path / "adapter_model.safetensors").write_text(marker)
    return path


def test_track_logs_params_metrics_steps_artifacts_and_adapter(store: Path):
    (store / "summary.json").write_text(json.dumps({"first_turn_ex": 0.25, "repair": {"repaired": 3}, "flag": True, "none": None,
                                                    "config": {"batch_size": 16, "model_path": "models/x"}}))
    (store / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5}\n')
    adapter_folder(store / "adapter_dir", "v1")
    code = cli(["track", "--stage", "eval_base", "--params", "eval", "--metrics", "summary.json", "--steps", "metrics.jsonl",
                "--artifacts", "summary.json", "--adapter", "adapter_dir", "--record", "run.json",
                "--metrics_out", "m.json", "--plots_out", "p.json", "--tag", "k=v"])
    assert code == 0
    record = json.loads((store / "run.json").read_text())
    run = client().get_run(record["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "eval_base"
    # params: the params.yaml sections and the configuration the command wrote; metrics: outcomes only
    assert run.data.params == {"eval.limit": "3", "eval.nested.a": "1", "resolved.config.batch_size": "16",
                               "resolved.config.model_path": "models/x"}
    assert run.data.metrics == {"eval/first_turn_ex": 0.25, "eval/repair.repaired": 3, "eval/loss": 1.5}
    assert [m.value for m in client().get_metric_history(run.info.run_id, "eval/loss")] == [2.0, 1.5]
    tags = run.data.tags
    assert tags["stage"] == "eval_base" and tags["dvc_data_hash"] == "abc123.dir" and tags["k"] == "v" and tags["git_commit"]
    experiment = client().get_experiment(record["experiment_id"])
    # the UI opens it in the model-training view (runs and models), not the GenAI one (traces)
    assert experiment.name == "test-exp" and experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    artifacts = {a.path for a in client().list_artifacts(run.info.run_id)}
    assert artifacts == {"summary.json", "adapter"}
    assert {a.path for a in client().list_artifacts(run.info.run_id, "adapter")} == {"adapter/adapter_config.json", "adapter/adapter_model.safetensors"}
    assert record["adapter_uri"] == f"runs:/{run.info.run_id}/adapter"
    assert (store / "mlruns" / "mlflow.db").is_file()
    assert json.loads((store / "m.json").read_text()) == {"first_turn_ex": 0.25, "repair.repaired": 3.0}
    assert json.loads((store / "p.json").read_text()) == [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}]


def test_track_refuses_missing_outputs_without_creating_a_run(store: Path, capsys):
    assert cli(["track", "--stage", "x", "--metrics", "nowhere.json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing to log" in err[0]
    assert not (store / "mlruns").exists()
    assert cli(["track", "--stage", "x", "--params", "no_such_section"]) == 2


def test_a_failure_while_logging_never_leaves_a_finished_run(store: Path, monkeypatch):
    import text2sql_mlops.tracking as tracking

    (store / "a.txt").write_text("x")

    def broken(path):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tracking, "_log_artifact", broken)
    with pytest.raises(RuntimeError):
        tracking.log_stage("pairs", "test-exp", {}, artifacts=["a.txt"])
    runs = client().search_runs([client().get_experiment_by_name("test-exp").experiment_id])
    assert sorted((r.data.tags.get("pipeline_parent") == "true", r.info.status) for r in runs) == [(False, "FAILED"), (True, "FINISHED")]


def register_version(store: Path, name: str, strict: float | None, examples_hash: str = "a" * 64) -> dict:
    adapter = adapter_folder(store / f"adapter_{name}", name)
    assert cli(["track", "--stage", "sft_dpo", "--adapter", str(adapter), "--record", f"run_{name}.json"]) == 0
    summary = {"first_turn_ex": 0.1, "final_ex_strict": strict, "final_ex_oracle": 0.9, "executable_rate": 0.5, "examples": 10,
               "config": {"examples_sha256": examples_hash, "examples": 10}}
    (store / f"summary_{name}.json").write_text(json.dumps(summary))
    assert cli(["register", "--run", f"run_{name}.json", "--eval", f"summary_{name}.json", "--base_model", "models/base",
                "--out", f"decision_{name}.json"]) == 0
    return json.loads((store / f"decision_{name}.json").read_text())


def test_champion_moves_only_on_a_strict_improvement_on_the_same_set(store: Path):
    from text2sql_mlops.registry import DEFAULT_MODEL_NAME, resolve_adapter

    first = register_version(store, "one", 0.50)
    assert first["promoted"] and first["version"] == 1 and "first version" in first["reason"]
    worse = register_version(store, "two", 0.40)
    assert not worse["promoted"] and worse["champion_version"] == 1 and "does not beat" in worse["reason"]
    tie = register_version(store, "three", 0.50)
    assert not tie["promoted"]
    other_set = register_version(store, "four", 0.99, examples_hash="b" * 64)
    assert not other_set["promoted"] and "different set" in other_set["reason"]
    oracle_only = register_version(store, "five", None)
    assert not oracle_only["promoted"] and "cannot be compared" in oracle_only["reason"]
    better = register_version(store, "six", 0.60)
    assert better["promoted"] and better["version"] == 6

    registry = client()
    assert str(registry.get_model_version_by_alias(DEFAULT_MODEL_NAME, "champion").version) == "6"
    roles = {str(v.version): v.tags.get("role") for v in registry.search_model_versions(f"name='{DEFAULT_MODEL_NAME}'")}
    assert roles == {"1": "former_champion", "2": "challenger", "3": "challenger", "4": "challenger", "5": "challenger", "6": "champion"}
    six = registry.get_model_version(DEFAULT_MODEL_NAME, "6")
    assert six.tags["final_ex_strict"] == "0.6" and six.tags["base_model"] == "models/base" and six.tags["eval_dataset_hash"] == "a" * 16 + "-10"

    # Pulling: the alias resolves to its version, downloaded once into a per-version folder.
    local = resolve_adapter(f"models:/{DEFAULT_MODEL_NAME}@champion", cache_dir=store / "cache")
    assert json.loads(Path(local, "adapter_config.json").read_text())["marker"] == "six"
    assert Path(local) == store / "cache" / DEFAULT_MODEL_NAME / "v6"
    first_version = resolve_adapter(f"models:/{DEFAULT_MODEL_NAME}/1", cache_dir=store / "cache")
    assert json.loads(Path(first_version, "adapter_config.json").read_text())["marker"] == "one"


def test_manual_promotion_and_clear_errors(store: Path, capsys):
    from text2sql_mlops.errors import UserError
    from text2sql_mlops.registry import resolve_adapter

    register_version(store, "one", 0.5)
    register_version(store, "two", 0.9, examples_hash="c" * 64)
    assert cli(["register", "--run", "run_two.json", "--eval", "summary_two.json", "--promote"]) == 0
    assert str(client().get_model_version_by_alias("text2sql-sft-dpo", "champion").version) == "3"
    capsys.readouterr()
    with pytest.raises(UserError, match="alias nope"):
        resolve_adapter("models:/text2sql-sft-dpo@nope", cache_dir=store / "cache")
    with pytest.raises(UserError, match="adapter_config.json missing"):
        resolve_adapter(str(store / "nowhere"))
    (store / "norun.json").write_text(json.dumps({"run_id": "x"}))
    assert cli(["register", "--run", "norun.json", "--eval", "summary_one.json"]) == 2
    assert "logged no adapter" in capsys.readouterr().err


# --------------------------------------------------------------------------- concurrent stages, inputs checked first


def track_process(store: Path, stage: str):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.Popen([sys.executable, "-m", "text2sql_mlops.cli", "track", "--stage", stage, "--params", "eval",
                             "--metrics", "summary.json", "--steps", "metrics.jsonl", "--artifacts", "summary.json"],
                            cwd=store, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_concurrent_tracks_on_a_fresh_store_all_succeed(store: Path):
    """Two stages logging at once (dvc queue start -j 2) once broke a fresh store for good:
    both ran MLflow's schema migrations (table _alembic_tmp_latest_metrics already exists)."""
    (store / "summary.json").write_text(json.dumps({"first_turn_ex": 0.25}))
    (store / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in range(1, 21)))
    for wave in range(2):  # a fresh store, then the same store with every process writing at once
        processes = [track_process(store, f"stage{wave}_{i}") for i in range(4)]
        results = [(p.wait(timeout=600), p.stderr.read()) for p in processes]
        for p in processes:
            p.stdout.close()
            p.stderr.close()
        assert [code for code, _ in results] == [0] * 4, "\n".join(err[-1500:] for _, err in results)
    runs = client().search_runs([client().get_experiment_by_name("test-exp").experiment_id])
    parents = [r for r in runs if r.data.tags.get("pipeline_parent") == "true"]
    runs = [r for r in runs if r not in parents]
    assert sorted(r.info.run_name for r in runs) == sorted(f"stage{w}_{i}" for w in range(2) for i in range(4))
    assert all(r.info.status == "FINISHED" and len(client().get_metric_history(r.info.run_id, f"{r.info.run_name}/loss")) == 20
               for r in runs)
    assert len(parents) == 1 and {r.data.tags["mlflow.parentRunId"] for r in runs} == {parents[0].info.run_id}
    assert (store / "mlruns" / ".mlflow.db.lock").is_file()


@pytest.mark.slow
def test_concurrent_connects_wait_for_the_store_lock_and_create_one_experiment(store: Path):
    """Opening the store and creating an experiment happen under the store's file lock:
    a process holding it makes the others wait; concurrent creators share one experiment."""
    import multiprocessing
    import time

    from text2sql_mlops.tracking import connect, store_lock, tracking_uri

    connect("warm-up")  # the store exists; only the experiment is new
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        with store_lock(tracking_uri()):
            pending = pool.starmap_async(connect, [("shared-exp", str(store / "mlruns"))] * 4)
            time.sleep(3)
            assert not pending.ready() and client().get_experiment_by_name("shared-exp") is None
        ids = pending.get(timeout=300)
    assert len(set(ids)) == 1 and client().get_experiment(ids[0]).name == "shared-exp"


def test_a_stage_run_spans_the_stage_and_nests_under_its_pipeline_execution(store: Path, monkeypatch):
    """--started makes the run last as long as the stage; stages of one execution (one make
    repro, one dvc exp run) share a parent run, another execution gets its own; compare's
    numbers go to the parent too."""
    import time

    (store / "summary.json").write_text(json.dumps({"final_ex_strict": 0.5}))
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    monkeypatch.setenv("TEXT2SQL_PIPELINE_RUN", "repro A")
    started = time.time() - 125
    assert cli(["track", "--stage", "sft", "--started", str(started), "--record", "sft.json"]) == 0
    assert cli(["track", "--stage", "compare", "--metrics", "summary.json", "--artifacts", "summary.json", "--to_parent",
                "--record", "compare.json"]) == 0
    monkeypatch.setenv("DVC_EXP_NAME", "lucid-bass")
    assert cli(["track", "--stage", "eval_sft_dev", "--record", "exp.json"]) == 0
    sft, compare, exp = (client().get_run(json.loads((store / f"{name}.json").read_text())["run_id"]) for name in ("sft", "compare", "exp"))
    assert sft.info.start_time == int(started * 1000) and 125_000 <= sft.info.end_time - sft.info.start_time < 185_000
    parent = sft.data.tags["mlflow.parentRunId"]
    assert compare.data.tags["mlflow.parentRunId"] == parent != exp.data.tags["mlflow.parentRunId"]
    first, second = client().get_run(parent), client().get_run(exp.data.tags["mlflow.parentRunId"])
    assert first.info.run_name == "repro A" and second.info.run_name == "exp lucid-bass"
    assert first.info.start_time == sft.info.start_time and first.info.end_time >= compare.info.end_time
    assert first.data.metrics == {"compare/final_ex_strict": 0.5}
    assert [a.path for a in client().list_artifacts(parent)] == ["summary.json"]
    assert cli(["track", "--stage", "x", "--started", "-5"]) == 2


def test_a_stage_lists_the_datasets_it_read(store: Path, demo_dataset: Path):
    (store / "pairs.jsonl").write_text("".join(json.dumps({"prompt": [{"role": "user", "content": "Q" * 900}], "chosen": "a",
                                                           "rejected": "b", "meta": {"db_id": "x"}}) + "\n" for _ in range(3)))
    assert cli(["track", "--stage", "sft", "--inputs", f"train={demo_dataset}@train", "pairs=pairs.jsonl", "--record", "r.json"]) == 0
    run = client().get_run(json.loads((store / "r.json").read_text())["run_id"])
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"train", "pairs"}
    train = json.loads(inputs["train"].dataset.profile)
    assert train["num_rows"] == len(json.loads((demo_dataset / "train_spider.json").read_text()))
    assert json.loads(inputs["train"].dataset.source)["uri"].endswith("train_spider.json")
    assert json.loads(inputs["pairs"].dataset.profile)["num_rows"] == 3 and inputs["pairs"].dataset.digest
    assert {tag.key: tag.value for tag in inputs["train"].tags}["mlflow.data.context"] == "training"
    (store / "examples.jsonl").write_text('{"id": "a", "final_correct_strict": true}\n{"id": "b", "final_correct_strict": false}\n')
    assert cli(["track", "--stage", "eval_x", "--table", "examples=examples.jsonl", "--record", "t.json"]) == 0
    record = json.loads((store / "t.json").read_text())
    table = client().load_table(record["experiment_id"], "examples.json", [record["run_id"]])
    assert table["id"].tolist() == ["a", "b"] and table["final_correct_strict"].tolist() == [True, False]
    assert cli(["track", "--stage", "x", "--table", "examples=nowhere.jsonl"]) == 2
    assert cli(["track", "--stage", "sft", "--inputs", "nothing"]) == 2
    assert cli(["track", "--stage", "sft", "--inputs", "x=missing.jsonl"]) == 2


def test_track_checks_every_input_before_creating_a_run(store: Path, capsys):
    (store / "good.json").write_text(json.dumps({"a": 1}))
    assert cli(["track", "--stage", "ok", "--metrics", "good.json"]) == 0
    (store / "bad.json").write_text("{not json")
    (store / "list.json").write_text("[1, 2]")
    (store / "bad.jsonl").write_text('{"step": 1, "loss": 1}\nnot json\n')
    (store / "badstep.jsonl").write_text('{"step": "one", "loss": 1}\n')
    (store / "no_config").mkdir()
    (store / "no_config" / "adapter_model.safetensors").write_text("w")
    (store / "no_weights").mkdir()
    (store / "no_weights" / "adapter_config.json").write_text("{}")
    (store / "bad_config").mkdir()
    (store / "bad_config" / "adapter_config.json").write_text("{oops")
    (store / "bad_config" / "adapter_model.safetensors").write_text("w")
    capsys.readouterr()
    for extra, message in [(["--metrics", "good.json", "bad.json"], "cannot read metrics file bad.json"),
                           (["--metrics", "list.json"], "must hold a JSON object"),
                           (["--steps", "bad.jsonl"], "bad.jsonl:2: invalid JSON"),
                           (["--steps", "badstep.jsonl"], "whole number"),
                           (["--metrics", "good.json", "--adapter", "no_config"], "adapter_config.json missing"),
                           (["--adapter", "no_weights"], "no weights"),
                           (["--adapter", "bad_config"], "adapter_config.json is not valid JSON")]:
        assert cli(["track", "--stage", "bad", *extra]) == 2, extra
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (extra, err)
    runs = client().search_runs([client().get_experiment_by_name("test-exp").experiment_id])
    assert [r.info.run_name for r in runs if r.data.tags.get("pipeline_parent") != "true"] == ["ok"]


# --------------------------------------------------------------------------- registry: versions, cache, adapters


def test_latest_resolves_to_the_newest_version_each_time(store: Path):
    from text2sql_mlops.registry import resolve_adapter

    register_version(store, "one", 0.5)
    first = resolve_adapter("models:/text2sql-sft-dpo/latest", cache_dir=store / "cache")
    assert Path(first) == store / "cache" / "text2sql-sft-dpo" / "v1"
    register_version(store, "two", 0.4)
    second = resolve_adapter("models:/text2sql-sft-dpo/latest", cache_dir=store / "cache")
    assert Path(second) == store / "cache" / "text2sql-sft-dpo" / "v2"
    assert json.loads(Path(second, "adapter_config.json").read_text())["marker"] == "two"
    assert not (store / "cache" / "text2sql-sft-dpo" / "vlatest").exists()


def test_an_interrupted_download_is_not_trusted(store: Path):
    from text2sql_mlops.registry import resolve_adapter

    register_version(store, "one", 0.5)
    cached = store / "cache" / "text2sql-sft-dpo" / "v1"
    cached.mkdir(parents=True)
    (cached / "adapter_config.json").write_text(json.dumps({"marker": "partial"}))  # the weights never arrived
    local = resolve_adapter("models:/text2sql-sft-dpo/1", cache_dir=store / "cache")
    assert Path(local) == cached
    assert json.loads((cached / "adapter_config.json").read_text())["marker"] == "one"
    assert (cached / "adapter_model.safetensors").read_text() == "one"
    assert [p.name for p in cached.parent.iterdir()] == ["v1"]  # no temporaries left behind


def test_a_failed_lookup_creates_nothing(store: Path):
    from text2sql_mlops.errors import UserError
    from text2sql_mlops.registry import resolve_adapter

    register_version(store, "one", 0.5)
    for uri in ("models:/text2sql-sft-dpo/7", "models:/no-such-model/1", "models:/no-such-model/latest",
                "models:/text2sql-sft-dpo@nope", "models:/text2sql-sft-dpo", "runs:/0123456789abcdef/adapter"):
        with pytest.raises(UserError):
            resolve_adapter(uri, cache_dir=store / "cache")
        assert not (store / "cache").exists(), uri


def test_register_refuses_a_run_whose_adapter_cannot_load(store: Path, capsys):
    import mlflow

    from text2sql_mlops.tracking import connect

    broken = store / "broken"
    broken.mkdir()
    (broken / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "models/base"}))  # no weights
    experiment_id = connect("test-exp")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_artifacts(str(broken), artifact_path="adapter")
    (store / "run.json").write_text(json.dumps({"run_id": run.info.run_id, "artifact_uri": run.info.artifact_uri,
                                                "adapter_uri": f"runs:/{run.info.run_id}/adapter", "stage": "sft_dpo"}))
    (store / "summary.json").write_text(json.dumps({"final_ex_strict": 0.9, "config": {"examples_sha256": "a" * 64, "examples": 10}}))
    capsys.readouterr()
    assert cli(["register", "--run", "run.json", "--eval", "summary.json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no weights" in err[0]
    assert client().search_registered_models() == []
