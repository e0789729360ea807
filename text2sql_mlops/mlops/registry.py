"""``text2sql-mlops register``: the MLflow registry promotes the best SFT+DPO model.

    text2sql-mlops register --run outputs/sft_dpo/mlflow_run.json \\
        --eval outputs/eval/sft_dpo/summary.json --out outputs/register/decision.json

A training stage's ``track --adapter`` logs the trained folder as an MLflow model of the
``transformers`` flavor (``models.py: log_trained_model``): a LoRA adapter is saved as the PEFT
adapter plus the tokenizer, its base model recorded by local path, never copied; a whole
fine-tuned model (``--full_finetune``) is saved whole. Every ``register`` call adds that
logged model (``models:/m-...``) as a version of the registered model
(``text2sql-sft-dpo`` by default), tagged with its evaluation numbers, the base model
and the hash of the evaluation examples, so every version loads with plain
``mlflow.transformers.load_model("models:/text2sql-sft-dpo@champion")``. The
``champion`` alias moves to the new version only when its strict final EX beats the
champion's on the SAME evaluation set (same hash); otherwise the new version is tagged
``challenger`` and the decision says why. Numbers from different evaluation sets
are never compared: the new version stays a challenger until promoted by hand
(``--promote``). Aliases, not stages: MLflow 3 deprecates stages.

An evaluation whose repair turns a second model answered (``eval --repair_adapter_path``)
measured the pair, so ``--repair_run`` registers that model too, as a version of
``<name>-repair`` with the same tags; the main version's ``repair_model`` tag names it, and
it holds ``champion`` exactly while its pair does.

``resolve_adapter`` is the other direction: ``models:/NAME@ALIAS`` (or
``models:/NAME/VERSION``, ``models:/NAME/latest``, a logged model ``models:/m-ID``, or
``runs:/...``) is downloaded to a local folder (``models/registry/NAME/vN``) that
``eval`` and the ``hf`` generator load like any adapter path: an MLflow model is
unpacked into the layout ``train`` writes (the adapter or the whole model, with its
tokenizer). Only loadable adapters (``generation/adapters.py: check_adapter_folder``: a readable
``adapter_config.json`` and the weights) or whole models are logged, registered,
cached or used.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..core.cliutil import ArgParser, flag
from ..core.errors import UserError
from ..core.fileio import atomic_folder, check_not_an_input, output_file, write_json
from ..core.records import Summary, read_summary
from ..generation.adapters import (
    ADAPTER_CONFIG,
    MODEL_CONFIG,
    check_adapter_files,
    check_adapter_folder,
    is_whole_model_folder,
)
from .tracking import connect, sqlite_db_path, store_lock, tracking_uri

DEFAULT_MODEL_NAME = "text2sql-sft-dpo"
CHAMPION = "champion"
METRIC = "final_ex_strict"  # promotion compares the gold-free number only
TAGGED_NUMBERS = ("first_turn_ex", "final_ex_strict", "final_ex_oracle", "executable_rate", "examples")
# Where the MLflow transformers flavor puts things inside a logged model (mlflow/transformers/):
# MLmodel names the PEFT adapter folder (peft_adaptor) or the whole model's (model_binary).
MLMODEL = "MLmodel"
FLAVOR = "transformers"
TOKENIZER_DIR = ("components", "tokenizer")


@contextmanager
def _no_progress_bar() -> Iterator[None]:
    """Small downloads: no MLflow progress bar on stderr."""
    progress = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        yield
    finally:
        if progress is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = progress


def check_logged_model(model_id: str) -> None:
    """``check_adapter_files`` on a logged MLflow model before it is registered: a transformers
    model with a tokenizer whose adapter (or whole model) folder is complete. Only ``MLmodel``
    and ``adapter_config.json`` are downloaded."""
    import mlflow
    import yaml
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    where = f"models:/{model_id}"
    try:
        client = MlflowClient()
        location = client.get_logged_model(model_id).artifact_location.rstrip("/")
        with _no_progress_bar(), tempfile.TemporaryDirectory() as tmp:
            if MLMODEL not in {Path(a.path).name for a in client.list_logged_model_artifacts(model_id) if not a.is_dir}:
                raise UserError(f"{where} has no {MLMODEL}: it is not an MLflow model; log it again with `track --adapter`")
            local = mlflow.artifacts.download_artifacts(artifact_uri=f"{location}/{MLMODEL}", dst_path=tmp)
            try:
                flavor = (yaml.safe_load(Path(local).read_text(encoding="utf-8")) or {}).get("flavors", {}).get(FLAVOR)
            except (yaml.YAMLError, AttributeError, ValueError):
                flavor = None
            if not isinstance(flavor, dict):
                raise UserError(f"{where} is not a transformers model ({MLMODEL} has no {FLAVOR} flavor); log it with `track --adapter`")
            inner = flavor.get("peft_adaptor") or flavor.get("model_binary")
            if not inner or "tokenizer" not in (flavor.get("components") or []):
                raise UserError(f"{where} holds no adapter or model weights and tokenizer (saved by reference to a Hub "
                                "repository?); log it with `track --adapter`")
            files = [Path(a.path).name for a in client.list_logged_model_artifacts(model_id, inner) if not a.is_dir]
            text = None
            if ADAPTER_CONFIG in files:
                config = mlflow.artifacts.download_artifacts(artifact_uri=f"{location}/{inner}/{ADAPTER_CONFIG}", dst_path=tmp)
                text = Path(config).read_text(encoding="utf-8", errors="replace")
    except MlflowException as exc:
        raise UserError(f"cannot read the logged model {where} from {mlflow.get_tracking_uri()}: "
                        f"{str(exc).splitlines()[0]}; give the record of a run in this store") from None
    check_adapter_files(f"{where}/{inner}", files, text)


def open_store(reading: bool = False) -> None:
    """Point MLflow at the project's store (tracking and registry), opened under the store lock.

    A local store that does not exist is an error here, never created empty: pulling or
    registering needs the store the pipeline's ``track`` calls wrote. ``reading`` (pulling):
    a store on a read-only mount is read as it is (``store_lock``).
    """
    db = sqlite_db_path(tracking_uri())
    if db is not None and not db.is_file():
        raise UserError(f"no MLflow store at {db}; run from the project folder whose `track` calls wrote mlruns/, "
                        "or set MLFLOW_TRACKING_URI")
    connect(registry=True, reading=reading)


# --------------------------------------------------------------------------- registering


def eval_dataset_hash(summary: Summary) -> str:
    """What identifies an evaluation set: the hash of its example ids (ids hash db, question
    and gold SQL), with the count. Two runs on the same examples share it whatever the paths."""
    config = summary.config
    if "examples_sha256" not in config:
        raise UserError("the evaluation summary has no config.examples_sha256; give the summary.json a rollout/eval wrote")
    return f"{config['examples_sha256'][:16]}-{config['examples']}"


def decide(new_value: float | None, new_hash: str, champion: dict[str, str] | None) -> tuple[bool, str]:
    """(promote?, why) for a new version against the current champion's tags (None: no champion)."""
    if new_value is None:
        return False, f"the new version has no {METRIC} (an oracle-only evaluation); it cannot be compared"
    if champion is None:
        return True, "first version: no champion yet"
    if champion.get("eval_dataset_hash") != new_hash:
        return False, (f"not compared: the champion (version {champion.get('version')}) was evaluated on a different set "
                       f"({champion.get('eval_dataset_hash')} vs {new_hash}); promote by hand with --promote if intended")
    try:
        old = float(champion.get(METRIC, "None"))
    except ValueError:  # "None": a champion promoted by hand from an oracle-only evaluation
        return False, (f"not compared: the champion (version {champion.get('version')}) has no {METRIC}; "
                       "promote by hand with --promote if intended")
    if old != old:  # NaN
        return False, f"not compared: the champion's {METRIC} is not a number; promote by hand with --promote if intended"
    if new_value > old:
        return True, f"{METRIC} {new_value:.4f} beats the champion's {old:.4f} (version {champion.get('version')})"
    return False, f"{METRIC} {new_value:.4f} does not beat the champion's {old:.4f} (version {champion.get('version')})"


