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
    (store / "summary.json").write_text(json.dumps({"first_turn_ex": 0.25, "repair": {"repaired": 3}, "flag": True, "none": None}))
    (store / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5}\n')
    adapter_folder(store / "adapter_dir", "v1")
    code = cli(["track", "--stage", "eval_base", "--params", "eval", "--metrics", "summary.json", "--steps", "metrics.jsonl",
                "--artifacts", "summary.json", "--adapter", "adapter_dir", "--record", "run.json",
                "--metrics_out", "m.json", "--plots_out", "p.json", "--tag", "k=v"])
    assert code == 0
    record = json.loads((store / "run.json").read_text())
    run = client().get_run(record["run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "eval_base"
    assert run.data.params == {"eval.limit": "3", "eval.nested.a": "1"}
    assert run.data.metrics["first_turn_ex"] == 0.25 and run.data.metrics["repair.repaired"] == 3
    assert "flag" not in run.data.metrics and "none" not in run.data.metrics
    assert [m.value for m in client().get_metric_history(run.info.run_id, "loss")] == [2.0, 1.5]
    tags = run.data.tags
    assert tags["stage"] == "eval_base" and tags["dvc_data_hash"] == "abc123.dir" and tags["k"] == "v" and tags["git_commit"]
    assert client().get_experiment(record["experiment_id"]).name == "test-exp"
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
    assert [r.info.status for r in runs] == ["FAILED"]


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
