"""MLflow tracking of pipeline stages: one run per stage, logged after the stage's own command.

    text2sql-mlops track --stage eval_base_dev --config eval=outputs/eval/base/dev/summary.json#config \\
        --metrics outputs/eval/base/dev/summary.json --artifacts outputs/eval/base/dev/summary.json

Each ``dvc.yaml`` stage runs ``<stage command> && text2sql-mlops track ...``: the stage
module stays free of MLflow, and a stage that fails or is interrupted never gets a
run at all. A run that fails while logging is marked FAILED by MLflow, never FINISHED.

Store: ``MLFLOW_TRACKING_URI`` when set (a team server); otherwise a SQLite backend
at ``mlruns/mlflow.db`` with artifacts under ``mlruns/<experiment id>/`` (MLflow 3's file
store is legacy). One experiment per pipeline (``tracking.experiment`` in params.yaml).
Stages may log at once (``dvc queue start -j 2``): a local SQLite store is created,
migrated and given new experiments under a file lock (``mlruns/.mlflow.db.lock``).

Every run is tagged with the stage name, the git commit (``+dirty`` when the tree
has uncommitted changes), the DVC hash of the raw data (``data.dvc``) and a hash of
the logged params; ``main`` reads git and data.dvc and passes the tags in. Its params
are the configuration the stage's command recorded in its own outputs (``--config``:
``eval.batch_size`` from an eval's ``summary.json#config``, ``sft.learning_rate`` from
``training_summary.json#settings``), so a command-line override shows as the value that
ran; params.yaml is never read for them. It logs the outcome numbers of its metrics
files as ``<namespace>/<key>`` (``eval/error_types.final.no_such_column``), step series
from ``metrics.jsonl`` files (``train/loss``), its artifacts (files or folders) and a
trained folder as its MLflow model (``--adapter``).

A run spans its stage (``--started``: when the stage's command began) and is nested
under one parent run per pipeline execution (``pipeline_key``), which spans its stages.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import math
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..core.cliutil import ArgParser, flag
from ..core.errors import UserError
from ..core.fileio import check_outputs, output_file, output_file_type, read_jsonl, write_json
from ..data.load import load_examples, read_records, spider_split_files
from ..generation.adapters import weights_sha256
from .models import load_trained_model, log_trained_model

STORE_DIR = Path("mlruns")
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
DEFAULT_EXPERIMENT = "text2sql-mlops"


# --------------------------------------------------------------------------- the store


def tracking_uri(store_dir: str | os.PathLike = STORE_DIR) -> str:
    """``MLFLOW_TRACKING_URI`` or the project's SQLite store under ``store_dir``."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path(store_dir).resolve() / 'mlflow.db'}"