def _logged_model_of(run_record: dict[str, Any]) -> tuple[str, str, str]:
    """(run id, logged model id, its models:/ URI) of a training stage's run record."""
    run_id = run_record.get("run_id")
    if "model_id" not in run_record or "model_uri" not in run_record or run_id is None:
        if run_id is not None and "adapter_uri" in run_record:
            raise UserError(f"run {run_id} logged its adapter as plain files (an older `track`), not as an MLflow model; "
                            "run the training stage's `track --adapter` again, then register its new record")
        raise UserError(f"run {run_id} logged no adapter; register the record of a training stage")
    return run_id, run_record["model_id"], run_record["model_uri"]


def _new_version(client, model_name: str, description: str, run_id: str, model_id: str, source: str, tags: dict[str, str]):
    """A new version of ``model_name`` (created with ``description`` if new) for the logged model ``model_id``."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

    try:
        client.get_registered_model(model_name)
    except MlflowException:
        try:
            client.create_registered_model(model_name, description=description)
        except MlflowException as exc:  # a name MLflow refuses ('a/b', 'x@y'): before any version exists
            raise UserError(f"cannot register a model named {model_name!r}: {' '.join(str(exc).split())[:160]}; "
                            "choose another --model_name") from None
    version = client.create_model_version(model_name, source=source, run_id=run_id, tags=tags, model_id=model_id)
    # As mlflow.register_model does: the logged model lists its registered versions (the UI links them).
    logged = client.get_logged_model(model_id).tags.get(MLFLOW_MODEL_VERSIONS)
    listed = [*json.loads(logged or "[]"), {"name": model_name, "version": version.version}]
    client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps(listed)})
    return version


def repair_model_name(model_name: str) -> str:
    """Where the repair models that answered a version's repair turns are registered."""
    return f"{model_name}-repair"


