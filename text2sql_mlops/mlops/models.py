"""A trained folder as an MLflow model of the ``transformers`` flavor: loaded, checked, logged.

``track --adapter`` logs a training stage's output with ``log_trained_model``: a LoRA
adapter as the PEFT adapter plus the tokenizer, its base model recorded by local path,
never copied; a whole fine-tuned model whole. ``load_trained_model`` loads it first, so
whatever can fail fails before a run exists. ``register`` (``registry.py``) then makes the
logged model a version of the registered model.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..generation.adapters import (
    ADAPTER_CONFIG,
    MODEL_CONFIG,
    base_model_of,
    check_adapter_folder,
    is_whole_model_folder,
)

TASK = "text-generation"


@dataclass
class TrainedModel:
    """A training stage's output loaded for ``log_trained_model``: the pipeline components
    MLflow saves and, for a LoRA adapter, its base model's local folder (None: a whole model)."""

    folder: Path
    components: dict[str, Any]
    base_model: Path | None


def local_base_model(adapter_dir: str | Path) -> Path:
    """The absolute local folder of the base model a LoRA adapter names (its ``adapter_config.json``)."""
    base = base_model_of(str(adapter_dir))
    if not base:
        raise UserError(f"the adapter at {adapter_dir} does not name its base model (base_model_name_or_path in {ADAPTER_CONFIG})")
    path = Path(base).expanduser()
    if not (path / MODEL_CONFIG).is_file():
        raise UserError(f"the adapter at {adapter_dir} was trained on {base!r}, which is not a model folder here "
                        f"({MODEL_CONFIG} missing); log it from the project folder that holds its base model "
                        "(`text2sql-mlops model prepare --out PATH`)")
    return path.resolve()


def load_trained_model(folder: str | Path) -> TrainedModel:
    """Load a trained folder (a LoRA adapter on its base model, or a whole model) for logging.

    Whatever can fail fails here, as a ``UserError``, before a run exists: the folder's
    files, the base model's folder, the weights, an MLflow that cannot record a local base.
    """
    import mlflow.transformers

    folder = check_adapter_folder(folder).resolve()
    whole = is_whole_model_folder(folder)
    base = None if whole else local_base_model(folder)
    if base is not None and "base_model_path" not in inspect.signature(mlflow.transformers.log_model).parameters:
        raise UserError(f"MLflow {mlflow.__version__} cannot record a LoRA adapter's base model by local path "
                        "(log_model's base_model_path); install the version constraints.txt pins")
    # The tokenizer `train` saved beside its output (the chat template it trained with), else the base model's.
    tokenizer_dir = folder if whole or (folder / "tokenizer_config.json").is_file() else base
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        with _no_transformers_progress_bars():
            # Absolute paths on purpose: MLflow takes a model's name_or_path for a Hugging Face Hub
            # repository when it looks like one ("models/base") and asks the Hub for its model card
            # and license; an absolute path is never a repository id, so nothing goes online.
            model = AutoModelForCausalLM.from_pretrained(folder if whole else base, dtype="auto")
            if base is not None:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, str(folder))
            tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    except Exception as exc:  # any failure to load means the trained output is unusable
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0]}" if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot load the trained model at {folder} ({why}); train it again") from None
    return TrainedModel(folder, {"model": model, "tokenizer": tokenizer}, base)


def log_trained_model(trained: TrainedModel, name: str, tags: dict[str, str] | None = None):
    """Log ``trained`` to the active run as an MLflow model of the transformers flavor.

    Returns MLflow's ``ModelInfo``: ``model_uri`` (``models:/m-...``) and ``model_id`` are
    what ``register`` registers. A LoRA adapter is saved as the PEFT adapter (``peft/``) and
    the tokenizer (``components/tokenizer/``); its base model is recorded by local path
    (``base_model_path``, MLmodel's ``local_base_model_path``), never copied. Without that
    path MLflow would record the base model as a Hugging Face Hub repository with its commit
    hash, which a local folder has not, and then save the base weights after all;
    ``mlflow.transformers.load_model`` loads the base from the recorded path, offline (where
    the base lives elsewhere, ``load_model(uri, base_model_path=...)`` points at it). A whole
    fine-tuned model is saved with its weights (``model/``) and a model card of ours, so MLflow
    fetches none from the Hub. The requirements are the installed versions, given here:
    MLflow's defaults want torchvision, which this project does not install.
    """
    import mlflow.transformers

    if trained.base_model is not None:
        extra: dict[str, Any] = {"base_model_path": str(trained.base_model)}
    else:
        from huggingface_hub import ModelCard

        extra = {"model_card": ModelCard(f"---\nlibrary_name: transformers\npipeline_tag: {TASK}\n---\n# {name}\n\n"
                                         f"A text-to-SQL model fully fine-tuned by text2sql-mlops ({trained.folder.name}).\n")}
    packages = ("torch", "transformers", *(("peft",) if trained.base_model is not None else ()))
    with _no_transformers_progress_bars():
        return mlflow.transformers.log_model(trained.components, name=name, task=TASK, pip_requirements=_pinned(packages),
                                             tags=tags, **extra)


@contextmanager
def _no_transformers_progress_bars() -> Iterator[None]:
    """transformers draws a bar for every load and save, and peft calls deprecated transformers
    APIs (FutureWarning): stage logs keep one line per event."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def _pinned(packages: Iterable[str]) -> list[str]:
    """``name==version`` of the installed packages, without a local label (torch's ``+cpu``)."""
    pins = []
    for name in packages:
        try:
            pins.append(f"{name}=={version(name).split('+')[0]}")
        except PackageNotFoundError:
            continue
    return pins
