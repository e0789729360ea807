"""``text2sql-mlops register``: the MLflow registry promotes the best SFT+DPO adapter.

    text2sql-mlops register --run outputs/sft_dpo/mlflow_run.json \\
        --eval outputs/eval/sft_dpo/summary.json --out outputs/register/decision.json

Every call adds a version of the registered model (``text2sql-sft-dpo`` by default)
whose source is the training run's ``adapter/`` artifact, tagged with its evaluation
numbers, the base model and the hash of the evaluation examples. The ``champion``
alias moves to the new version only when its strict final EX beats the champion's
on the SAME evaluation set (same hash); otherwise the new version is tagged
``challenger`` and the decision says why. Numbers from different evaluation sets
are never compared: the new version stays a challenger until promoted by hand
(``--promote``). Aliases, not stages: MLflow 3 deprecates stages.

``resolve_adapter`` is the other direction: ``models:/NAME@ALIAS`` (or
``models:/NAME/VERSION``, or ``runs:/...``) is downloaded to a local folder that
``eval`` and the ``hf`` generator load like any adapter path.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .cliutil import ArgParser, flag
from .errors import UserError

DEFAULT_MODEL_NAME = "text2sql-sft-dpo"
CHAMPION = "champion"
METRIC = "final_ex_strict"  # promotion compares the gold-free number only
TAGGED_NUMBERS = ("first_turn_ex", "final_ex_strict", "final_ex_oracle", "executable_rate", "examples")


def eval_dataset_hash(summary: dict[str, Any]) -> str:
    """What identifies an evaluation set: the hash of its example ids (ids hash db, question
    and gold SQL), with the count. Two runs on the same examples share it whatever the paths."""
    config = summary.get("config", {})
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
    old = float(champion[METRIC])
    if new_value > old:
        return True, f"{METRIC} {new_value:.4f} beats the champion's {old:.4f} (version {champion.get('version')})"
    return False, f"{METRIC} {new_value:.4f} does not beat the champion's {old:.4f} (version {champion.get('version')})"


def register(run_record: dict[str, Any], summary: dict[str, Any], model_name: str = DEFAULT_MODEL_NAME,
             base_model: str | None = None, promote: bool = False) -> dict[str, Any]:
    """Register the run's adapter as a new version and apply the champion rule; returns the decision."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if "adapter_uri" not in run_record:
        raise UserError(f"run {run_record.get('run_id')} logged no adapter; register the record of a training stage")
    client = MlflowClient()
    try:
        client.get_registered_model(model_name)
    except MlflowException:
        client.create_registered_model(model_name, description="LoRA adapters trained by SFT then DPO (text2sql-mlops)")
    dataset_hash = eval_dataset_hash(summary)
    tags = {name: str(summary.get(name)) for name in TAGGED_NUMBERS}
    tags.update(eval_dataset_hash=dataset_hash, base_model=str(base_model), stage=run_record.get("stage", ""))
    source = f"{run_record['artifact_uri'].rstrip('/')}/adapter"
    version = client.create_model_version(model_name, source=source, run_id=run_record["run_id"], tags=tags)
    try:
        current = client.get_model_version_by_alias(model_name, CHAMPION)
        champion = {**current.tags, "version": current.version}
    except MlflowException:
        champion = None
    promoted, why = (True, "promoted by hand (--promote)") if promote else decide(summary.get(METRIC), dataset_hash, champion)
    if promoted:
        client.set_registered_model_alias(model_name, CHAMPION, version.version)
        client.set_model_version_tag(model_name, version.version, "role", CHAMPION)
        if champion is not None:
            client.set_model_version_tag(model_name, champion["version"], "role", "former_champion")
    else:
        client.set_model_version_tag(model_name, version.version, "role", "challenger")
    client.set_model_version_tag(model_name, version.version, "decision", why)
    return {"model_name": model_name, "version": int(version.version), "promoted": promoted, "reason": why,
            "champion_version": int(version.version) if promoted else (int(champion["version"]) if champion else None),
            METRIC: summary.get(METRIC), "eval_dataset_hash": dataset_hash, "source": source, "run_id": run_record["run_id"]}


def resolve_adapter(uri: str, cache_dir: str | Path = "models/registry") -> str:
    """A local adapter folder for ``uri``: a folder as is; ``models:/NAME@ALIAS``,
    ``models:/NAME/VERSION`` or ``runs:/RUN/PATH`` downloaded once into ``cache_dir``.

    An alias is resolved to its version first, so the cache holds one folder per
    version and a moved alias never reuses another version's files.
    """
    if not uri.startswith(("models:/", "runs:/")) and "://" not in uri:
        if not Path(uri, "adapter_config.json").is_file():
            raise UserError(f"no LoRA adapter at {uri} (adapter_config.json missing); give an adapter folder or models:/NAME@ALIAS")
        return uri
    from .tracking import quiet_mlflow, tracking_uri

    quiet_mlflow()
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri())
    try:
        if uri.startswith("models:/"):
            name, _, alias = uri[len("models:/"):].partition("@")
            if alias:
                version = MlflowClient().get_model_version_by_alias(name, alias).version
            else:
                name, _, version = name.rpartition("/")
            uri, dest = f"models:/{name}/{version}", Path(cache_dir) / name / f"v{version}"
        else:
            dest = Path(cache_dir) / "runs" / uri[len("runs:/"):].strip("/").replace("/", "_")
        if not next(dest.rglob("adapter_config.json"), None):
            mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest))
    except MlflowException as exc:
        raise UserError(f"cannot fetch {uri} from {mlflow.get_tracking_uri()}: {str(exc).splitlines()[0]}") from None
    found = next(dest.rglob("adapter_config.json"), None)
    if found is None:
        raise UserError(f"{uri} holds no adapter_config.json; is it a registered adapter?")
    return str(found.parent)


def base_model_of(adapter_dir: str) -> str:
    """The base model an adapter was trained on (adapter_config.json)."""
    config = json.loads(Path(adapter_dir, "adapter_config.json").read_text())
    return str(config.get("base_model_name_or_path") or "")


def make_parser(prog: str | None = "text2sql-mlops register") -> ArgParser:
    parser = ArgParser(prog=prog, description="Register a trained adapter in the MLflow registry and move the "
                       f"'{CHAMPION}' alias when its strict final EX beats the champion's on the same evaluation set.")
    flag(parser, "run", required=True, help="the training stage's run record (mlflow_run.json written by `track --record`)")
    flag(parser, "eval", required=True, help="summary.json of that adapter's evaluation")
    flag(parser, "model_name", default=DEFAULT_MODEL_NAME, help="registered model name (default: %(default)s)")
    flag(parser, "base_model", help="the base model the adapter needs (a version tag)")
    flag(parser, "promote", action="store_true", help="make this version the champion without comparing")
    flag(parser, "out", help="write the decision as JSON here")
    return parser


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops register") -> int:
    from .fileio import write_json
    from .tracking import quiet_mlflow, tracking_uri

    args = make_parser(prog).parse_args(argv)
    records = []
    for path in (args.run, args.eval):
        try:
            records.append(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"cannot read {path}: {exc}") from None
    run_record, summary = records
    quiet_mlflow()
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    decision = register(run_record, summary, args.model_name, args.base_model, args.promote)
    if args.out:
        write_json(args.out, decision)
    print(json.dumps(decision))
    print(f"register: {args.model_name} v{decision['version']}: {'champion' if decision['promoted'] else 'challenger'} — {decision['reason']}",
          file=sys.stderr)
    return 0