def register(run_record: dict[str, Any], summary: Summary, model_name: str = DEFAULT_MODEL_NAME,
             base_model: str | None = None, promote: bool = False, repair_record: dict[str, Any] | None = None) -> dict[str, Any]:
    """Register the run's logged MLflow model as a new version and apply the champion rule; returns the decision.

    ``repair_record``: the run record of the repair model that answered the evaluation's repair
    turns (``eval --repair_adapter_path``). The numbers are that pair's, so the repair model is
    registered beside it (``<model_name>-repair``, the same version tags, ``champion`` moving
    with the pair's) and the version names it (tag ``repair_model``)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    run_id, model_id, source = _logged_model_of(run_record)
    repair = _logged_model_of(repair_record) if repair_record is not None else None
    dataset_hash = eval_dataset_hash(summary)
    for logged_id in (model_id, *([repair[1]] if repair else [])):
        check_logged_model(logged_id)  # before anything is created: an unloadable model never becomes champion
    client = MlflowClient()
    tags = {name: str(getattr(summary, name)) for name in TAGGED_NUMBERS}
    tags.update(eval_dataset_hash=dataset_hash, base_model=str(base_model), stage=run_record.get("stage", ""))
    earlier, earlier_repair = _registered_before(client, model_name, source, tags, repair)
    if earlier is not None and "decision" in earlier.tags:
        return _again(client, model_name, earlier, promote, summary, dataset_hash, source, run_id, model_id)
    if earlier is not None:  # a registration stopped before its decision: finish it, on its versions
        version, repair_version = earlier, earlier_repair
        if repair_version is not None:
            tags["repair_model"] = earlier.tags["repair_model"]
    else:
        version, repair_version = _new_versions(client, model_name, run_id, model_id, source, tags, repair, repair_record)
    try:
        current = client.get_model_version_by_alias(model_name, CHAMPION)
        champion = {**current.tags, "version": current.version}
    except MlflowException:
        champion = None
    if champion is not None and str(champion["version"]) == str(version.version):
        # A register stopped after moving the alias: the champion it replaced still carries the role.
        before = [v for v in client.search_model_versions(_name_filter(model_name))
                  if v.tags.get("role") == CHAMPION and str(v.version) != str(version.version)]
        former = max(before, key=lambda v: int(v.version)) if before else None
        champion = {**former.tags, "version": former.version} if former is not None else None
        won, why = decide(getattr(summary, METRIC), dataset_hash, champion)
        promoted, why = True, why if won and not promote else "promoted by hand (--promote)"
    else:
        promoted, why = (True, "promoted by hand (--promote)") if promote else decide(getattr(summary, METRIC), dataset_hash, champion)
    if promoted:
        _crown(client, model_name, version.version, repair_version.version if repair_version is not None else None, champion)
    else:
        client.set_model_version_tag(model_name, version.version, "role", "challenger")
    client.set_model_version_tag(model_name, version.version, "decision", why)
    return {"model_name": model_name, "version": int(version.version), "promoted": promoted, "reason": why,
            "champion_version": int(version.version) if promoted else (int(champion["version"]) if champion else None),
            METRIC: getattr(summary, METRIC), "eval_dataset_hash": dataset_hash, "source": source, "run_id": run_id,
            "model_id": model_id, "repair_model": tags.get("repair_model")}


def _new_versions(client, model_name: str, run_id: str, model_id: str, source: str, tags: dict[str, str],
                  repair: tuple[str, str, str] | None, repair_record: dict[str, Any] | None):
    """(version, repair version or None), created: the repair model's first, so the version names it."""
    repair_version = None
    if repair is not None:
        # one a register stopped before creating the version it pairs with: paired now, not made again
        unpaired = [v for v in client.search_model_versions(_name_filter(repair_model_name(model_name)))
                    if v.source == repair[2] and v.tags.get("repairs_for") == model_name
                    and all(v.tags.get(key) == value for key, value in tags.items() if key != "stage")]
        repair_version = max(unpaired, key=lambda v: int(v.version)) if unpaired else None
    if repair is not None and repair_version is None:
        repair_version = _new_version(
            client, repair_model_name(model_name), f"The repair models of {model_name}'s versions (text2sql-mlops): each answered "
            "the repair turns of the evaluation whose numbers its version carries", *repair,
            {**tags, "stage": repair_record.get("stage", ""), "repairs_for": model_name})
    if repair_version is not None:
        tags["repair_model"] = f"models:/{repair_model_name(model_name)}/{repair_version.version}"
    try:
        version = _new_version(client, model_name, "Text-to-SQL models trained by SFT then DPO (text2sql-mlops): MLflow "
                               "transformers models, a LoRA adapter on its local base model or a whole fine-tuned model",
                               run_id, model_id, source, tags)
    except BaseException:
        if repair_version is not None:  # no repair version without the version it pairs with
            client.delete_model_version(repair_model_name(model_name), repair_version.version)
        raise
    if repair_version is not None:
        client.set_model_version_tag(repair_model_name(model_name), repair_version.version, "repairs_for",
                                     f"models:/{model_name}/{version.version}")
    return version, repair_version