def quiet_mlflow() -> None:
    """MLflow's SQLite store logs its schema migrations at INFO on every first use."""
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def sqlite_db_path(uri: str) -> Path | None:
    """The database file of a local ``sqlite:///`` store URI; None for a server or an in-memory store."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


@contextmanager
def store_lock(uri: str, reading: bool = False) -> Iterator[None]:
    """An exclusive inter-process lock on a local SQLite store (``.mlflow.db.lock`` next to the db).

    MLflow creates and migrates a fresh SQLite store on first use with no lock between
    processes: two stages logging at once both ran the migrations and broke the store for
    good (``table _alembic_tmp_latest_metrics already exists``). Under this lock the first
    process creates the store and the others wait, then find it ready. Not re-entrant:
    never nest it. A server URI needs no lock (the server serialises).

    ``reading``: the caller only reads an existing store (pulling a registered model). Such a
    store on a read-only mount, or one shared read-only by another user, is read without
    the lock: nobody can create or migrate it there, so there is nothing to serialise.
    """
    db = sqlite_db_path(uri)
    if db is None or os.name == "nt":
        yield
        return

    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        handle = open(db.parent / f".{db.name}.lock", "a")
    except OSError as exc:
        if not reading or exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM) or not db.is_file():
            raise
        yield
        return
    with handle:  # closing it releases the lock
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def connect(experiment: str | None = None, store_dir: str | os.PathLike = STORE_DIR, registry: bool = False,
            reading: bool = False) -> str | None:
    """Point MLflow at the store and return the id of ``experiment`` (created when new; None without one).

    Opening the store (creating and migrating a new SQLite database, with the model
    registry's tables too when ``registry``) and creating the experiment happen under
    ``store_lock``: concurrent stages wait for each other instead of racing. Later writes
    need no lock: MLflow's SQLite sessions wait up to 20 s on a busy database
    (``PRAGMA busy_timeout``), and each write is one short transaction.
    """
    quiet_mlflow()
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri(store_dir)
    where = "MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI") else "--store"  # set_tracking_uri sets it
    if uri.startswith(("http://", "https://")):
        # MLflow retries an unanswered server for minutes by default: fail within about a minute instead.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    try:
        mlflow.set_tracking_uri(uri)
        with store_lock(uri, reading=reading and experiment is None):
            return _open_experiment(MlflowClient(uri), experiment, registry)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the store's backend raises (OSError, MLflow, SQLAlchemy)
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise UserError(f"cannot open the MLflow store {uri}: {reason}; check {where}") from None


def _open_experiment(client, experiment: str | None, registry: bool) -> str | None:
    """``connect``'s work inside the store lock: open the store, find or create ``experiment``."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(experiment) if experiment else None  # opens (creates) the store
    if experiment is None:
        client.search_experiments(max_results=1)
    if registry:
        client.search_registered_models(max_results=1)  # the registry's store: its own engine and checks
    if experiment is None:
        return None
    if found is not None:
        return found.experiment_id
    # With the SQLite store MLflow puts an experiment's artifacts in ./mlruns/<experiment id>/,
    # resolved to an absolute path when the experiment is created. The kind tag opens it in
    # the UI's model-training view (runs, metrics, models), not the GenAI one (traces).
    try:
        return client.create_experiment(experiment, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
    except MlflowException:  # created meanwhile by a process that does not take the lock
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise
        return found.experiment_id


# --------------------------------------------------------------------------- what a run carries


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts to one level with dotted keys; lists and empty dicts stay values. Two keys
    that flatten alike (``{"a.b": 1, "a": {"b": 2}}``) are an error: one value was dropped."""
    if not isinstance(tree, dict) or (not tree and prefix):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        for flat, leaf in flatten(value, f"{prefix}.{key}" if prefix else str(key)).items():
            if flat in out:
                raise UserError(f"two entries flatten to the key {flat!r} (dotted keys and nesting clash); rename one")
            out[flat] = leaf
    return out


# Sections and keys of a command's summary that say how it ran, not what came out: never
# metrics (``--config`` logs such a section as params), so a run's params and metrics are disjoint.
CONFIG_SECTIONS = frozenset({"settings", "runtime", "config", "configuration", "lora", "versions", "inputs_sha256"})
CONFIG_KEYS = frozenset({"method", "out", "mode", "top_k", "fk_hops", "dataset", "tables_json"})
# The metric namespace of a stage, by the start of its name (README "MLflow"): eval/final_ex_strict.
NAMESPACES = (("eval", "eval"), ("data", "data"), ("schema", "schema"), ("rollout", "rollout"), ("synth", "pairs"),
              ("pairs", "pairs"), ("sft", "train"), ("dpo", "train"), ("compare", "compare"), ("report", "report"), ("register", "register"),
              ("model", "model"))


def split_summary(tree: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(configuration, outcomes) of a command's summary, each flattened."""
    config = {key: value for key, value in tree.items() if key in CONFIG_SECTIONS or key in CONFIG_KEYS}
    outcomes = {key: value for key, value in tree.items() if key not in config}
    return flatten(config), flatten(outcomes)


def numeric_metrics(tree: dict[str, Any], source: str = "the metrics") -> dict[str, float]:
    """The outcome numbers of a metrics file, flattened (booleans, nulls and configuration are
    not metrics). NaN or an infinity (Python's json reads both) is an error naming the key:
    MLflow stored NaN and 1.8e308 for them, and --metrics_out wrote JSON no other reader takes."""
    try:
        numbers = {key: float(value) for key, value in split_summary(tree)[1].items()
                   if isinstance(value, (int, float)) and not isinstance(value, bool)}
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from None
    for key, value in numbers.items():
        if not math.isfinite(value):
            raise UserError(f"{source}: {key} is {value}, not a finite number; fix the command that wrote it")
    return numbers


MAX_KEY = 250  # MLflow's longest metric or param name


def _config_file(spec: str) -> str:
    """The FILE of a ``[NAME=]FILE[#SECTION]`` spec."""
    _, sep, where = spec.partition("=")
    return (where if sep else spec).partition("#")[0]


def config_params(specs: Iterable[str], metrics_files: Iterable[str] = ()) -> dict[str, Any]:
    """The params of a run: the configuration the stage's command recorded in its outputs.

    Each spec is ``[NAME=]FILE[#SECTION[,SECTION...]]``: the JSON object at SECTION of FILE,
    flattened under NAME (default: the section's name), as ``NAME.key`` (``sft.learning_rate``
    from ``sft=training_summary.json#settings``; ``runtime.device`` from ``...#runtime``);
    without ``#SECTION`` the whole file. So a run logs the value that ran, command-line
    overrides included, never a params file the command may not have used. A null section
    (the LoRA of a whole-model fine-tune) gives nothing. A section of a file that is also a
    metrics file must be configuration (``CONFIG_SECTIONS``): params and metrics stay disjoint.
    """
    as_metrics = {Path(path).resolve() for path in metrics_files}
    params: dict[str, Any] = {}
    for spec in specs:
        name, sep, _ = spec.partition("=")
        name = name if sep else ""
        path, listed = _config_file(spec), spec.partition("#")[2]
        sections = [section for section in listed.split(",") if section] if listed else []
        if not path or (name and len(sections) > 1) or not (name or sections):
            raise UserError(f"--config must look like NAME=FILE, NAME=FILE#SECTION or FILE#SECTION[,SECTION...], got {spec!r}")
        if not Path(path).is_file():
            raise UserError(f"--config {spec}: {path} does not exist; did the stage's command succeed?")
        tree = _read_json(path, "configuration file")
        for section in sections or [None]:
            if section is not None and section not in tree:
                raise UserError(f"--config {spec}: {path} has no {section!r}; it has {', '.join(tree) or 'nothing'}")
            if Path(path).resolve() in as_metrics and section not in CONFIG_SECTIONS | CONFIG_KEYS:
                raise UserError(f"--config {spec}: {path} is also a metrics file, and {section or 'the whole file'} holds outcomes; "
                                f"name a configuration section ({', '.join(sorted(CONFIG_SECTIONS))})")
            value = tree if section is None else tree[section]
            if value is None:
                continue
            for key, item in flatten(value, name or section).items():
                if key in params and params[key] != item:
                    raise UserError(f"--config {spec}: param {key} is already {params[key]!r} from another --config; rename one (NAME=...)")
                params[key] = item
    return params


def namespace(stage: str) -> str:
    return next((space for start, space in NAMESPACES if stage.startswith(start)), stage)


def _mlflow_key(key: str) -> str:
    """MLflow keys allow letters, digits and _-. /; anything else becomes _."""
    return "".join(ch if ch.isalnum() or ch in "_-. /" else "_" for ch in key)


def _model_name(stage: str) -> str:
    """A logged model's name (MLflow forbids / : . % and quotes in it): the stage's."""
    return "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in stage) or "model"


def params_hash(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]


# --------------------------------------------------------------------------- logging a stage


def log_stage(
    stage: str,
    experiment: str,
    params: dict[str, Any],
    metrics_files: Iterable[str] = (),
    step_files: Iterable[str] = (),
    artifacts: Iterable[str] = (),
    adapter: str | None = None,
    store_dir: str | os.PathLike = STORE_DIR,
    extra_tags: dict[str, str] | None = None,
    started: float | None = None,
    pipeline: str | None = None,
    to_parent: bool = False,
    provenance: dict[str, str] | None = None,
    inputs: Iterable[str] = (),
    tables: Iterable[str] = (),
) -> dict[str, str]:
    """Log one finished stage as one MLflow run; returns the run record (ids and URIs).

    The run spans the stage: from ``started`` (seconds since the epoch; default now) to
    the end of logging. It is nested under the parent run of the pipeline execution named
    ``pipeline`` (``pipeline_parent``; None: not nested). ``provenance`` holds the tags the
    caller computed from where it runs (``git_commit``, ``dvc_data_hash``: ``main`` asks git
    and reads data.dvc); the run and a parent it creates carry them as given, and this
    function never asks git or reads the working directory. ``extra_tags`` are this run's only.
    ``params`` are logged as given (``main`` passes ``config_params``: the configuration the
    stage's command recorded); metrics are outcomes only, named ``<namespace>/<key>``
    (``eval/final_ex_strict``, ``train/loss``).

    Every input is read and checked first (metrics files, step series, artifacts, the
    adapter folder, loaded with its base model): a bad one is a ``UserError`` and no run is
    created at all. The adapter becomes the run's MLflow model (``log_trained_model``); the
    record names it (``model_uri``, ``model_id``; ``adapter_uri`` is the same URI).
    """
    import mlflow
    from mlflow import MlflowClient

    files = [Path(p) for p in [*metrics_files, *step_files, *artifacts, *([adapter] if adapter else [])]]
    missing = [str(p) for p in files if not p.exists()]
    if missing:
        raise UserError(f"track {stage}: nothing to log at {', '.join(missing)}; did the stage's command succeed?")
    datasets = [read_dataset(spec) for spec in inputs]
    table_frames = [read_table(spec) for spec in tables]
    metrics = [numeric_metrics(_read_json(path), str(path)) for path in metrics_files]
    series = [step for path in step_files for step in _read_steps(Path(path))]
    if started is not None and not (math.isfinite(started) and 0 < started <= time.time() + 60):
        raise UserError(f"--started must be the stage's start as seconds since the epoch (`date +%s`), got {started}")
    trained = None
    if adapter:  # torch and the model only here: a stage without an adapter stays light
        trained = load_trained_model(adapter)
    space = namespace(stage)
    too_long = [key for numbers in [*metrics, *(step for _, step in series)] for key in numbers
                if len(_mlflow_key(f"{space}/{key}")) > MAX_KEY] + [key for key in params if len(key) > MAX_KEY]
    if too_long:  # checked before any run exists: MLflow refused it mid-run, leaving a FAILED run
        raise UserError(f"track {stage}: the name {too_long[0][:60]!r}... is longer than MLflow's {MAX_KEY} characters; "
                        "shorten that key in the file that holds it")
    experiment_id = connect(experiment, store_dir)
    tags = {"stage": stage, **(provenance or {}), "params_hash": params_hash(params), **(extra_tags or {})}
    start_ms = int((started if started is not None else time.time()) * 1000)
    parent = pipeline_parent(experiment_id, start_ms, pipeline, provenance or {}, store_dir) if pipeline is not None else None
    if parent:
        tags["mlflow.parentRunId"] = parent
    client = MlflowClient()
    run_id = client.create_run(experiment_id, start_time=start_ms, tags=tags, run_name=stage).info.run_id
    try:
        active = mlflow.start_run(run_id=run_id)
    except BaseException:  # stopped before the run was resumed: never left RUNNING
        client.set_terminated(run_id, "FAILED")
        raise
    # Resuming the run: MLflow marks it FAILED if logging raises, FINISHED (now) otherwise.
    with active as run:
        if params:
            mlflow.log_params({_mlflow_key(k): str(v)[:6000] for k, v in params.items()})
        for numbers in metrics:
            if numbers:
                mlflow.log_metrics({_mlflow_key(f"{space}/{k}"): v for k, v in numbers.items()})
        _log_series(run.info.run_id, [(step, {f"{space}/{k}": v for k, v in numbers.items()}) for step, numbers in series])
        for dataset in datasets:
            mlflow.log_input(dataset, context=INPUT_CONTEXTS.get(space, space))
        for name, frame in table_frames:
            mlflow.log_table(data=frame, artifact_file=f"{name}.json")
        for path in artifacts:
            _log_artifact(Path(path))
        record = {"run_id": run.info.run_id, "experiment_id": experiment_id, "experiment": experiment, "stage": stage,
                  "artifact_uri": run.info.artifact_uri, "tracking_uri": mlflow.get_tracking_uri()}
        if trained is not None:
            model_tags = {"stage": stage, "kind": "lora" if trained.base_model is not None else "whole_model",
                          "base_model": str(trained.base_model or "")}
            info = log_trained_model(trained, _model_name(stage), model_tags)
            # The weights' digest: `register` checks that the evaluation it is given measured them.
            record.update(model_uri=info.model_uri, model_id=info.model_id, adapter_uri=info.model_uri,
                          adapter_path=str(trained.folder), adapter_sha256=weights_sha256(str(trained.folder)))
    if parent:
        record["parent_run_id"] = parent
        _extend_parent(parent, run_id, to_parent, metrics, space, artifacts)
    return record


# --------------------------------------------------------------------------- datasets as run inputs

INPUT_CONTEXTS = {"train": "training", "eval": "evaluation", "rollout": "training", "pairs": "training"}
PREVIEW_CELL_CHARS = 500  # a prompt can be long; the UI's preview needs the start of it


def read_dataset(spec: str):
    """``NAME=PATH[@SPLIT]`` as an MLflow dataset: a JSON/JSONL file of records (examples,
    pairs, trajectories) or a split of a Spider-layout folder, as a pandas frame whose
    nested cells are JSON text (cut to PREVIEW_CELL_CHARS); MLflow records its name, source
    path, digest and row count, and the UI previews its rows."""
    import pandas as pd
    from mlflow.data.pandas_dataset import from_pandas

    name, sep, where = spec.partition("=")
    path, _, split = where.partition("@")
    if not sep or not name or not path:
        raise UserError(f"--inputs must look like NAME=PATH or NAME=FOLDER@SPLIT, got {spec!r}")
    if Path(path).is_dir():
        records = [example.to_dict() for example in load_examples(path, None, split or "train")]
        source = spider_split_files(Path(path), split or "train")[0]
    elif Path(path).is_file():
        records = [record for _, record in read_records(Path(path))]  # a JSON list or JSONL
        source = Path(path)
    else:
        raise UserError(f"--inputs {name}: {path} does not exist; did the stage's command succeed?")
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise UserError(f"--inputs {name}: {path} must hold a list of JSON objects (records)")

    def cell(value):
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value
        return text[:PREVIEW_CELL_CHARS] if isinstance(text, str) else text

    frame = pd.DataFrame([{key: cell(value) for key, value in record.items()} for record in records])
    with warnings.catch_warnings():
        # MLflow registers its local-file dataset source twice (for "" and "file:" URIs, both
        # LocalArtifactDatasetSource) and warns on every local path that it picked one of the two.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple ways")
        return from_pandas(frame, source=str(source.resolve()), name=name)


def read_table(spec: str):
    """``NAME=FILE.jsonl`` as (name, pandas frame): a table MLflow shows in the UI's
    evaluation view, where rows can be filtered (the per-example results of ``eval``)."""
    import pandas as pd

    name, sep, path = spec.partition("=")
    if not sep or not name or not path.endswith(".jsonl"):
        raise UserError(f"--table must look like NAME=FILE.jsonl, got {spec!r}")
    if not Path(path).is_file():
        raise UserError(f"--table {name}: {path} does not exist; did the stage's command succeed?")
    return name, pd.DataFrame(list(read_jsonl(path)))


# --------------------------------------------------------------------------- the pipeline's parent run


def pipeline_parent(experiment_id: str, start_ms: int, key: str, provenance: dict[str, str],
                    store_dir: str | os.PathLike = STORE_DIR) -> str:
    """The id of the parent run of pipeline execution ``key``, created (with the ``provenance``
    tags) by the first stage that logs, under the store lock, so stages logging at once share one parent."""
    from mlflow import MlflowClient

    client = MlflowClient()
    with store_lock(tracking_uri(store_dir)):
        quoted = key.replace("'", "\\'")
        found = client.search_runs([experiment_id], filter_string=f"tags.pipeline_run = '{quoted}' and tags.pipeline_parent = 'true'",
                                   max_results=1)
        if found:
            return found[0].info.run_id
        tags = {"pipeline_run": key, "pipeline_parent": "true", **provenance}
        run = client.create_run(experiment_id, start_time=start_ms, tags=tags, run_name=key)
        client.set_terminated(run.info.run_id, "FINISHED", end_time=start_ms)
        return run.info.run_id


def _extend_parent(parent: str, child: str, to_parent: bool, metrics: list[dict[str, float]], space: str,
                   artifacts: Iterable[str]) -> None:
    """The parent spans its children (its end moves to the last child's); ``to_parent`` also
    logs the child's metrics and artifacts there (compare's table and chart)."""
    from mlflow import MlflowClient

    client = MlflowClient()
    end = client.get_run(child).info.end_time
    if end and end > (client.get_run(parent).info.end_time or 0):
        client.set_terminated(parent, "FINISHED", end_time=end)
    if to_parent:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        values = [Metric(_mlflow_key(f"{space}/{k}"), v, now, 0) for numbers in metrics for k, v in numbers.items()]
        for start in range(0, len(values), 1000):
            client.log_batch(parent, metrics=values[start:start + 1000])
        for path in map(Path, artifacts):
            if path.is_dir():
                client.log_artifacts(parent, str(path), artifact_path=path.name)
            else:
                client.log_artifact(parent, str(path))


def _read_json(path: str | os.PathLike, what: str = "metrics file") -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: bad JSON or not UTF-8
        raise UserError(f"cannot read {what} {path}: {exc}; give the JSON file the stage wrote") from None
    if not isinstance(data, dict):
        raise UserError(f"{what} {path} must hold a JSON object, not a {type(data).__name__}")
    return data


def _read_steps(path: Path) -> list[tuple[int, dict[str, float]]]:
    """(step, numbers) per line of a JSONL step series; a line's ``step`` defaults to its index."""
    series = []
    for index, line in enumerate(read_jsonl(path)):
        step = line.get("step", index)
        if isinstance(step, bool) or not (isinstance(step, int) or (isinstance(step, float) and step.is_integer())):
            raise UserError(f"step file {path}: record {index + 1} has step {step!r}; a step must be a whole number")
        numbers = {k: v for k, v in numeric_metrics(line, f"{path}:{index + 1}").items() if k != "step"}
        if numbers:
            series.append((int(step), numbers))
    return series


def _log_series(run_id: str, series: list[tuple[int, dict[str, float]]]) -> None:
    """Step series in batches of 1000 values: one short write each (not one per step), so
    concurrent stages rarely wait on the SQLite store's write lock."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    values = [Metric(_mlflow_key(key), value, now, step) for step, numbers in series for key, value in numbers.items()]
    client = MlflowClient()
    for start in range(0, len(values), 1000):
        client.log_batch(run_id, metrics=values[start:start + 1000])


def _log_artifact(path: Path) -> None:
    import mlflow

    if path.is_dir():
        mlflow.log_artifacts(str(path), artifact_path=path.name)
    else:
        mlflow.log_artifact(str(path))


# --------------------------------------------------------------------------- command line


def _a_trained_model(folder: Path) -> bool:
    """A folder `train` wrote (a LoRA adapter or a whole model): ``--record`` may go inside it,
    beside the model the run logs, where `register --run` reads it."""
    return (folder / "adapter_config.json").is_file() or (folder / "config.json").is_file()


def make_parser(prog: str | None = "text2sql-mlops track") -> ArgParser:
    parser = ArgParser(prog=prog, description="Log a finished pipeline stage to MLflow as one run (params: the "
                       "configuration its command recorded; metrics files, step series, artifacts, a trained model).")
    flag(parser, "stage", required=True, help="stage name (the run name and the `stage` tag)")
    flag(parser, "config", nargs="*", default=[], metavar="[NAME=]FILE[#SECTION]", help="the configuration the stage's command "
         "recorded, logged as NAME.key params: a JSON file, or a section of one (rollout/eval summary.json#config, "
         "training_summary.json#settings; FILE#runtime,lora: each section under its own name)")
    flag(parser, "params_file", default="params.yaml", help="where tracking.experiment names the default experiment "
         "(default: %(default)s); never read for params")
    flag(parser, "metrics", nargs="*", default=[], metavar="JSON", help="JSON files whose numbers become metrics")
    flag(parser, "steps", nargs="*", default=[], metavar="JSONL", help="JSONL step series (e.g. training metrics.jsonl)")
    flag(parser, "artifacts", nargs="*", default=[], metavar="PATH", help="files or folders to log as artifacts")
    flag(parser, "adapter", help="a trained folder (a LoRA adapter, or a whole model from --full_finetune), logged as the "
         "run's MLflow transformers model (the adapter and tokenizer; its base model recorded by local path)")
    flag(parser, "tag", action="append", default=[], metavar="KEY=VALUE", help="another run tag (repeatable)")
    flag(parser, "experiment", help="MLflow experiment (default: tracking.experiment in the params file, else "
         f"{DEFAULT_EXPERIMENT})")
    flag(parser, "data_dvc", default="data.dvc", help="the .dvc file of the raw data, whose hash tags the run (default: %(default)s)")
    flag(parser, "store", default=str(STORE_DIR), help="local store folder when MLFLOW_TRACKING_URI is unset (default: %(default)s)")
    flag(parser, "record", type=output_file_type(allowed_inside=_a_trained_model),
         help="write the run record (run id, artifact URIs) to this JSON file (may go inside the trained folder)")
    flag(parser, "metrics_out", type=output_file, help="also write the logged metrics, flattened, to this JSON file (a DVC metrics file)")
    flag(parser, "plots_out", type=output_file, help="also write the --steps series as one JSON list (a DVC plots file)")
    flag(parser, "started", type=float, metavar="EPOCH_S", help="when the stage's command started (`date +%%s`): "
         "the run spans the stage, not only this call (default: now)")
    flag(parser, "inputs", nargs="*", default=[], metavar="NAME=PATH[@SPLIT]", help="datasets the stage read, logged as "
         "run inputs (name, source, digest, rows, preview): record files, or a split of a Spider-layout folder")
    flag(parser, "table", nargs="*", default=[], metavar="NAME=FILE.jsonl", help="JSONL rows logged as an MLflow table "
         "(eval's examples.jsonl: one row per example, filterable in the UI)")
    flag(parser, "no_parent", action="store_true", help="do not nest the run under the pipeline execution's parent run")
    flag(parser, "to_parent", action="store_true", help="also log the metrics and artifacts to the parent run (compare's table)")
    return parser


# The working directory, read here at the command's edge only: the library functions above get
# what these return as arguments.


def git_commit() -> str:
    """HEAD's commit, with ``+dirty`` when tracked files changed; ``unknown`` outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty.strip() else "")


def data_hash(dvc_file: str | os.PathLike = "data.dvc") -> str:
    """The DVC hash of the raw data folder (``data.dvc``'s md5); ``unknown`` when there is no
    such file (``track`` outside a DVC project). A file that is there but is no .dvc file is a
    mistake worth one line, not a run tagged ``unknown``."""
    import yaml

    path = Path(dvc_file)
    if not path.exists():
        return "unknown"
    try:
        md5 = yaml.safe_load(path.read_text())["outs"][0]["md5"]
    except (OSError, KeyError, IndexError, TypeError, UnicodeDecodeError, yaml.YAMLError):
        md5 = None
    if not isinstance(md5, str) or not md5:
        raise UserError(f"--data_dvc {dvc_file}: not a .dvc file (no outs[0].md5); give the .dvc file of the raw data "
                        "(`dvc add data` writes data.dvc)")
    return md5


def pipeline_key(commit: str) -> str:
    """Which pipeline execution a stage belongs to: the DVC experiment (``dvc exp run`` sets
    DVC_EXP_NAME), else TEXT2SQL_PIPELINE_RUN (``make repro`` sets it to a timestamp and the
    commit), else ``commit`` and the day (a plain ``dvc repro``)."""
    if os.environ.get("DVC_EXP_NAME"):
        return f"exp {os.environ['DVC_EXP_NAME']}"
    if os.environ.get("TEXT2SQL_PIPELINE_RUN"):
        return os.environ["TEXT2SQL_PIPELINE_RUN"]
    return f"dvc repro {commit[:12]} {time.strftime('%Y-%m-%d', time.gmtime())}"


def experiment_name(params_file: str | os.PathLike = "params.yaml") -> str:
    """``tracking.experiment`` of the params file; the default experiment when the file or the
    key is missing. A params file that is there but unreadable is refused, not silently skipped."""
    import yaml

    path = Path(params_file)
    if not path.exists():
        return DEFAULT_EXPERIMENT
    try:
        params = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"--params_file {params_file}: not readable YAML ({first}); fix it or name the experiment "
                        "with --experiment") from None
    params = {} if params is None else params  # an empty file
    tracking = (params.get("tracking") or {}) if isinstance(params, dict) else None
    if not isinstance(tracking, dict):
        raise UserError(f"--params_file {params_file}: expected a mapping with an optional tracking: {{experiment: NAME}} "
                        "section; fix it or name the experiment with --experiment")
    return str(tracking.get("experiment") or DEFAULT_EXPERIMENT)


def check_outputs_apart(args) -> None:
    """The files ``track`` writes must not be its input files, nor one another: it writes them
    after logging, one by one. (A record inside the --adapter folder is fine: it adds a file.)"""
    read = [*args.metrics, *args.steps, args.params_file, args.data_dvc,
            *(item.partition("=")[2] or item for item in args.table),
            *(_config_file(spec) for spec in args.config),
            *(path for path in args.artifacts if not Path(path).is_dir())]
    check_outputs((("--record", args.record), ("--metrics_out", args.metrics_out), ("--plots_out", args.plots_out)), read)


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops track") -> int:
    args = make_parser(prog).parse_args(argv)
    check_outputs_apart(args)
    tags = {}
    for item in args.tag:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--tag must look like KEY=VALUE, got {item!r}")
        tags[key] = value
    params = config_params(args.config, args.metrics)
    experiment = args.experiment or experiment_name(args.params_file)
    provenance = {"git_commit": git_commit(), "dvc_data_hash": data_hash(args.data_dvc)}
    record = log_stage(args.stage, experiment, params, args.metrics, args.steps, args.artifacts, args.adapter, args.store, tags,
                       started=args.started, pipeline=None if args.no_parent else pipeline_key(provenance["git_commit"]),
                       to_parent=args.to_parent, inputs=args.inputs, tables=args.table, provenance=provenance)
    if args.record:
        write_json(args.record, record)
    if args.metrics_out:
        write_json(args.metrics_out, {k: v for path in args.metrics for k, v in numeric_metrics(_read_json(path), path).items()})
    if args.plots_out:
        write_json(args.plots_out, [line for path in args.steps for line in read_jsonl(path)])
    print(json.dumps(record))
    print(f"track: logged stage {args.stage!r} as run {record['run_id']} in experiment {experiment!r}", file=sys.stderr)
    return 0
