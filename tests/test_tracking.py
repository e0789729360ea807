"""MLflow tracking and the registry on a real store in a temp folder (SQLite backend).

Trained models are real: LoRA adapters on a tiny random Llama (``tiny_model.py``), logged as
MLflow transformers models, registered, and loaded back by MLflow and by the hf generator.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

import pytest
from built_records import summary as eval_summary
from tiny_model import build_tiny_llama, build_tiny_lora

from text2sql_mlops.cli import main as cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny models run on one thread


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

    from text2sql_mlops.mlops.tracking import tracking_uri

    return MlflowClient(tracking_uri())


def adapter_folder(path: Path, base: Path, marker: str) -> Path:
    """A real LoRA adapter on ``base`` whose random weights ``marker`` seeds (``weights_digest`` tells them apart)."""
    return build_tiny_lora(path, base, seed=zlib.crc32(marker.encode()))


def weights_digest(folder: str | Path) -> str:
    """A hash of the tensors (names and values) of an adapter or whole model folder: equal
    weights, equal digest, however the file was written again."""
    from safetensors.torch import load_file

    folder = Path(folder)
    weights = load_file(folder / ("adapter_model.safetensors" if (folder / "adapter_config.json").is_file() else "model.safetensors"))
    digest = hashlib.sha256()
    for name in sorted(weights):
        digest.update(name.encode() + weights[name].float().numpy().tobytes())
    return digest.hexdigest()


def logged_model_folder(model_id: str) -> Path:
    """The local folder of a logged model's artifacts (the temp store keeps them on disk)."""
    location = client().get_logged_model(model_id).artifact_location
    return Path(location.removeprefix("file://"))