def _crown(client, model_name: str, version, repair_version, former: dict[str, Any] | None) -> None:
    """Move ``champion`` to ``version`` (and its repair model's alias to ``repair_version``); the
    ``former`` champion (its tags and version) keeps the role of former champion."""
    from mlflow.exceptions import MlflowException

    client.set_registered_model_alias(model_name, CHAMPION, version)
    client.set_model_version_tag(model_name, version, "role", CHAMPION)
    if former is not None:
        client.set_model_version_tag(model_name, former["version"], "role", "former_champion")
    if repair_version is not None:
        client.set_registered_model_alias(repair_model_name(model_name), CHAMPION, repair_version)
    elif former is not None and former.get("repair_model"):
        # The new champion answers its own repair turns: the old champion's repair model is no longer its pair.
        try:
            client.delete_registered_model_alias(repair_model_name(model_name), CHAMPION)
        except MlflowException:
            pass


def _version_of(uri: str) -> tuple[str, str]:
    """(name, version) of a ``models:/NAME/VERSION`` tag (``repair_model``)."""
    name, _, number = uri[len("models:/"):].rpartition("/")
    return name, number


def _name_filter(model_name: str) -> str:
    quote = '"' if "'" in model_name else "'"
    return f"name = {quote}{model_name}{quote}"


def _registered_before(client, model_name: str, source: str, tags: dict[str, str], repair: tuple[str, str, str] | None):
    """(version, its repair version) of ``model_name`` that already hold this model with this
    evaluation (same numbers, set and base model, the same repair model), or (None, None).
    Registering it again (a rerun of the pipeline's register stage, a command run twice, a
    register stopped midway) adds no version."""
    from mlflow.exceptions import MlflowException

    for version in sorted(client.search_model_versions(_name_filter(model_name)), key=lambda v: int(v.version)):
        if version.source != source or any(version.tags.get(key) != value for key, value in tags.items()):
            continue
        paired = version.tags.get("repair_model")
        if repair is None and paired is None:
            return version, None
        if repair is not None and paired is not None:
            try:
                paired_version = client.get_model_version(*_version_of(paired))
            except MlflowException:
                continue
            if paired_version.source == repair[2]:
                return version, paired_version
    return None, None


