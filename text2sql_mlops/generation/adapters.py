"""Trained folders a generator loads: a LoRA adapter on its base model, or a whole fine-tuned model.

A LoRA adapter is ``adapter_config.json`` (naming its base model) plus the weights PEFT
saves; a whole model (``train --full_finetune``) is ``config.json`` plus weights and is used
in place of the base model. ``check_adapter_files`` is the one check of either, before a
folder is evaluated, continued by ``train dpo``, logged, registered or cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..core.errors import UserError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")  # what PEFT's save_pretrained writes
MODEL_CONFIG = "config.json"  # a whole model folder (`train --full_finetune`) instead of an adapter


def is_whole_model(files: Iterable[str]) -> bool:
    """A trained output that is a whole model (config + weights), not a LoRA adapter."""
    names = set(files)
    return (MODEL_CONFIG in names and ADAPTER_CONFIG not in names
            and any(name.endswith(".safetensors") or name == "pytorch_model.bin" for name in names))


def is_whole_model_folder(path: str | Path) -> bool:
    folder = Path(path)
    return folder.is_dir() and is_whole_model(entry.name for entry in folder.iterdir() if entry.is_file())


WHERE_ADAPTERS_COME_FROM = "give the folder a training stage saved, or models:/NAME@ALIAS"


def check_adapter_files(where: str, files: Iterable[str], config_text: str | None, hint: str = WHERE_ADAPTERS_COME_FROM) -> None:
    """The one check of a LoRA adapter before it is logged, registered or used: its
    ``adapter_config.json`` (``config_text``; None when absent) holds a JSON object and
    ``files`` (the names in its folder) include the weights. A whole model folder (a fully
    fine-tuned model: config.json and weights) passes too: it is used in place of the base.
    ``hint`` ends the error of a folder without an adapter: what the caller accepts instead."""
    if config_text is None and is_whole_model(files):
        return
    if config_text is None:
        raise UserError(f"no LoRA adapter at {where} ({ADAPTER_CONFIG} missing); {hint}")
    try:
        config = json.loads(config_text)
    except ValueError as exc:
        raise UserError(f"the LoRA adapter at {where} is broken: {ADAPTER_CONFIG} is not valid JSON ({exc}); "
                        "save or train the adapter again") from None
    if not isinstance(config, dict):
        raise UserError(f"the LoRA adapter at {where} is broken: {ADAPTER_CONFIG} must hold a JSON object")
    if not set(files) & set(ADAPTER_WEIGHTS):
        raise UserError(f"the LoRA adapter at {where} has no weights ({' or '.join(ADAPTER_WEIGHTS)}); "
                        "was it saved by an interrupted training? train it again")


def check_adapter_folder(path: str | Path, where: str | None = None, hint: str = WHERE_ADAPTERS_COME_FROM) -> Path:
    """``path`` as a loadable LoRA adapter folder (``check_adapter_files``); ``where`` names it in errors."""
    folder = Path(path)
    config = folder / ADAPTER_CONFIG
    try:
        text = config.read_text(encoding="utf-8") if config.is_file() else None
    except (OSError, ValueError) as exc:  # unreadable, or not UTF-8
        raise UserError(f"cannot read {config}: {exc}") from None
    files = [entry.name for entry in folder.iterdir() if entry.is_file()] if folder.is_dir() else []
    check_adapter_files(where or str(path), files, text, hint)
    return folder


def check_model_folder(path: str | Path) -> Path:
    """``path`` as a Hugging Face model folder (``config.json``), or one ``UserError`` that says
    what it is instead: nothing (prepare one there), a LoRA adapter, or some other folder."""
    folder = Path(path)
    if (folder / MODEL_CONFIG).is_file():
        return folder
    if (folder / ADAPTER_CONFIG).is_file():
        raise UserError(f"{folder} is a LoRA adapter, not a model folder; give its base model here "
                        f"({base_model_of(str(folder)) or 'named in its adapter_config.json'}) and the adapter as the adapter")
    if folder.is_dir() and any(folder.iterdir()):
        raise UserError(f"{folder} is not a model folder (it has no {MODEL_CONFIG}); give a Hugging Face model folder, "
                        "e.g. the --out of `text2sql-mlops model prepare`")
    raise UserError(f"model folder not found: {folder} has no {MODEL_CONFIG}; run `text2sql-mlops model prepare --out {folder}` "
                    "or pass another model folder")


def base_model_of(adapter_dir: str) -> str:
    """The base model an adapter was trained on (adapter_config.json)."""
    config = json.loads(Path(adapter_dir, "adapter_config.json").read_text())
    return str(config.get("base_model_name_or_path") or "")


@contextlib.contextmanager
def loading(what: str, path: str | Path, base: str | Path | None = None,
            hint: str = "is the folder complete? save or train it again, or give another folder") -> Iterator[None]:
    """Turn a failure to load weights (a truncated or corrupt file, a folder without weights, a
    LoRA adapter on a base of other shapes) into one ``UserError`` line naming ``what`` was
    being loaded from ``path``; for a LoRA adapter put on ``base``, the base it was trained on."""
    try:
        yield
    except UserError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        reason = " ".join(str(exc).split())
        if base is not None and "size mismatch" in reason:
            named = base_model_of(str(path)) if (Path(path) / ADAPTER_CONFIG).is_file() else ""
            raise UserError(f"the LoRA adapter at {path} does not fit the base model {base} (its weights have other shapes); "
                            + (f"it was trained on {named}: pass that base model" if named else "pass the base model it was trained on")) from None
        raise UserError(f"cannot load {what} from {path}: {reason[:200].rstrip('.')}; {hint}") from None
    except Exception as exc:  # safetensors' SafetensorError derives from Exception alone
        if type(exc).__name__ != "SafetensorError":
            raise
        raise UserError(f"cannot load {what} from {path}: its weights file is damaged ({' '.join(str(exc).split())[:120]}); "
                        f"{hint}") from None


_WEIGHT_FILES = ("*.safetensors", "*.bin", "adapter_config.json", "config.json")


def weights_sha256(folder: str) -> str | None:
    """A digest of a trained folder's weights and configuration (None when it is not a folder):
    what identifies an adapter, whatever path it sits at and whenever it was copied."""
    path = Path(folder)
    if not path.is_dir():
        return None
    digest = hashlib.sha256()
    for file in sorted({file for pattern in _WEIGHT_FILES for file in path.glob(pattern) if file.is_file()}):
        digest.update(file.name.encode() + b"\0")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