@pytest.mark.parametrize("flag, content, expected", [
    ("--params_file", "tracking: [unclosed\n", "not readable YAML"),
    ("--params_file", "- a list\n", "expected a mapping"),
    ("--params_file", "tracking: just-a-name\n", "expected a mapping"),
    ("--data_dvc", "outs: []\n", "not a .dvc file"),
    ("--data_dvc", "hello\n", "not a .dvc file"),
    ("--data_dvc", b"\xff\xfe\x00", "not a .dvc file"),
])
def test_track_refuses_a_broken_params_or_dvc_file_in_one_line(store: Path, capsys, flag, content, expected):
    """Missing files are fine (``track`` outside a DVC project); a file that is there but broken is
    refused before anything is logged, not silently read as "default experiment" or "unknown"."""
    bad = store / "bad.file"
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert cli(["track", "--stage", "eval_base", flag, str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].count(flag) == 1 and expected in err[0], err
    assert not (store / "mlruns").exists() or client().search_experiments(filter_string="name != 'Default'") == []


def test_track_without_params_or_dvc_file_uses_the_defaults(store: Path):
    assert cli(["track", "--stage", "eval_base", "--params_file", "none.yaml", "--data_dvc", "none.dvc", "--record", "run.json"]) == 0
    run = client().get_run(json.loads((store / "run.json").read_text())["run_id"])
    assert run.data.tags["dvc_data_hash"] == "unknown"
    assert client().get_experiment(run.info.experiment_id).name == "text2sql-mlops"


def test_track_logs_params_metrics_steps_artifacts_and_adapter(store: Path, tiny_llama: Path):
    import yaml

    (store / "summary.json").write_text(json.dumps({"first_turn_ex": 0.25, "repair": {"repaired": 3}, "flag": True, "none": None,
                                                    "config": {"batch_size": 16, "model_path": "models/x"}}))
    (store / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5}\n')
    adapter = adapter_folder(store / "adapter_dir", tiny_llama, "v1")
    code = cli(["track", "--stage", "eval_base", "--config", "eval=summary.json#config", "--metrics", "summary.json", "--steps", "metrics.jsonl",
                "--artifacts", "summary.json", "--adapter", "adapter_dir", "--record", "run.json",
                "--metrics_out", "m.json", "--plots_out", "p.json", "--tag", "k=v"])
    assert code == 0
    record = json.loads((store / "run.json").read_text())
    run = client().get_run(record["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "eval_base"
    # params: the configuration the command wrote (params.yaml's eval section is not read); metrics: outcomes only
    assert run.data.params == {"eval.batch_size": "16", "eval.model_path": "models/x"}
    assert run.data.metrics == {"eval/first_turn_ex": 0.25, "eval/repair.repaired": 3, "eval/loss": 1.5}
    assert [m.value for m in client().get_metric_history(run.info.run_id, "eval/loss")] == [2.0, 1.5]
    tags = run.data.tags
    assert tags["stage"] == "eval_base" and tags["dvc_data_hash"] == "abc123.dir" and tags["k"] == "v" and tags["git_commit"]
    experiment = client().get_experiment(record["experiment_id"])
    # the UI opens it in the model-training view (runs and models), not the GenAI one (traces)
    assert experiment.name == "test-exp" and experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    # The adapter is the run's MLflow model, not a folder of plain artifacts.
    assert {a.path for a in client().list_artifacts(run.info.run_id)} == {"summary.json"}
    model = client().get_logged_model(record["model_id"])
    assert record["model_uri"] == record["adapter_uri"] == f"models:/{model.model_id}"
    assert model.source_run_id == run.info.run_id and model.name == "eval_base"
    assert model.tags["kind"] == "lora" and model.tags["base_model"] == str(tiny_llama)
    folder = logged_model_folder(model.model_id)
    flavor = yaml.safe_load((folder / "MLmodel").read_text())["flavors"]["transformers"]
    # the adapter and the tokenizer are saved; the base model is recorded by its local path, not copied
    assert flavor["peft_adaptor"] == "peft" and flavor["local_base_model_path"] == str(tiny_llama) and "model_binary" not in flavor
    assert weights_digest(folder / "peft") == weights_digest(adapter) and (folder / "components" / "tokenizer" / "tokenizer.json").is_file()
    assert not (folder / "model").exists() and not list(folder.rglob("model.safetensors"))
    assert (store / "mlruns" / "mlflow.db").is_file()
    assert json.loads((store / "m.json").read_text()) == {"first_turn_ex": 0.25, "repair.repaired": 3.0}
    assert json.loads((store / "p.json").read_text()) == [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}]


def test_track_refuses_missing_outputs_without_creating_a_run(store: Path, capsys):
    assert cli(["track", "--stage", "x", "--metrics", "nowhere.json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing to log" in err[0]
    assert not (store / "mlruns").exists()


def test_a_failure_while_logging_never_leaves_a_finished_run(store: Path, monkeypatch):
    import text2sql_mlops.mlops.tracking as tracking

    (store / "a.txt").write_text("x")

    def broken(path):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tracking, "_log_artifact", broken)
    with pytest.raises(RuntimeError):
        tracking.log_stage("pairs", "test-exp", {}, artifacts=["a.txt"], pipeline="repro")
    runs = client().search_runs([client().get_experiment_by_name("test-exp").experiment_id])
    assert sorted((r.data.tags.get("pipeline_parent") == "true", r.info.status) for r in runs) == [(False, "FAILED"), (True, "FINISHED")]
    # stopped (SIGTERM, Ctrl-C) between creating the run and resuming it: FAILED, not RUNNING forever
    import mlflow

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(mlflow, "start_run", stopped)
    with pytest.raises(KeyboardInterrupt):
        tracking.log_stage("sft", "test-exp", {}, pipeline="repro")
    runs = client().search_runs([client().get_experiment_by_name("test-exp").experiment_id])
    assert sorted(r.info.status for r in runs if r.info.run_name == "sft") == ["FAILED"]


def test_a_stage_logs_the_configuration_that_ran_not_params_yaml(store: Path, demo_dataset: Path):
    """params.yaml says max_turns 3 and limit 5; the eval command ran with --max_turns 1 --limit 2
    (a flag overriding the profile): the run's params are what ran, read from its summary.json."""
    (store / "params.yaml").write_text("tracking:\n  experiment: test-exp\neval:\n  limit: 5\n  max_turns: 3\n")
    assert cli(["eval", "--generator", "mock", "--dataset_path", str(demo_dataset), "--output_dir", "ev", "--no_progress",
                "--max_turns", "1", "--limit", "2"]) == 0
    assert cli(["track", "--stage", "eval_base_dev", "--config", "eval=ev/summary.json#config", "--metrics", "ev/summary.json",
                "--record", "r.json"]) == 0
    run = client().get_run(json.loads((store / "r.json").read_text())["run_id"])
    config = json.loads((store / "ev" / "summary.json").read_text())["config"]
    assert run.data.params["eval.max_turns"] == "1" and run.data.params["eval.limit"] == "2"
    assert run.data.params["eval.split"] == "dev" and run.data.params["eval.dataset_path"] == str(demo_dataset)
    assert set(run.data.params) == {f"eval.{key}" for key in config}  # the recorded config, every key of it, nothing else
    assert run.data.metrics["eval/examples"] == 2 and not any(".config." in key or "/config." in key for key in run.data.metrics)


@pytest.mark.slow
def test_a_training_run_logs_the_settings_that_ran(store: Path, tiny_llama: Path, demo_dataset: Path):
    """`train sft --learning_rate 3e-4` while params.yaml says 1e-4: the run says 3e-4, from the
    settings the command wrote into training_summary.json, with the runtime and LoRA that resolved."""
    (store / "params.yaml").write_text("tracking:\n  experiment: test-exp\nsft:\n  learning_rate: 0.0001\n  max_steps: 30\n")
    assert cli(["train", "sft", "--model", str(tiny_llama), "--dataset", str(demo_dataset), "--schema_format", "compact", "--out", "sft",
                "--max_steps", "1", "--learning_rate", "3e-4", "--max_length", "4096", "--per_device_train_batch_size", "1",
                "--lora_r", "4", "--lora_alpha", "8", "--logging_steps", "1"]) == 0
    summary = "sft/training_summary.json"
    assert cli(["track", "--stage", "sft", "--config", f"sft={summary}#settings", f"{summary}#runtime,lora,versions",
                "--metrics", summary, "--steps", "sft/metrics.jsonl", "--record", "r.json"]) == 0
    run = client().get_run(json.loads((store / "r.json").read_text())["run_id"])
    params = run.data.params
    assert (params["sft.learning_rate"], params["sft.max_steps"], params["sft.model"]) == ("0.0003", "1", str(tiny_llama))
    assert params["runtime.device"] == "cpu" and params["lora.r"] == "4" and params["versions.trl"]
    assert {key.split(".", 1)[0] for key in params} == {"sft", "runtime", "lora", "versions"}
    assert "train/loss" in run.data.metrics and "train/result.steps" in run.data.metrics
    assert not [key for key in run.data.metrics if key.split("/", 1)[1].startswith(("settings.", "runtime.", "lora.", "versions."))]


def test_log_stage_tags_a_run_with_exactly_the_provenance_it_is_given(store: Path, monkeypatch):
    """git and data.dvc are read by `track`'s command line only: the library function logs the
    tags it is handed, whatever the working directory holds."""
    import subprocess

    import text2sql_mlops.mlops.tracking as tracking

    def no_git(*args, **kwargs):
        raise AssertionError(f"library code ran {args[0]!r}")

    monkeypatch.setattr(subprocess, "run", no_git)
    (store / "data.dvc").write_text("outs:\n- md5: from-the-working-directory.dir\n  path: data\n")
    provenance = {"git_commit": "0123abcd+dirty", "dvc_data_hash": "given.dir"}
    params = {"sft.learning_rate": 0.0003}
    record = tracking.log_stage("sft", "test-exp", params, pipeline="repro X", provenance=provenance, extra_tags={"k": "v"})

    def ours(run) -> dict[str, str]:
        return {key: value for key, value in run.data.tags.items() if not key.startswith("mlflow.")}

    run, parent = client().get_run(record["run_id"]), client().get_run(record["parent_run_id"])
    assert ours(run) == {"stage": "sft", **provenance, "params_hash": tracking.params_hash(params), "k": "v"}
    assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert ours(parent) == {"pipeline_run": "repro X", "pipeline_parent": "true", **provenance}
    alone = client().get_run(tracking.log_stage("sft", "test-exp", params, provenance={"git_commit": "c"})["run_id"])
    assert ours(alone) == {"stage": "sft", "git_commit": "c", "params_hash": tracking.params_hash(params)}
    assert "mlflow.parentRunId" not in alone.data.tags


def measured(adapter: Path) -> dict[str, str]:
    """What an eval of ``adapter`` records of it in its summary's configuration."""
    from text2sql_mlops.generation.adapters import weights_sha256

    return {"adapter_path": str(adapter), "adapter_sha256": weights_sha256(str(adapter))}


def register_version(store: Path, base: Path, name: str, strict: float | None, examples_hash: str = "a" * 64) -> dict:
    adapter = adapter_folder(store / f"adapter_{name}", base, name)
    assert cli(["track", "--stage", "sft_dpo", "--adapter", str(adapter), "--record", f"run_{name}.json"]) == 0
    summary = eval_summary(first_turn_ex=0.1, final_ex_strict=strict, final_ex_oracle=0.9, executable_rate=0.5, examples=10,
                           config={"examples_sha256": examples_hash, "examples": 10, **measured(adapter)})
    (store / f"summary_{name}.json").write_text(json.dumps(summary.to_dict()))
    assert cli(["register", "--run", f"run_{name}.json", "--eval", f"summary_{name}.json", "--base_model", "models/base",
                "--out", f"decision_{name}.json"]) == 0
    return json.loads((store / f"decision_{name}.json").read_text())


def test_champion_moves_only_on_a_strict_improvement_on_the_same_set(store: Path, tiny_llama: Path):
    from text2sql_mlops.mlops.registry import DEFAULT_MODEL_NAME, resolve_adapter

    first = register_version(store, tiny_llama, "one", 0.50)
    assert first["promoted"] and first["version"] == 1 and "first version" in first["reason"]
    assert first["config"] == {"run": "run_one.json", "eval": "summary_one.json", "model_name": DEFAULT_MODEL_NAME,
                               "base_model": "models/base", "promote": False}
    worse = register_version(store, tiny_llama, "two", 0.40)
    assert not worse["promoted"] and worse["champion_version"] == 1 and "does not beat" in worse["reason"]
    tie = register_version(store, tiny_llama, "three", 0.50)
    assert not tie["promoted"]
    other_set = register_version(store, tiny_llama, "four", 0.99, examples_hash="b" * 64)
    assert not other_set["promoted"] and "different set" in other_set["reason"]
    oracle_only = register_version(store, tiny_llama, "five", None)
    assert not oracle_only["promoted"] and "cannot be compared" in oracle_only["reason"]
    better = register_version(store, tiny_llama, "six", 0.60)
    assert better["promoted"] and better["version"] == 6

    registry = client()
    assert str(registry.get_model_version_by_alias(DEFAULT_MODEL_NAME, "champion").version) == "6"
    roles = {str(v.version): v.tags.get("role") for v in registry.search_model_versions(f"name='{DEFAULT_MODEL_NAME}'")}
    assert roles == {"1": "former_champion", "2": "challenger", "3": "challenger", "4": "challenger", "5": "challenger", "6": "champion"}
    six = registry.get_model_version(DEFAULT_MODEL_NAME, "6")
    assert six.tags["final_ex_strict"] == "0.6" and six.tags["base_model"] == "models/base" and six.tags["eval_dataset_hash"] == "a" * 16 + "-10"
    # the version is the run's logged MLflow model, which lists the version back
    record = json.loads((store / "run_six.json").read_text())
    assert six.source == record["model_uri"] == f"models:/{record['model_id']}" and six.run_id == record["run_id"]
    listed = json.loads(registry.get_logged_model(record["model_id"]).tags["mlflow.modelVersions"])
    assert [(v["name"], str(v["version"])) for v in listed] == [(DEFAULT_MODEL_NAME, "6")]

    # Pulling: the alias resolves to its version, downloaded once into a per-version folder.
    local = resolve_adapter(f"models:/{DEFAULT_MODEL_NAME}@champion", cache_dir=store / "cache")
    assert weights_digest(local) == weights_digest(store / "adapter_six") != weights_digest(store / "adapter_one")
    assert Path(local) == store / "cache" / DEFAULT_MODEL_NAME / "v6"
    first_version = resolve_adapter(f"models:/{DEFAULT_MODEL_NAME}/1", cache_dir=store / "cache")
    assert weights_digest(first_version) == weights_digest(store / "adapter_one")
    # a logged model by its id too (what a run record names), cached apart from the versions
    logged = resolve_adapter(record["model_uri"], cache_dir=store / "cache")
    assert Path(logged) == store / "cache" / "logged" / record["model_id"] and weights_digest(logged) == weights_digest(local)


def test_manual_promotion_and_clear_errors(store: Path, tiny_llama: Path, capsys):
    from text2sql_mlops.core.errors import UserError
    from text2sql_mlops.mlops.registry import resolve_adapter

    register_version(store, tiny_llama, "one", 0.5)
    register_version(store, tiny_llama, "two", 0.9, examples_hash="c" * 64)
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
    # a name MLflow refuses is one line, and no version exists under any name afterwards
    versions = len(client().search_model_versions())
    assert cli(["register", "--run", "run_two.json", "--eval", "summary_two.json", "--model_name", "bad/name@x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot register a model named 'bad/name@x'") and err.count("\n") == 1, err
    assert len(client().search_model_versions()) == versions


def test_a_store_that_cannot_be_opened_is_one_error_line(store: Path, monkeypatch, capsys):
    """--store on a file, a store URI MLflow does not know, a file that is not a database: one line
    naming the store and what to check, never a traceback."""
    (store / "m.json").write_text('{"ex": 0.5}')
    (store / "notes.txt").write_text("mine")
    track = ["track", "--stage", "x", "--no_parent", "--metrics", "m.json"]
    for env, argv in ((None, [*track, "--store", "notes.txt"]), ("garbage://x", track), (f"sqlite:///{store / 'notes.txt'}", track)):
        if env:
            monkeypatch.setenv("MLFLOW_TRACKING_URI", env)
        assert cli(argv) == 2, (env, argv)
        err = capsys.readouterr().err
        assert err.startswith("error: cannot open the MLflow store") and err.count("\n") == 1, err
        assert err.rstrip().endswith("check MLFLOW_TRACKING_URI" if env else "check --store")
    assert (store / "notes.txt").read_text() == "mine"


# --------------------------------------------------------------------------- concurrent stages, inputs checked first


def track_process(store: Path, stage: str):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.Popen([sys.executable, "-m", "text2sql_mlops.cli", "track", "--stage", stage, "--config", "eval=config.json",
                             "--metrics", "summary.json", "--steps", "metrics.jsonl", "--artifacts", "summary.json"],
                            cwd=store, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_concurrent_tracks_on_a_fresh_store_all_succeed(store: Path):
    """Two stages logging at once (dvc queue start -j 2) once broke a fresh store for good:
    both ran MLflow's schema migrations (table _alembic_tmp_latest_metrics already exists)."""
    (store / "summary.json").write_text(json.dumps({"first_turn_ex": 0.25}))
    (store / "config.json").write_text(json.dumps({"max_turns": 2}))
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

    from text2sql_mlops.mlops.tracking import connect, store_lock, tracking_uri

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


def test_a_stage_lists_the_datasets_it_read(store: Path, demo_dataset: Path, recwarn):
    (store / "pairs.jsonl").write_text("".join(json.dumps({"prompt": [{"role": "user", "content": "Q" * 900}], "chosen": "a",
                                                           "rejected": "b", "meta": {"db_id": "x"}}) + "\n" for _ in range(3)))
    assert cli(["track", "--stage", "sft", "--inputs", f"train={demo_dataset}@train", "pairs=pairs.jsonl", "--record", "r.json"]) == 0
    assert not [w for w in recwarn if "dataset source" in str(w.message)]  # no noise in every stage's log
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


def test_track_checks_every_input_before_creating_a_run(store: Path, tiny_llama: Path, capsys):
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
    (store / "no_base").mkdir()
    (store / "no_base" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "models/nowhere"}))
    (store / "no_base" / "adapter_model.safetensors").write_text("w")
    (adapter_folder(store / "bad_weights", tiny_llama, "bad") / "adapter_model.safetensors").write_text("not a safetensors file")
    (store / "summary.json").write_text(json.dumps({"final_ex_strict": 0.5, "config": {"max_turns": 2}, "repair": {"repaired": 1}}))
    (store / "other.json").write_text(json.dumps({"max_turns": 3}))
    capsys.readouterr()
    for extra, message in [(["--config", "eval=summary.json#nope"], "summary.json has no 'nope'; it has final_ex_strict, config, repair"),
                           (["--config", "summary.json"], "--config must look like NAME=FILE"),
                           (["--config", "eval=summary.json#config,repair"], "--config must look like NAME=FILE"),
                           (["--config", "eval=missing.json#config"], "missing.json does not exist"),
                           (["--config", "eval=bad.json"], "cannot read configuration file bad.json"),
                           # an outcome is never a param: params and metrics stay disjoint
                           (["--config", "eval=summary.json#repair", "--metrics", "summary.json"], "repair holds outcomes"),
                           (["--config", "eval=summary.json", "--metrics", "summary.json"], "the whole file holds outcomes"),
                           (["--config", "eval=summary.json#config", "eval=other.json"], "param eval.max_turns is already 2"),
                           (["--metrics", "good.json", "bad.json"], "cannot read metrics file bad.json"),
                           (["--metrics", "list.json"], "must hold a JSON object"),
                           (["--steps", "bad.jsonl"], "bad.jsonl:2: invalid JSON"),
                           (["--steps", "badstep.jsonl"], "whole number"),
                           (["--metrics", "good.json", "--adapter", "no_config"], "adapter_config.json missing"),
                           (["--adapter", "no_weights"], "no weights"),
                           (["--adapter", "bad_config"], "adapter_config.json is not valid JSON"),
                           (["--adapter", "no_base"], "trained on 'models/nowhere', which is not a model folder here"),
                           (["--adapter", "bad_weights"], "cannot load the trained model at")]:
        assert cli(["track", "--stage", "bad", *extra]) == 2, extra
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (extra, err)
    runs = client().search_runs([client().get_experiment_by_name("test-exp").experiment_id])
    assert [r.info.run_name for r in runs if r.data.tags.get("pipeline_parent") != "true"] == ["ok"]


# --------------------------------------------------------------------------- registry: versions, cache, adapters


def test_latest_resolves_to_the_newest_version_each_time(store: Path, tiny_llama: Path):
    from text2sql_mlops.mlops.registry import resolve_adapter

    register_version(store, tiny_llama, "one", 0.5)
    first = resolve_adapter("models:/text2sql-sft-dpo/latest", cache_dir=store / "cache")
    assert Path(first) == store / "cache" / "text2sql-sft-dpo" / "v1"
    register_version(store, tiny_llama, "two", 0.4)
    second = resolve_adapter("models:/text2sql-sft-dpo/latest", cache_dir=store / "cache")
    assert Path(second) == store / "cache" / "text2sql-sft-dpo" / "v2"
    assert weights_digest(second) == weights_digest(store / "adapter_two") != weights_digest(first)
    assert not (store / "cache" / "text2sql-sft-dpo" / "vlatest").exists()


def test_an_interrupted_download_is_not_trusted(store: Path, tiny_llama: Path):
    from text2sql_mlops.mlops.registry import resolve_adapter

    register_version(store, tiny_llama, "one", 0.5)
    cached = store / "cache" / "text2sql-sft-dpo" / "v1"
    cached.mkdir(parents=True)
    (cached / "adapter_config.json").write_text(json.dumps({"marker": "partial"}))  # the weights never arrived
    local = resolve_adapter("models:/text2sql-sft-dpo/1", cache_dir=store / "cache")
    assert Path(local) == cached
    assert "marker" not in json.loads((cached / "adapter_config.json").read_text())
    assert weights_digest(cached) == weights_digest(store / "adapter_one")
    assert [p.name for p in cached.parent.iterdir()] == ["v1"]  # no temporaries left behind


def test_a_failed_lookup_creates_nothing(store: Path, tiny_llama: Path):
    from text2sql_mlops.core.errors import UserError
    from text2sql_mlops.mlops.registry import resolve_adapter

    register_version(store, tiny_llama, "one", 0.5)
    for uri in ("models:/text2sql-sft-dpo/7", "models:/no-such-model/1", "models:/no-such-model/latest",
                "models:/text2sql-sft-dpo@nope", "models:/text2sql-sft-dpo", "models:/m-0123456789abcdef",
                "runs:/0123456789abcdef/adapter"):
        with pytest.raises(UserError):
            resolve_adapter(uri, cache_dir=store / "cache")
        assert not (store / "cache").exists(), uri


def test_register_refuses_a_run_whose_adapter_cannot_load(store: Path, tiny_llama: Path, capsys):
    adapter = adapter_folder(store / "adapter", tiny_llama, "broken")
    assert cli(["track", "--stage", "sft_dpo", "--adapter", str(adapter), "--record", "run.json"]) == 0
    record = json.loads((store / "run.json").read_text())
    (logged_model_folder(record["model_id"]) / "peft" / "adapter_model.safetensors").unlink()  # the weights are lost
    (store / "summary.json").write_text(json.dumps(eval_summary(final_ex_strict=0.9, config={"examples_sha256": "a" * 64, "examples": 10,
                                                                                          **measured(adapter)}).to_dict()))
    capsys.readouterr()
    assert cli(["register", "--run", "run.json", "--eval", "summary.json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no weights" in err[0]
    # A record from before adapters were MLflow models (plain files under adapter/) says what to do.
    old = {key: record[key] for key in ("run_id", "artifact_uri", "stage")} | {"adapter_uri": f"runs:/{record['run_id']}/adapter"}
    (store / "old.json").write_text(json.dumps(old))
    assert cli(["register", "--run", "old.json", "--eval", "summary.json"]) == 2
    assert "not as an MLflow model" in capsys.readouterr().err
    assert client().search_registered_models() == []


# --------------------------------------------------------------------------- the champion is an MLflow model


@pytest.fixture
def offline(monkeypatch):
    """No network: every connection attempt (a Hugging Face Hub look-up) is refused and
    recorded, and the test fails if there was any, even one a library caught and ignored."""
    import socket

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[1:] or kwargs)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield
    assert attempts == [], f"network access attempted: {attempts}"


def greedy_text(pipe, prompt: str = "SELECT name FROM", tokens: int = 4) -> str:
    return pipe(prompt, max_new_tokens=tokens, do_sample=False, return_full_text=False)[0]["generated_text"]


def reference_pipeline(model_dir: Path, adapter: Path | None = None):
    """The trained model assembled by hand, straight from its folders: what MLflow must give back."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    return pipeline("text-generation", model=model, tokenizer=AutoTokenizer.from_pretrained(adapter or model_dir))


def hf_generate(model_path: str, adapter_path: str | None) -> str:
    """What `eval --generator hf` produces: the project's generator, greedy, a few tokens."""
    from text2sql_mlops.generation import GenerationRequest, SamplingParams, create_generator

    generator = create_generator("hf", model_path=model_path, adapter_path=adapter_path, progress=False, device="cpu")
    request = GenerationRequest(messages=[{"role": "user", "content": "How many singers are there?"}])
    (samples,) = generator.generate([request], SamplingParams(max_new_tokens=6))
    return samples[0].text


def test_the_champion_lora_adapter_loads_with_plain_mlflow_offline_and_as_an_eval_adapter(store: Path, tiny_llama: Path, tmp_path: Path,
                                                                                          offline):
    import shutil

    import mlflow
    import torch
    from peft import PeftModel

    from text2sql_mlops.generation.adapters import is_whole_model_folder
    from text2sql_mlops.mlops.evaluate import resolve_models
    from text2sql_mlops.mlops.registry import DEFAULT_MODEL_NAME

    base_copy = tmp_path / "models" / "base"  # its own base: moved away below
    base_copy.parent.mkdir()
    shutil.copytree(tiny_llama, base_copy)
    adapter = adapter_folder(store / "adapter_lora", base_copy, "lora")
    decision = register_version(store, base_copy, "lora", 0.5)
    assert decision["promoted"] and decision["source"] == f"models:/{decision['model_id']}"
    uri = f"models:/{DEFAULT_MODEL_NAME}@champion"

    # (1) plain MLflow: a text-generation pipeline of the PEFT model on the recorded local base
    pipe = mlflow.transformers.load_model(uri)
    assert isinstance(pipe.model, PeftModel) and pipe.task == "text-generation"
    reference = reference_pipeline(base_copy, adapter)
    ids = reference.tokenizer("SELECT name FROM singer", return_tensors="pt").input_ids
    with torch.no_grad():
        logits, expected = pipe.model(ids).logits, reference.model(ids).logits
    assert torch.allclose(logits, expected, atol=1e-5)
    with torch.no_grad(), reference.model.disable_adapter():
        base_logits = reference.model(ids).logits
    assert not torch.allclose(logits, base_logits, atol=1e-3)  # the adapter is really applied
    text = greedy_text(pipe)
    assert text and text == greedy_text(reference)

    # (2) eval --adapter models:/...@champion: a local adapter folder (in the default cache) on the
    # base model its config names, which the hf generator loads
    model_path, local = resolve_models(uri, None, "hf")
    assert (model_path, local) == (str(base_copy), f"models/registry/{DEFAULT_MODEL_NAME}/v1")
    assert not is_whole_model_folder(local) and weights_digest(local) == weights_digest(adapter)
    assert (Path(local) / "tokenizer_config.json").is_file()  # laid out as `train` writes it
    assert hf_generate(model_path, local) == hf_generate(str(base_copy), str(adapter))

    # The base model is recorded by path, not copied: moved elsewhere, MLflow is pointed at it.
    moved = base_copy.rename(tmp_path / "moved_base")
    with pytest.raises(OSError):  # the recorded path is gone
        mlflow.transformers.load_model(uri)
    assert greedy_text(mlflow.transformers.load_model(uri, base_model_path=str(moved))) == text


def test_a_whole_fine_tuned_champion_is_an_mlflow_model_too(store: Path, tmp_path: Path, offline):
    import mlflow
    import yaml

    from text2sql_mlops.generation.adapters import is_whole_model_folder
    from text2sql_mlops.mlops.evaluate import resolve_models
    from text2sql_mlops.mlops.registry import DEFAULT_MODEL_NAME, resolve_adapter

    # `train --full_finetune` output: a model of its own (other weights than the base; the test writes into its folder)
    whole = build_tiny_llama(tmp_path / "outputs" / "train" / "sft_dpo", seed=3)
    (whole / "training_summary.json").write_text(json.dumps({"lora": None}))
    assert cli(["track", "--stage", "sft_dpo", "--adapter", str(whole), "--record", "run.json"]) == 0
    record = json.loads((store / "run.json").read_text())
    flavor = yaml.safe_load((logged_model_folder(record["model_id"]) / "MLmodel").read_text())["flavors"]["transformers"]
    assert flavor["model_binary"] == "model" and "peft_adaptor" not in flavor and "local_base_model_path" not in flavor
    assert client().get_logged_model(record["model_id"]).tags["kind"] == "whole_model"
    (store / "summary.json").write_text(json.dumps(eval_summary(final_ex_strict=0.3, config={"examples_sha256": "a" * 64, "examples": 10,
                                                                                          **measured(whole)}).to_dict()))
    assert cli(["register", "--run", "run.json", "--eval", "summary.json", "--out", "decision.json"]) == 0
    assert json.loads((store / "decision.json").read_text())["promoted"]
    uri = f"models:/{DEFAULT_MODEL_NAME}@champion"

    pipe = mlflow.transformers.load_model(uri)
    assert type(pipe.model).__name__ == "LlamaForCausalLM"
    assert greedy_text(pipe) == greedy_text(reference_pipeline(whole))

    local = resolve_adapter(uri, cache_dir=store / "cache")
    assert is_whole_model_folder(local) and weights_digest(local) == weights_digest(whole)
    assert (Path(local) / "tokenizer.json").is_file() and not (Path(local) / "training_summary.json").exists()
    assert resolve_models(uri, None, "hf", ) == (f"models/registry/{DEFAULT_MODEL_NAME}/v1", None)  # the model itself, no base
    assert hf_generate(local, None) == hf_generate(str(whole), None)


def test_a_version_whose_repair_turns_a_repair_model_answered_is_registered_with_it(store: Path, tiny_llama: Path, capsys):
    """An evaluation with ``eval --repair_adapter_path``: its numbers are the pair's, so the repair
    model is registered beside the version and holds ``champion`` exactly while its pair does."""
    from text2sql_mlops.mlops.registry import DEFAULT_MODEL_NAME, resolve_adapter

    repair_name = f"{DEFAULT_MODEL_NAME}-repair"
    main = adapter_folder(store / "adapter_main", tiny_llama, "main")
    repair = adapter_folder(store / "adapter_repair", tiny_llama, "repair")
    assert cli(["track", "--stage", "sft_dpo", "--adapter", str(main), "--record", "run_main.json"]) == 0
    assert cli(["track", "--stage", "repair", "--adapter", str(repair), "--record", "run_repair.json"]) == 0
    summary = eval_summary(first_turn_ex=0.1, final_ex_strict=0.3, final_ex_oracle=0.9, executable_rate=0.5, examples=10,
                           config={"examples_sha256": "a" * 64, "examples": 10, "repair_adapter_path": str(repair), **measured(main)})
    (store / "summary_pair.json").write_text(json.dumps(summary.to_dict()))
    capsys.readouterr()
    # the pair's numbers without the repair model, or a repair model the evaluation never used: one line, nothing created
    assert cli(["register", "--run", "run_main.json", "--eval", "summary_pair.json"]) == 2
    assert "--repair_run" in capsys.readouterr().err
    plain = eval_summary(first_turn_ex=0.1, final_ex_strict=0.5, final_ex_oracle=0.9, executable_rate=0.5, examples=10,
                         config={"examples_sha256": "a" * 64, "examples": 10, **measured(main)})
    (store / "summary_plain.json").write_text(json.dumps(plain.to_dict()))
    assert cli(["register", "--run", "run_main.json", "--eval", "summary_plain.json", "--repair_run", "run_repair.json"]) == 2
    assert "had no repair model" in capsys.readouterr().err
    assert client().search_model_versions() == []

    assert cli(["register", "--run", "run_main.json", "--eval", "summary_pair.json", "--repair_run", "run_repair.json",
                "--out", "decision.json"]) == 0
    decision = json.loads((store / "decision.json").read_text())
    assert decision["promoted"] and decision["repair_model"] == f"models:/{repair_name}/1"
    registry = client()
    version = registry.get_model_version_by_alias(DEFAULT_MODEL_NAME, "champion")
    paired = registry.get_model_version_by_alias(repair_name, "champion")
    assert version.tags["repair_model"] == f"models:/{repair_name}/{paired.version}"
    assert paired.tags["repairs_for"] == f"models:/{DEFAULT_MODEL_NAME}/{version.version}" and paired.tags["final_ex_strict"] == "0.3"
    pulled = resolve_adapter(f"models:/{repair_name}@champion", cache_dir=store / "cache")
    assert weights_digest(pulled) == weights_digest(repair) != weights_digest(main)
    # A better version that answers its own repair turns takes champion; the old pair's repair model loses it.
    assert cli(["register", "--run", "run_main.json", "--eval", "summary_plain.json"]) == 0
    assert str(registry.get_model_version_by_alias(DEFAULT_MODEL_NAME, "champion").version) == "2"
    assert "champion" not in registry.get_registered_model(repair_name).aliases


def test_a_pair_whose_main_version_fails_leaves_no_repair_version(store: Path, tiny_llama: Path, monkeypatch):
    """The repair version is created first (the main one names it); a store error creating the main
    one takes it back, so the registry never holds a repair model without its pair."""
    from text2sql_mlops.mlops import registry
    from text2sql_mlops.mlops.registry import DEFAULT_MODEL_NAME

    main = adapter_folder(store / "adapter_main", tiny_llama, "main")
    repair = adapter_folder(store / "adapter_repair", tiny_llama, "repair")
    assert cli(["track", "--stage", "sft_dpo", "--adapter", str(main), "--record", "run_main.json"]) == 0
    assert cli(["track", "--stage", "repair", "--adapter", str(repair), "--record", "run_repair.json"]) == 0
    summary = eval_summary(final_ex_strict=0.3, config={"examples_sha256": "a" * 64, "examples": 10, "repair_adapter_path": str(repair),
                                                        **measured(main)})
    (store / "summary_pair.json").write_text(json.dumps(summary.to_dict()))
    new_version = registry._new_version

    def failing_for_the_main_name(client, name, *args):
        if name == DEFAULT_MODEL_NAME:
            raise RuntimeError("store went away")
        return new_version(client, name, *args)

    monkeypatch.setattr(registry, "_new_version", failing_for_the_main_name)
    with pytest.raises(RuntimeError, match="store went away"):
        cli(["register", "--run", "run_main.json", "--eval", "summary_pair.json", "--repair_run", "run_repair.json"])
    assert client().search_model_versions() == []


def test_register_refuses_an_evaluation_of_another_model_and_compares_no_champion_without_a_number(
        store: Path, tiny_llama: Path, capsys):
    """`register` took any summary.json: an eval of the mock generator (no adapter) or of another
    adapter registered its numbers on this run's model and could make it champion. And a
    champion promoted by hand from an oracle-only eval (strict EX "None") made the next
    register crash in float("None") after creating its version."""
    from text2sql_mlops.generation.adapters import weights_sha256

    adapter = adapter_folder(store / "adapter_a", tiny_llama, "a")
    other = adapter_folder(store / "adapter_b", tiny_llama, "b")
    assert weights_sha256(str(adapter)) != weights_sha256(str(other))
    assert cli(["track", "--stage", "sft_dpo", "--adapter", str(adapter), "--record", "run.json"]) == 0
    config = {"examples_sha256": "a" * 64, "examples": 10}
    for name, extra, expected in (("mock", {"generator": "mock", "adapter_path": None}, "measured no model (generator 'mock')"),
                                  ("other", measured(other), f"measured {other}, not the model run.json logged")):
        (store / f"{name}.json").write_text(json.dumps(eval_summary(final_ex_strict=1.0, config={**config, **extra}).to_dict()))
        capsys.readouterr()
        assert cli(["register", "--run", "run.json", "--eval", f"{name}.json"]) == 2
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") == 1, err
    assert client().search_model_versions() == []
    # an oracle-only champion (promoted by hand), then a strict evaluation of the same set: compared with nothing
    (store / "oracle.json").write_text(json.dumps(eval_summary(final_ex_strict=None, config={**config, **measured(adapter)}).to_dict()))
    assert cli(["register", "--run", "run.json", "--eval", "oracle.json", "--promote"]) == 0
    (store / "strict.json").write_text(json.dumps(eval_summary(final_ex_strict=0.5, config={**config, **measured(adapter)}).to_dict()))
    assert cli(["register", "--run", "run.json", "--eval", "strict.json", "--out", "decision.json"]) == 0
    decision = json.loads((store / "decision.json").read_text())
    assert not decision["promoted"] and "has no final_ex_strict" in decision["reason"], decision


@pytest.mark.parametrize("content, expected", [
    ('{"x": NaN}', "x is nan, not a finite number"),
    ('{"y": {"z": Infinity}}', "y.z is inf, not a finite number"),
    ('{"a.b": 1, "a": {"b": 2}}', "two entries flatten to the key 'a.b'"),
    ('{"' + "k" * 251 + '": 1}', "longer than MLflow's 250 characters"),
])
def test_track_refuses_metrics_mlflow_would_store_wrong_or_refuse_midway(store: Path, capsys, content: str, expected: str):
    """NaN and Infinity were stored as nan and 1.8e308 (and written to --metrics_out as JSON no
    other reader takes), a dotted key clashing with a nested one lost a value silently, and a
    key over 250 characters failed inside MLflow, leaving a FAILED run and a traceback."""
    (store / "m.json").write_text(content)
    assert cli(["track", "--stage", "s", "--no_parent", "--metrics", "m.json", "--metrics_out", "out.json"]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1, err
    assert not (store / "out.json").exists() and not (store / "mlruns").exists()


def test_registering_the_same_evaluation_again_adds_no_version(store: Path, tiny_llama: Path):
    """The pipeline's register stage rerun (or the command typed twice) made a second version of
    the same model with the same numbers; the registry then listed one model twice. Another
    evaluation of the model is a new version; --promote of an earlier one moves the alias to it."""
    register_version(store, tiny_llama, "one", 0.5)
    again = ["register", "--run", "run_one.json", "--eval", "summary_one.json", "--base_model", "models/base"]
    assert cli([*again, "--out", "again.json"]) == 0
    decision = json.loads((store / "again.json").read_text())
    assert decision["version"] == 1 and decision["registered_before"] and decision["promoted"], decision
    assert "already registered as version 1" in decision["reason"]
    assert [str(v.version) for v in client().search_model_versions()] == ["1"]
    better = register_version(store, tiny_llama, "two", 0.6)
    assert better["version"] == 2 and better["promoted"]
    assert cli([*again, "--out", "again.json"]) == 0  # version 1 again: still one version each, champion unmoved
    decision = json.loads((store / "again.json").read_text())
    assert decision["version"] == 1 and not decision["promoted"] and decision["champion_version"] == 2
    assert cli([*again, "--promote", "--out", "again.json"]) == 0
    assert sorted(str(v.version) for v in client().search_model_versions()) == ["1", "2"]
    assert str(client().get_model_version_by_alias("text2sql-sft-dpo", "champion").version) == "1"
    assert client().get_model_version("text2sql-sft-dpo", "2").tags["role"] == "former_champion"
    # the same model measured on another set is another version
    other = eval_summary(final_ex_strict=0.5, config={"examples_sha256": "c" * 64, "examples": 10,
                                                      **measured(store / "adapter_one")})
    (store / "other.json").write_text(json.dumps(other.to_dict()))
    assert cli(["register", "--run", "run_one.json", "--eval", "other.json", "--base_model", "models/base"]) == 0
    assert sorted(str(v.version) for v in client().search_model_versions()) == ["1", "2", "3"]


def _mount_namespaces_work() -> bool:
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        return False
    probe = "d=$(mktemp -d) && mount --bind $d $d && mount -o remount,bind,ro $d && ! touch $d/x 2>/dev/null"
    return subprocess.run(["unshare", "-m", "sh", "-c", probe], capture_output=True).returncode == 0


@pytest.mark.skipif(not _mount_namespaces_work(), reason="needs unshare and bind mounts (root in a mount namespace)")
def test_a_registered_model_is_pulled_from_a_store_on_a_read_only_mount(store: Path, tiny_llama: Path, tmp_path: Path):
    """A shared read-only store (a team's mlruns/ mounted read-only) could not be pulled from:
    opening it took the store's lock file, which cannot be created there. Reading needs no lock;
    registering into it is still one error line."""
    import subprocess
    import sys

    register_version(store, tiny_llama, "one", 0.5)
    before = (store / "mlruns" / "mlflow.db").read_bytes()
    (store / "mlruns" / ".mlflow.db.lock").unlink()
    pull = ("from text2sql_mlops.mlops.registry import resolve_adapter; "
            "print(resolve_adapter('models:/text2sql-sft-dpo@champion', cache_dir='cache'))")
    script = (f"mount --bind {store / 'mlruns'} {store / 'mlruns'} && mount -o remount,bind,ro {store / 'mlruns'} && "
              f"{sys.executable} -c \"{pull}\" && "
              f"{sys.executable} -m text2sql_mlops.cli register --run run_one.json --eval summary_one.json --promote")
    env = {k: v for k, v in __import__("os").environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=store, env=env, capture_output=True, text=True, timeout=600)
    pulled = Path(done.stdout.strip().splitlines()[0]) if done.stdout.strip() else None
    assert pulled == Path("cache/text2sql-sft-dpo/v1"), done.stderr[-2000:]
    assert weights_digest(store / pulled) == weights_digest(store / "adapter_one")
    last = done.stderr.strip().splitlines()[-1]  # before it: the pull's download progress bar
    assert done.returncode == 2 and last.startswith("error: cannot open the MLflow store"), done.stderr[-2000:]
    assert "Read-only file system" in last and "Traceback" not in done.stderr
    assert (store / "mlruns" / "mlflow.db").read_bytes() == before


def test_a_register_stopped_midway_is_finished_by_its_rerun(store: Path, tiny_llama: Path, monkeypatch):
    """A register killed after creating its version but before moving the alias: the rerun found
    the version "already registered" and never applied the champion rule to it."""
    from mlflow import MlflowClient

    register_version(store, tiny_llama, "one", 0.5)
    real = MlflowClient.set_registered_model_alias

    def stopped(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", stopped)
    adapter = adapter_folder(store / "adapter_two", tiny_llama, "two")
    assert cli(["track", "--stage", "sft_dpo", "--adapter", str(adapter), "--record", "run_two.json"]) == 0
    summary = eval_summary(final_ex_strict=0.6, config={"examples_sha256": "a" * 64, "examples": 10, **measured(adapter)})
    (store / "summary_two.json").write_text(json.dumps(summary.to_dict()))
    again = ["register", "--run", "run_two.json", "--eval", "summary_two.json", "--base_model", "models/base", "--out", "two.json"]
    assert cli(again) == 130
    assert "decision" not in client().get_model_version("text2sql-sft-dpo", "2").tags
    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", real)
    assert cli(again) == 0
    decision = json.loads((store / "two.json").read_text())
    assert decision["version"] == 2 and decision["promoted"] and "beats the champion's 0.5000" in decision["reason"], decision
    assert sorted(str(v.version) for v in client().search_model_versions()) == ["1", "2"]
    assert str(client().get_model_version_by_alias("text2sql-sft-dpo", "champion").version) == "2"
    assert client().get_model_version("text2sql-sft-dpo", "1").tags["role"] == "former_champion"


def test_a_register_stopped_after_moving_the_alias_or_between_its_versions_is_finished_by_its_rerun(
        store: Path, tiny_llama: Path, monkeypatch):
    """Killed right after moving the alias, the rerun left the old champion tagged champion and its
    repair model's alias on it; killed between the repair version and its pair, the rerun made a
    second repair version beside an orphan."""
    from mlflow import MlflowClient

    def pair(name: str, strict: float) -> list[str]:
        adapter = adapter_folder(store / f"adapter_{name}", tiny_llama, name)
        repair = adapter_folder(store / f"repair_{name}", tiny_llama, f"repair {name}")
        assert cli(["track", "--stage", "sft_dpo", "--adapter", str(adapter), "--record", f"run_{name}.json"]) == 0
        assert cli(["track", "--stage", "repair", "--adapter", str(repair), "--record", f"repair_{name}.json"]) == 0
        config = {"examples_sha256": "a" * 64, "examples": 10, **measured(adapter), "repair_adapter_path": str(repair),
                  "repair_adapter_sha256": measured(repair)["adapter_sha256"]}
        (store / f"summary_{name}.json").write_text(json.dumps(eval_summary(final_ex_strict=strict, config=config).to_dict()))
        return ["register", "--run", f"run_{name}.json", "--eval", f"summary_{name}.json", "--repair_run", f"repair_{name}.json",
                "--out", f"decision_{name}.json"]

    def stop_after(method: str, calls: int):
        real = getattr(MlflowClient, method)
        seen = []

        def stopping(self, *args, **kwargs):
            result = real(self, *args, **kwargs)
            seen.append(1)
            if len(seen) == calls:
                raise KeyboardInterrupt
            return result
        monkeypatch.setattr(MlflowClient, method, stopping)
        return real

    assert cli(pair("one", 0.5)) == 0
    two = pair("two", 0.6)
    real = stop_after("set_registered_model_alias", 1)  # the main alias moved, nothing after it
    assert cli(two) == 130
    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", real)
    assert cli(two) == 0
    decision = json.loads((store / "decision_two.json").read_text())
    assert decision["promoted"] and "beats the champion's 0.5000 (version 1)" in decision["reason"], decision
    roles = {str(v.version): v.tags.get("role") for v in client().search_model_versions("name='text2sql-sft-dpo'")}
    assert roles == {"1": "former_champion", "2": "champion"}
    assert client().get_model_version_by_alias("text2sql-sft-dpo-repair", "champion").source == \
        json.loads((store / "repair_two.json").read_text())["model_uri"]
    three = pair("three", 0.7)
    real = stop_after("create_model_version", 1)  # the repair version made, its pair not
    assert cli(three) == 130
    monkeypatch.setattr(MlflowClient, "create_model_version", real)
    assert cli(three) == 0
    repairs = client().search_model_versions("name='text2sql-sft-dpo-repair'")
    assert len(repairs) == 3 and all(v.tags["repairs_for"].startswith("models:/text2sql-sft-dpo/") for v in repairs)