def _again(client, model_name: str, version, promote: bool, summary: Summary, dataset_hash: str, source: str,
           run_id: str, model_id: str) -> dict[str, Any]:
    """The decision for a registration made before: the version as it stands (``--promote``
    moves the alias to it, with its repair model, when it is not champion already)."""
    from mlflow.exceptions import MlflowException

    try:
        current = client.get_model_version_by_alias(model_name, CHAMPION)
        former = {**current.tags, "version": current.version}
    except MlflowException:
        former = None
    champion = str(former["version"]) if former is not None else None
    if promote and champion != str(version.version):
        paired = version.tags.get("repair_model")
        _crown(client, model_name, version.version, _version_of(paired)[1] if paired else None, former)
        client.set_model_version_tag(model_name, version.version, "decision", "promoted by hand (--promote)")
        champion = str(version.version)
    why = (f"already registered as version {version.version} with this evaluation; no new version "
           f"({'it is' if champion == str(version.version) else 'it is not'} the champion)")
    return {"model_name": model_name, "version": int(version.version), "promoted": champion == str(version.version),
            "reason": why, "champion_version": int(champion) if champion else None, METRIC: getattr(summary, METRIC),
            "eval_dataset_hash": dataset_hash, "source": source, "run_id": run_id, "model_id": model_id,
            "repair_model": version.tags.get("repair_model"), "registered_before": True}


def resolve_adapter(uri: str, cache_dir: str | Path = "models/registry") -> str:
    """A local adapter folder for ``uri``: a folder as is (checked); ``models:/NAME@ALIAS``,
    ``models:/NAME/VERSION``, ``models:/NAME/latest``, a logged model ``models:/m-ID`` or
    ``runs:/RUN/PATH`` downloaded once into ``cache_dir``.

    An alias or ``latest`` is resolved to its version number first, so the cache holds one
    folder per version (``NAME/vN``; a logged model: ``logged/m-ID``) and a moved alias or a
    new version never reuses another version's files. A download lands in a temporary folder
    next to the cache, is unpacked (an MLflow model: its adapter or whole model folder with
    the tokenizer's files, as ``train`` writes them) and checked (``check_adapter_folder``)
    before it is renamed into place; a cached folder that fails the check (an interrupted
    download from an older release) is fetched again. A failed lookup creates nothing.
    """
    if not uri.startswith(("models:/", "runs:/")):
        if "://" in uri:
            raise UserError(f"cannot fetch an adapter from {uri}; give an adapter folder, models:/NAME@ALIAS, "
                            "models:/NAME/VERSION or runs:/RUN_ID/PATH")
        check_adapter_folder(uri)
        return uri
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    open_store(reading=True)
    client = MlflowClient()
    try:
        reference = uri[len("models:/"):] if uri.startswith("models:/") else None
        if reference is not None and _is_logged_model_id(reference):
            client.get_logged_model(reference)  # an unknown model fails before anything is created
            dest = Path(cache_dir) / "logged" / reference
        elif reference is not None:
            name, version = _model_version(client, uri)
            uri, dest = f"models:/{name}/{version}", Path(cache_dir) / name / f"v{version}"
        else:
            run_path = uri[len("runs:/"):].strip("/")
            if not run_path:
                raise UserError(f"{uri}: expected runs:/RUN_ID/PATH (e.g. runs:/RUN_ID/model)")
            client.get_run(run_path.split("/")[0])  # an unknown run fails before anything is created
            dest = Path(cache_dir) / "runs" / run_path.replace("/", "_")
        if not _is_adapter(dest):
            _download_adapter(uri, dest)
    except MlflowException as exc:
        raise UserError(f"cannot fetch {uri} from {mlflow.get_tracking_uri()}: {str(exc).splitlines()[0]}") from None
    return str(dest)


def _is_logged_model_id(reference: str) -> bool:
    """``m-<hex>``: the id MLflow 3 gives a logged model (``models:/m-...``), not a registered name."""
    return reference.startswith("m-") and "/" not in reference and "@" not in reference


