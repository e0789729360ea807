"""Training reads a batch's shared prompt prefix once (``training/prefixes.py``).

The shared forward must be the plain forward, output for output and gradient for
gradient, on a real (tiny, random) Llama with TRL's fused LM head; batches of one
database's questions must share their schema; and ``train sft --group_by_prefix``
must train through it.
"""

from __future__ import annotations

import copy
import json

import pytest

from text2sql_mlops.cli import main as cli
from text2sql_mlops.training import prefixes
from text2sql_mlops.training.prefixes import MIN_PREFIX, prefix_batches, share_prompt_prefixes, shared_prefixes

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def padded_batch(rows: list[tuple[list[int], list[int]]], pad: int):
    """Right-padded input_ids, attention_mask and labels (-100 on prompt and pads) of (prompt, answer) rows."""
    import torch

    width = max(len(prompt) + len(answer) for prompt, answer in rows)
    ids = torch.full((len(rows), width), pad)
    mask, labels = torch.zeros_like(ids), torch.full_like(ids, -100)
    for row, (prompt, answer) in enumerate(rows):
        length = len(prompt) + len(answer)
        ids[row, :length] = torch.tensor(prompt + answer)
        mask[row, :length] = 1
        labels[row, len(prompt) : length] = torch.tensor(answer)
    return ids, mask, labels


def schema_rows(seed: int, vocab: int):
    """Five prompts that share a 40-token schema, then their own question and answer, and one
    prompt that shares nothing."""
    import torch

    generator = torch.Generator().manual_seed(seed)

    def tokens(count: int) -> list[int]:
        return torch.randint(4, vocab, (count,), generator=generator).tolist()

    schema = tokens(40)
    rows = [(schema + tokens(5 + 3 * i), tokens(4 + i)) for i in range(5)]
    return [*rows, (tokens(30), tokens(3))]


@pytest.mark.parametrize("lora", [False, True])
def test_shared_prefix_forward_gives_the_plain_forwards_outputs_and_gradients(tiny_llama, lora):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    plain = AutoModelForCausalLM.from_pretrained(tiny_llama)
    shared = copy.deepcopy(plain)
    models = []
    for model in (plain, shared):
        add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
        if model is shared:
            share_prompt_prefixes(model)
        if lora:  # patched before PEFT wraps it, as TRL does; dropout off so that both see the same
            model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", init_lora_weights=False))
        models.append(model.train())
    torch.manual_seed(0)
    if lora:  # the same random adapter in both
        models[1].load_state_dict(models[0].state_dict())

    ids, mask, labels = padded_batch(schema_rows(1, plain.config.vocab_size), pad=3)
    groups = prefixes._groups(ids, mask, labels)
    assert [(sorted(rows), length) for rows, length in groups] == [([0, 1, 2, 3, 4], 40), ([5], 0)]  # the schema's rows; one alone
    outputs, grads = [], []
    for model in models:
        output = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True, use_cache=False)
        output.loss.backward()
        outputs.append(output)
        grads.append({name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad})
    for name in ("log_probs", "entropy", "is_top1", "label_mask"):
        assert getattr(outputs[1], name).shape == getattr(outputs[0], name).shape == (6, ids.shape[1] - 1)
        assert torch.allclose(getattr(outputs[1], name).float(), getattr(outputs[0], name).float(), atol=1e-5), name
    assert torch.allclose(outputs[1].loss, outputs[0].loss, atol=1e-6)
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name, grad in grads[0].items():
        assert torch.allclose(grads[1][name], grad, atol=1e-6), name


def test_a_left_padded_batch_or_one_without_shared_prefixes_runs_the_plain_forward():
    rows = schema_rows(2, 200)
    ids, mask, labels = padded_batch(rows, pad=3)
    assert prefixes._groups(ids, mask, labels) is not None
    assert prefixes._groups(ids.flip(1), mask.flip(1), labels.flip(1)) is None  # left padding
    assert prefixes._groups(*padded_batch(rows[-2:], pad=3)) is None  # two rows that share no prefix