def _model_version(client, uri: str) -> tuple[str, str]:
    """(name, version number) of a ``models:/`` URI; aliases and ``latest`` resolved now."""
    reference = uri[len("models:/"):]
    name, at, alias = reference.partition("@")
    if at:
        if not name or not alias:
            raise UserError(f"{uri}: expected models:/NAME@ALIAS")
        return name, str(client.get_model_version_by_alias(name, alias).version)
    name, _, version = reference.rpartition("/")
    if not name or not version:
        raise UserError(f"{uri}: expected models:/NAME@ALIAS, models:/NAME/VERSION, models:/NAME/latest "
                        "or models:/m-ID (a logged model)")
    if version.lower() == "latest":
        versions = client.search_model_versions(f"name = '{name}'")
        if not versions:
            raise UserError(f"{uri}: registered model {name!r} has no versions; register one with `text2sql-mlops register`")
        return name, str(max(int(v.version) for v in versions))
    if not version.isdigit():
        raise UserError(f"{uri}: version {version!r} is not a number; give models:/{name}/N, models:/{name}/latest "
                        f"or models:/{name}@ALIAS (stages are not used)")
    return name, str(client.get_model_version(name, version).version)


def _is_adapter(folder: Path) -> bool:
    try:
        check_adapter_folder(folder)
    except UserError:
        return False
    return True


def _download_adapter(uri: str, dest: Path) -> None:
    """Download ``uri`` into a temporary folder next to ``dest``, unpack and check it, then swap it in.

    An interrupted download never looks like a cached adapter, and a failure leaves
    nothing behind, not even the cache folders this call created.
    """
    import mlflow

    created = [folder for folder in (dest.parent, *dest.parent.parents) if not folder.exists()]  # deepest first
    try:
        with atomic_folder(dest, signature=lambda _: True) as staged:  # the cache is ours: a bad vN may be replaced
            download = staged.parent / "download"
            download.mkdir()
            mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(download))
            if not _unpack_mlflow_model(download, staged, uri):
                # Plain files (an adapter/ artifact of an older run): the shallowest folder holding an
                # adapter config, or else a whole model's config.
                configs = sorted(download.rglob(ADAPTER_CONFIG), key=lambda path: len(path.parts)) or \
                    sorted((p for p in download.rglob(MODEL_CONFIG) if is_whole_model_folder(p.parent)), key=lambda path: len(path.parts))
                if not configs:
                    raise UserError(f"{uri} holds no MLflow model, no {ADAPTER_CONFIG} and no whole model; is it a registered model?")
                configs[0].parent.rename(staged)
            check_adapter_folder(staged, where=uri)
    except BaseException:
        for folder in created:
            try:
                folder.rmdir()
            except OSError:
                break
        raise


def _unpack_mlflow_model(download: Path, staged: Path, uri: str) -> bool:
    """Lay out the MLflow transformers model under ``download`` (its shallowest ``MLmodel``) at
    ``staged`` as ``train`` writes its output: the PEFT adapter folder, or the whole model
    folder, with the tokenizer's files beside it (the hf generator reads a whole model's
    tokenizer from its folder). False when ``download`` holds no such model."""
    import yaml

    for mlmodel in sorted(download.rglob(MLMODEL), key=lambda path: len(path.parts)):
        try:
            flavor = (yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}).get("flavors", {}).get(FLAVOR)
        except (OSError, ValueError, yaml.YAMLError, AttributeError):
            continue
        if not isinstance(flavor, dict):
            continue
        root = mlmodel.parent
        inner = flavor.get("peft_adaptor") or flavor.get("model_binary")
        if not inner or not (root / inner).is_dir():
            raise UserError(f"the MLflow model at {uri} holds no adapter and no model weights (saved by reference "
                            "to a Hub repository?); log the trained folder with `track --adapter`")
        (root / inner).rename(staged)
        tokenizer = root.joinpath(*TOKENIZER_DIR)
        for item in sorted(tokenizer.iterdir()) if tokenizer.is_dir() else ():
            if not (staged / item.name).exists():
                item.rename(staged / item.name)
        return True
    return False


def make_parser(prog: str | None = "text2sql-mlops register") -> ArgParser:
    parser = ArgParser(prog=prog, description="Register a trained adapter in the MLflow registry and move the "
                       f"'{CHAMPION}' alias when its strict final EX beats the champion's on the same evaluation set.")
    flag(parser, "run", required=True, help="the training stage's run record (mlflow_run.json written by `track --record`)")
    flag(parser, "eval", required=True, help="summary.json of that adapter's evaluation")
    flag(parser, "model_name", default=DEFAULT_MODEL_NAME, help="registered model name (default: %(default)s)")
    flag(parser, "base_model", help="the base model the adapter needs (a version tag)")
    flag(parser, "repair_run", help="the run record of the repair model that answered the evaluation's repair turns "
                                   "(eval --repair_adapter_path): registered beside it as <model_name>-repair")
    flag(parser, "promote", action="store_true", help="make this version the champion without comparing")
    flag(parser, "out", type=output_file, help="write the decision as JSON here")
    return parser


def check_measured(run_record: dict[str, Any], summary: Summary, run: str, evaluation: str) -> None:
    """Refuse an evaluation that did not measure the run's model: a version registered with it
    would carry, and be promoted on, another model's numbers (an eval of the mock generator
    made any adapter champion). Known from the weights' digest both record (`track --adapter`;
    `eval`: of its adapter, or of the model when that is a fully fine-tuned one); a record or
    evaluation from before the digests is checked by the folder's path."""
    trained, logged = run_record.get("adapter_sha256"), run_record.get("adapter_path")
    if not logged:
        return  # an older record: nothing to compare with
    config = summary.config
    digests = [config[key] for key in ("adapter_sha256", "model_sha256") if config.get(key)]
    paths = [config[key] for key in ("adapter_path", "model_path") if config.get(key)]
    if trained and digests:
        same = trained in digests
    else:
        same = any(Path(path).resolve() == Path(logged).resolve() for path in paths)
    if same:
        return
    measured = config.get("adapter_path") or config.get("model_path")
    if not measured:
        raise UserError(f"{evaluation} measured no model (generator {config.get('generator')!r}), so not the one {run} "
                        "logged; give the summary.json of an eval of that model")
    raise UserError(f"{evaluation} measured {measured}, not the model {run} logged ({logged}); "
                    "give the summary.json of an eval of that model")


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops register") -> int:
    args = make_parser(prog).parse_args(argv)
    if args.out:
        check_not_an_input(args.out, (args.run, args.eval, *([args.repair_run] if args.repair_run else [])), "--out")
    try:
        run_record = json.loads(Path(args.run).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read {args.run}: {exc}") from None
    summary = read_summary(args.eval)
    check_measured(run_record, summary, args.run, args.eval)
    repaired_by = summary.config.get("repair_adapter_path")
    if repaired_by and not args.repair_run:
        raise UserError(f"{args.eval}: a repair model ({repaired_by}) answered this evaluation's repair turns, so its numbers "
                        "are the pair's; give that training's run record with --repair_run")
    if args.repair_run and not repaired_by:
        raise UserError(f"--repair_run {args.repair_run}: the evaluation {args.eval} had no repair model "
                        "(eval --repair_adapter_path); drop --repair_run or register the evaluation that used it")
    repair_record = None
    if args.repair_run:
        try:
            repair_record = json.loads(Path(args.repair_run).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"cannot read {args.repair_run}: {exc}") from None
        trained, evaluated = repair_record.get("adapter_sha256"), summary.config.get("repair_adapter_sha256")
        if trained and evaluated and trained != evaluated:
            raise UserError(f"{args.eval}: its repair turns were answered by other weights than those {args.repair_run} "
                            f"logged ({repair_record.get('adapter_path')}); give the evaluation that used that repair model")
    open_store()
    with store_lock(tracking_uri()):  # read champion, compare, move the alias: one process at a time
        decision = register(run_record, summary, args.model_name, args.base_model, args.promote, repair_record)
    decision["config"] = {"run": args.run, "eval": args.eval, "model_name": args.model_name, "base_model": args.base_model,
                          "promote": args.promote, **({"repair_run": args.repair_run} if args.repair_run else {})}
    if args.out:
        write_json(args.out, decision)
    print(json.dumps(decision))
    print(f"register: {args.model_name} v{decision['version']}: {'champion' if decision['promoted'] else 'challenger'} — {decision['reason']}",
          file=sys.stderr)
    return 0