def test_shared_prefixes_stop_before_each_rows_first_scored_token():
    schema = list(range(100, 140))
    rows = [schema + [1, 2, 3, 9], schema + [1, 2, 3, 8], schema + [5, 9], list(range(7, 60))]
    # rows 0 and 1 share 43 tokens, but row 0's first label is at 42: position 41 must stay in its own part
    groups = shared_prefixes(rows, first_scored=[42, 43, 41, 50])
    assert groups == [([0, 1, 2], 40), ([3], 0)]
    assert shared_prefixes(rows[:2], first_scored=[42, 43]) == [([0, 1], 41)]
    # a shared prefix shorter than MIN_PREFIX is not worth a second call
    short = [[1] * (MIN_PREFIX - 1) + [2, 3], [1] * (MIN_PREFIX - 1) + [4, 5]]
    assert shared_prefixes(short, first_scored=[MIN_PREFIX + 1, MIN_PREFIX + 1]) == [([0, 1], 0)]


def test_prefix_batches_put_one_schemas_questions_together():
    schemas = {name: [100 + i] * 30 for i, name in enumerate("abc")}
    prompts, database = [], []
    for name, count in (("a", 9), ("b", 8), ("c", 3)):
        for question in range(count):
            prompts.append(schemas[name] + [question, question + 1])
            database.append(name)
    order = prefix_batches(prompts, batch_size=4, seed=0)
    assert sorted(order) == list(range(len(prompts)))  # every row once
    batches = [order[start : start + 4] for start in range(0, len(order), 4)]
    same = [batch for batch in batches if len({database[i] for i in batch}) == 1]
    assert len(same) == 4  # a: 2 batches, b: 2 batches; the leftovers (1 of a, 3 of c) share one
    assert order == prefix_batches(prompts, batch_size=4, seed=0)
    assert order != prefix_batches(prompts, batch_size=4, seed=1)


@pytest.mark.slow
def test_sft_group_by_prefix_trains_on_one_schema_per_batch(tiny_llama, demo_dataset, tmp_path, monkeypatch, capsys):
    seen = []
    groups = prefixes._groups

    def recording(input_ids, mask, labels):
        found = groups(input_ids, mask, labels)
        seen.append(found)
        return found

    monkeypatch.setattr(prefixes, "_groups", recording)
    base = ["train", "sft", "--model", str(tiny_llama), "--dataset", str(demo_dataset), "--schema_format", "compact",
            "--max_length", "4096", "--per_device_train_batch_size", "4", "--max_steps", "2", "--full_finetune",
            "--learning_rate", "1e-3", "--logging_steps", "1"]
    assert cli([*base, "--out", str(tmp_path / "sft"), "--group_by_prefix"]) == 0
    # every batch of the two steps is one database's questions: one group, its schema read once
    assert len(seen) == 2 and all(found is not None and len(found) == 1 and found[0][1] > 100 for found in seen)
    summary = json.loads((tmp_path / "sft" / "training_summary.json").read_text())
    assert summary["settings"]["group_by_prefix"] is True and summary["result"]["steps"] == 2
    assert all(row["loss"] > 0 for row in map(json.loads, (tmp_path / "sft" / "metrics.jsonl").read_text().splitlines()))

    assert cli([*base, "--out", str(tmp_path / "both"), "--group_by_prefix", "--group_by_length"]) == 2
    assert "--group_by_prefix and --group_by_length each choose the batches; give one of them" in capsys.readouterr().err
    assert not (tmp_path / "both").exists()


def test_gradient_checkpointing_runs_the_plain_forward(tiny_llama, monkeypatch):
    """A checkpointed layer is recomputed in backward and would append to the shared cache twice."""
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    add_fused_lm_head(model)
    share_prompt_prefixes(model)
    model.gradient_checkpointing_enable()
    model.train()
    monkeypatch.setattr(prefixes, "_groups", lambda *args: pytest.fail("prefixes shared under gradient checkpointing"))
    ids, mask, labels = padded_batch(schema_rows(3, model.config.vocab_size), pad=3)
    output = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True, use_cache=False)
    output.loss.backward()
    assert output.log_probs.shape == (6, ids.shape[1] - 1)
