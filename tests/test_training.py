"""``train sft`` and ``train dpo`` on a tiny random Llama (``tiny_model.py``): a few steps each.

Checks: the SFT targets; the prompt and answer tokens the trainers see equal the hf
generator's; the output folder (adapter, summary, metrics) and that the adapter
generates through the hf generator; DPO from the base model and from an SFT adapter,
whose frozen copy is the reference policy; the eval guard and the clean errors.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from built_records import candidate, trajectory
from built_records import turn as built_turn

from text2sql_mlops.cli import main as cli
from text2sql_mlops.core.records import Pair, Trajectory, Turn, read_trajectories
from text2sql_mlops.generation import GenerationRequest, SamplingParams, create_generator
from text2sql_mlops.prompts import build_messages, format_answer

SCHEMA = "CREATE TABLE singer (singer_id INTEGER, name TEXT, country TEXT, age INTEGER)"
TINY = ["--max_length", "512", "--lora_r", "4", "--lora_alpha", "8", "--per_device_train_batch_size", "2", "--logging_steps", "1"]


def turn(number: int, question: str, candidates: list[tuple[str, bool]], history=()) -> Turn:
    return built_turn(number, [candidate(sql, correct) for sql, correct in candidates],
                      messages=build_messages(SCHEMA, question, list(history)))


def example(index: int, question: str, gold: str, turns: list[Turn], gold_error=None) -> Trajectory:
    return trajectory(*turns, index=index, id=f"ex{index}", db_id="singer_db", question=question, gold=gold, gold_error=gold_error)


Q_COUNT, Q_NAMES, Q_BAD, Q_OLDEST = "How many singers are there?", "List singer names.", "Bad gold?", "Age of the oldest singer?"
TRAJECTORIES = [
    # the correct answer equals gold: one target
    example(0, Q_COUNT, "SELECT count(*) FROM singer", [turn(1, Q_COUNT, [("SELECT count(*) FROM singer", True)])]),
    # a failed first turn repaired at turn 2: the repair prompt's answer, and gold on the first-turn prompt
    example(1, Q_NAMES, "SELECT name FROM singer", [
        turn(1, Q_NAMES, [("SELECT nam FROM singer", False)]),
        turn(2, Q_NAMES, [("SELECT name FROM singer;", True)], history=[("SELECT nam FROM singer", "Error: no such column: nam")]),
    ]),
    # gold that does not run: no target
    example(2, Q_BAD, "SELECT x FROM nowhere", [turn(1, Q_BAD, [("SELECT 1", False)])], gold_error="no such table: nowhere"),
    # two different correct samples (and gold equal to the first)
    example(3, Q_OLDEST, "SELECT max(age) FROM singer", [
        turn(1, Q_OLDEST, [("SELECT max(age) FROM singer", True), ("SELECT age FROM singer ORDER BY age DESC LIMIT 1", True)]),
    ]),
]


def pair(prompt_of: Trajectory, chosen: str, rejected: str) -> Pair:
    meta = {"example_id": prompt_of.id, "db_id": prompt_of.db_id, "question": prompt_of.question,
            "pair_type": "first_turn_correct_sample_vs_failed_sample", "source": "natural", "gold_fallback": False,
            "gold_sql": prompt_of.gold, "chosen_sql": chosen, "rejected_sql": rejected, "chosen_reward": 1.0, "rejected_reward": 0.0,
            "reward_margin": 1.0, "turn": 1, "chosen_executable": True, "rejected_executable": True, "rejected_error_type": "wrong_result"}
    return Pair(id=f"p-{chosen}", prompt=prompt_of.first.messages, chosen=format_answer(chosen), rejected=format_answer(rejected), meta=meta)


PAIRS = [
    pair(TRAJECTORIES[1], "SELECT name FROM singer", "SELECT nam FROM singer"),  # chosen is a known SFT target
    pair(TRAJECTORIES[0], "SELECT count(singer_id) FROM singer", "SELECT count(*) FROM concert"),
    pair(TRAJECTORIES[3], "SELECT max(age) FROM singer", "SELECT min(age) FROM singer"),
    pair(TRAJECTORIES[2], "SELECT 1", "SELECT 2"),
]


def write_jsonl(path: Path, records: list[Trajectory | Pair]) -> Path:
    path.write_text("".join(json.dumps(record.to_dict()) + "\n" for record in records))
    return path


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny models run on one thread


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_llama) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("training")
    return {"model": tiny_llama, "root": root,
            "trajectories": write_jsonl(root / "trajectories.jsonl", TRAJECTORIES), "pairs": write_jsonl(root / "pairs.jsonl", PAIRS)}


@pytest.fixture(scope="module")
def tokenizer(files):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(files["model"])


@pytest.fixture(scope="module")
def sft_out(files) -> Path:
    """`train sft` for 3 steps at a high learning rate, with the chosen answers of the pairs."""
    out = files["root"] / "sft"
    argv = ["train", "sft", "--model", str(files["model"]), "--trajectories", str(files["trajectories"]), "--pairs", str(files["pairs"]),
            "--out", str(out), "--max_steps", "3", "--learning_rate", "1e-2", *TINY]
    assert cli(argv) == 0
    return out


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def generator_applies(model: Path, adapter: Path) -> bool:
    """Whether the hf generator, given ``adapter``, computes other next-token logits than the base
    model on a prompt (the trained adapter is loaded and merged, not silently ignored)."""
    import torch

    prompt = torch.tensor([[1, 5, 9, 13, 17]])
    logits = []
    for path in (None, adapter):
        generator = create_generator("hf", model_path=str(model), adapter_path=str(path) if path else None, progress=False)
        with torch.inference_mode():
            logits.append(generator.model(input_ids=prompt).logits[0, -1])
    return not torch.allclose(logits[0], logits[1])


# --------------------------------------------------------------------------- data


def test_sft_targets_are_verified_sql_with_their_turns_prompts():
    from text2sql_mlops.training.datasets import sft_targets

    targets, counts = sft_targets(TRAJECTORIES, PAIRS)
    assert counts == {"correct_candidates": 4, "gold": 1, "pair_chosen": 2, "dataset_gold": 0, "dataset_repair": 0,
                      "duplicates_removed": 4}
    repair = TRAJECTORIES[1].turns[1].messages
    assert (repair, format_answer("SELECT name FROM singer")) in targets  # the repair prompt's answer
    assert (TRAJECTORIES[1].first.messages, format_answer("SELECT name FROM singer")) in targets  # gold, first-turn prompt
    assert not any("nowhere" in answer for _, answer in targets)  # failing gold is never a target
    assert len(targets) == len({(json.dumps(m), a) for m, a in targets}) == 7


def test_sft_targets_from_a_mock_rollout_include_the_repairs(demo_dataset, tmp_path):
    """Real trajectories: the mock answers turn 1 wrong and repairs at turn 2."""
    from text2sql_mlops.rollout.command import run_rollout
    from text2sql_mlops.rollout.config import RolloutConfig
    from text2sql_mlops.training.datasets import sft_targets

    run_rollout(RolloutConfig(dataset_path=str(demo_dataset), output_dir=str(tmp_path / "run"), generator="mock", max_turns=3, limit=3, progress=False))
    trajectories = read_trajectories(tmp_path / "run")
    targets, counts = sft_targets(trajectories, [])
    assert counts["correct_candidates"] == counts["gold"] == len(trajectories) == 3  # repair answer + gold on the first prompt
    assert sorted(len(messages) for messages, _ in targets) == [2, 2, 2, 4, 4, 4]  # first-turn prompts and repair prompts


def test_training_tokens_equal_the_hf_generators(files, tokenizer, monkeypatch):
    """The prompt tokens SFTTrainer/DPOTrainer train on are the tokens the hf generator feeds
    the model; the answer tokens follow them and end with EOS."""
    import torch

    from text2sql_mlops.generation.chat import encode, render_completion
    from text2sql_mlops.generation.hf import HFGenerator
    from text2sql_mlops.training import dpo, sft
    from text2sql_mlops.training.config import DPOSettings, SFTSettings
    from text2sql_mlops.training.datasets import dpo_rows, sft_rows, sft_targets
    from text2sql_mlops.training.device import resolve_runtime

    targets, _ = sft_targets(TRAJECTORIES, PAIRS)
    seen: list[list[int]] = []
    monkeypatch.setattr(HFGenerator, "_generate_batch", lambda self, prompts, params: seen.extend(prompts) or [[] for _ in prompts])
    generator = create_generator("hf", model_path=str(files["model"]), progress=False)

    def inference(messages) -> list[int]:
        """The token ids the hf generator feeds the model for this chat."""
        generator.generate([GenerationRequest(messages=messages)], SamplingParams())
        return seen[-1]

    runtime = resolve_runtime(None, None)

    rows, _ = sft_rows(tokenizer, targets, 512)
    trainer = sft.build_trainer(SFTSettings(model=str(files["model"]), out="unused", trajectories=["-"], max_length=512), rows, tokenizer, runtime, str(files["root"] / "t1"))
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])
    for i, (messages, answer) in enumerate(targets):
        ids, labels = batch["input_ids"][i].tolist(), batch["labels"][i].tolist()
        length = int(batch["attention_mask"][i].sum())
        prompt = [t for t, label in zip(ids[:length], labels) if label == -100]
        completion = [t for t, label in zip(ids[:length], labels) if label != -100]
        assert prompt == inference(messages) and ids[: len(prompt)] == prompt  # the prompt comes first, then only answer tokens
        assert completion == encode(tokenizer, render_completion(tokenizer, answer))
        assert completion[-1] == tokenizer.eos_token_id and completion.count(tokenizer.eos_token_id) == 1
        assert tokenizer.decode(completion) == answer + tokenizer.eos_token

    trainer.model.eval()  # no LoRA dropout: TRL's loss (fused LM head, answer positions only) is the plain one
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    torch.testing.assert_close(trainer.compute_loss(trainer.model, dict(batch)), trainer.model(**inputs, labels=batch["labels"]).loss, atol=1e-5, rtol=1e-5)

    pair_rows, _ = dpo_rows(tokenizer, PAIRS, 512)
    trainer = dpo.build_trainer(DPOSettings(model=str(files["model"]), out="unused", pairs=["-"], max_length=512), pair_rows, tokenizer, runtime, str(files["root"] / "t2"))
    for record, row in zip(PAIRS, trainer.train_dataset):
        assert row["prompt_ids"] == inference(record.prompt)
        assert row["chosen_ids"] == encode(tokenizer, record.chosen + tokenizer.eos_token) and row["chosen_ids"][-1] == tokenizer.eos_token_id
        assert row["rejected_ids"] == encode(tokenizer, record.rejected + tokenizer.eos_token)
    batch = trainer.data_collator([trainer.train_dataset[0]])  # chosen row, then rejected row
    assert batch["input_ids"][0, : len(pair_rows[0]["prompt_ids"])].tolist() == pair_rows[0]["prompt_ids"]


KEPT_MEMORY = """
import sys
import torch
from text2sql_mlops.training.device import keep_freed_memory

kept = keep_freed_memory() if sys.argv[1] == "on" else None
def resident() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096
step = torch.ones(64 << 20)  # 256 MB, written: a training step's gradient, say
before = resident()
del step
print(kept, (before - resident()) >> 20)
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists() or platform.libc_ver()[0] != "glibc",
                    reason="glibc on Linux only")
def test_training_keeps_freed_memory_for_the_next_step(monkeypatch):
    """Without keep_freed_memory glibc unmaps a freed 256 MB tensor at once (the next step maps
    and zeroes it again); with it the memory stays for reuse. A user's malloc settings win."""
    def released(mode: str, **env) -> tuple[str, int]:
        run = subprocess.run([sys.executable, "-c", KEPT_MEMORY, mode], capture_output=True, text=True, check=True,
                             env={**os.environ, **env})
        kept, megabytes = run.stdout.split()
        return kept, int(megabytes)

    assert released("off")[1] >= 200
    assert released("on") == ("True", 0)
    kept, megabytes = released("on", MALLOC_MMAP_THRESHOLD_="131072")
    assert kept == "False" and megabytes >= 200



@pytest.mark.parametrize(
    ("cuda", "bf16_supported", "flags", "expected"),
    [
        (True, True, (None, None), ("cuda", "bfloat16", True, False)),  # a GPU: bf16, no checkpointing
        (True, False, (None, None), ("cuda", "float32", False, False)),  # a GPU without bf16 (V100, T4): fp32
        (True, True, (None, True), ("cuda", "bfloat16", True, True)),  # --gradient_checkpointing: the model does not fit
        (True, True, (False, False), ("cuda", "float32", False, False)),  # --no_bf16 --no_gradient_checkpointing
        (False, False, (None, None), ("cpu", "float32", False, False)),  # a CPU: fp32, no checkpointing
        (False, False, (True, True), ("cpu", "float32", True, True)),  # asked for: bf16 autocast over fp32 weights
    ],
)
def test_runtime_per_device(monkeypatch, capsys, cuda, bf16_supported, flags, expected):
    """resolve_runtime on a faked CUDA device (torch.cuda answers as a GPU would) and on this CPU."""
    import torch

    from text2sql_mlops.training.device import Runtime, resolve_runtime

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16_supported)
    assert resolve_runtime(*flags) == Runtime(*expected)
    assert ("no bf16" in capsys.readouterr().err) == (cuda and not bf16_supported and flags[0] is None)


def test_gpu_training_arguments_keep_trls_fused_log_prob_path(files, monkeypatch):
    """What SFTTrainer and DPOTrainer get on a (faked) CUDA device: bf16, no checkpointing, the GPU
    (not use_cpu), pinned memory; and nothing that turns TRL's fused log-prob path off: no Liger
    kernel, no label smoothing, and our CPU patch of TRL's choice of kernels (device.py) answers
    TRL's own on CUDA (its Triton kernels wherever triton is installed)."""
    import torch
    import trl.kernels.chunked_logprob as kernels
    import trl.trainer.utils as trl_utils
    from transformers import TrainingArguments

    from text2sql_mlops.training.common import trainer_arguments
    from text2sql_mlops.training.config import DPOSettings
    from text2sql_mlops.training.device import resolve_runtime, score_answer_tokens_only

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    settings = DPOSettings(model=str(files["model"]), out="unused", pairs=["-"])
    arguments = trainer_arguments(settings, resolve_runtime(settings.bf16, settings.gradient_checkpointing), "unused")
    checkpointing = {"activation_checkpointing", "gradient_checkpointing"} & set(arguments)
    assert len(checkpointing) == 1 and arguments[checkpointing.pop()] is False
    assert arguments["bf16"] is True and arguments["use_cpu"] is False and arguments["dataloader_pin_memory"] is True
    assert not {"use_liger_kernel", "liger_kernel_config", "label_smoothing_factor"} & set(arguments)
    defaults = TrainingArguments(output_dir="unused", use_cpu=True)
    assert defaults.use_liger_kernel is False and defaults.label_smoothing_factor == 0

    score_answer_tokens_only()
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    monkeypatch.setattr(kernels, "_TRITON_AVAILABLE", True)  # as with the CUDA torch wheels, which bring triton
    assert trl_utils._use_triton(cuda) and kernels._use_triton(cuda)
    monkeypatch.setattr(kernels, "_TRITON_AVAILABLE", False)
    assert not trl_utils._use_triton(cuda)  # TRL's own answer on CUDA, not ours
    assert trl_utils._use_triton(cpu)  # ours on CPU: only the answer positions


def test_dataset_targets_are_the_rollouts_first_turn_prompts_with_runnable_gold(demo_dataset, tmp_path):

    from text2sql_mlops.data.load import load_examples
    from text2sql_mlops.generation import create_generator
    from text2sql_mlops.rollout.command import run_rollout
    from text2sql_mlops.rollout.config import RolloutConfig
    from text2sql_mlops.schema.select import PromptConfig
    from text2sql_mlops.training.datasets import dataset_targets

    data = tmp_path / "demo"
    shutil.copytree(demo_dataset, data)
    examples = load_examples(str(data), None, "train")[:5]
    examples[2].query = "SELECT nothing FROM nowhere"  # a failing gold is no target
    config = PromptConfig(schema_format="compact", sample_values=2)
    targets, bad_gold = dataset_targets(examples, config, str(data / "tables.json"))
    assert bad_gold == 1 and [answer for _, answer in targets] == [format_answer(e.query) for i, e in enumerate(examples) if i != 2]
    rollout = run_rollout(RolloutConfig(dataset_path=str(data), output_dir=str(tmp_path / "r"), limit=5, max_turns=1,
                                        schema_format="compact", sample_values=2, progress=False), generator=create_generator("mock"))
    assert rollout.examples == 5
    first_turns = [t.first.messages for t in read_trajectories(tmp_path / "r")]
    assert [messages for messages, _ in targets] == [m for i, m in enumerate(first_turns) if i != 2]


@pytest.mark.slow
def test_sft_on_a_dataset_leaves_out_evaluation_questions_and_learns_its_gold(files, demo_dataset, tmp_path, capsys):
    base = ["train", "sft", "--model", str(files["model"]), "--dataset", str(demo_dataset), "--schema_format", "compact",
            "--max_steps", "1", *TINY]
    assert cli([*base, "--split", "dev", "--out", str(tmp_path / "bad"), "--eval_dataset", str(demo_dataset)]) == 2
    err = capsys.readouterr().err
    assert "error: train sft: all 60 examples of --dataset" in err and "belong to the evaluation set" in err
    assert not (tmp_path / "bad").exists()
    # A training question worded like an evaluation question (Spider repeats generic ones across
    # databases) is left out with a count, as rollout and synth do; the rest is trained on.
    data = tmp_path / "data"
    shutil.copytree(demo_dataset, data)
    train = json.loads((data / "train_spider.json").read_text())
    dev_question = json.loads((data / "dev.json").read_text())[0]["question"]
    train[0] = {**train[0], "question": dev_question.lower().rstrip("?") + "."}
    (data / "train_spider.json").write_text(json.dumps(train))
    base[base.index("--dataset") + 1] = str(data)
    assert cli([*base, "--out", str(tmp_path / "sft"), "--eval_dataset", str(data), "--max_length", "4096", "--repair_fraction", "0.25"]) == 0
    assert f"train sft: left out 1 of {len(train)} examples that overlap the evaluation set" in capsys.readouterr().err
    summary = json.loads((tmp_path / "sft" / "training_summary.json").read_text())
    assert summary["data"]["dataset_left_out"] == 1
    assert summary["data"]["dataset_gold"] == len(train) - 1 - summary["data"]["duplicates_removed"]
    # about a quarter of the examples also teach the repair turn, from each kind of mistake
    repairs = summary["data"]["dataset_repair"]
    assert 0.15 * len(train) < repairs < 0.35 * len(train)
    assert repairs == sum(summary["data"][f"repair_{family}"] for family in ("invented_column", "wrong_column", "missing_join"))
    assert min(summary["data"][f"repair_{family}"] for family in ("invented_column", "wrong_column", "missing_join")) > 0
    assert cli([*base, "--out", str(tmp_path / "no"), "--repair_fraction", "1.5"]) == 2
    assert "--repair_fraction must be between 0 and 1, got 1.5" in capsys.readouterr().err
    assert str(data / "train_spider.json") in summary["inputs_sha256"]


# --------------------------------------------------------------------------- SFT


@pytest.mark.slow
def test_sft_writes_a_loadable_adapter_with_summary_and_metrics(files, sft_out):
    from safetensors.torch import load_file

    names = {path.name for path in sft_out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "training_summary.json", "metrics.jsonl"} <= names
    assert not [p for p in files["root"].iterdir() if p.name.startswith(".sft.")]  # the staging folder is gone

    summary = json.loads((sft_out / "training_summary.json").read_text())
    assert summary["method"] == "sft" and summary["settings"]["max_steps"] == 3 and summary["settings"]["lora_r"] == 4
    assert summary["runtime"] == {"device": "cpu", "dtype": "float32", "bf16": False, "gradient_checkpointing": False,
                                  "world_size": 1, "effective_batch_size": 2}
    assert set(summary["inputs_sha256"]) == {str(files["trajectories"]), str(files["pairs"])}
    assert all(len(digest) == 64 for digest in summary["inputs_sha256"].values())
    assert summary["data"] == {"examples": 7, "correct_candidates": 4, "gold": 1, "pair_chosen": 2, "dataset_gold": 0,
                               "dataset_repair": 0, "duplicates_removed": 4, "dataset_bad_gold": 0, "dataset_left_out": 0,
                               "too_long": 0}
    result = summary["result"]
    assert result["steps"] == 3 and math.isfinite(result["train_loss"]) and result["final"]["step"] == 3 and result["steps_per_s"] > 0
    assert set(summary["versions"]) >= {"trl", "peft", "transformers", "torch"} and summary["wall_s"] > 0

    metrics = read_jsonl(sft_out / "metrics.jsonl")
    assert [row["step"] for row in metrics] == [1, 2, 3]
    assert all({"loss", "learning_rate", "steps_per_s", "mean_token_accuracy"} <= set(row) for row in metrics)

    weights = load_file(sft_out / "adapter_model.safetensors")
    lora_b = [tensor for name, tensor in weights.items() if "lora_B" in name]
    assert lora_b and all(tensor.abs().sum() > 0 for tensor in lora_b)  # peft starts B at zero: training moved it
    assert generator_applies(files["model"], sft_out)


@pytest.mark.slow
def test_eval_guard_refuses_leaking_trajectories_and_pairs(files, spider_layout, capsys, tmp_path):
    leaking = write_jsonl(tmp_path / "leak.jsonl", [replace(TRAJECTORIES[0], db_id="concert_singer")])
    out = tmp_path / "out"
    from conftest import make_db

    make_db(tmp_path / "train_db" / "singer_db" / "singer_db.sqlite", SCHEMA)  # the guard compares the records' database schemas
    base = ["--model", str(files["model"]), "--out", str(out), "--eval_dataset", str(spider_layout), "--db_root", str(tmp_path / "train_db"), *TINY]
    assert cli(["train", "sft", "--trajectories", str(leaking), *base]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "evaluation database" in error[0] and error[0].startswith("error: train sft:")
    assert cli(["train", "sft", "--trajectories", str(files["trajectories"]), "--pairs", str(write_jsonl(tmp_path / "p.jsonl", [replace(PAIRS[0], meta={**PAIRS[0].meta, "question": "What is the average age?"})])), *base]) == 2
    assert "evaluation question" in capsys.readouterr().err
    assert cli(["train", "dpo", "--pairs", str(write_jsonl(tmp_path / "q.jsonl", [replace(PAIRS[0], meta={**PAIRS[0].meta, "db_id": "concert_singer"})])), *base]) == 2
    assert "pairs belong to the evaluation set" in capsys.readouterr().err
    assert not out.exists()


def test_clean_errors_for_bad_paths(files, capsys, tmp_path):
    common = ["--trajectories", str(files["trajectories"]), "--out", str(tmp_path / "out")]
    assert cli(["train", "sft", "--model", str(tmp_path / "missing"), *common]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: model folder not found:")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep.txt").write_text("x")
    assert cli(["train", "sft", "--model", str(files["model"]), "--trajectories", str(files["trajectories"]), "--out", str(tmp_path / "data")]) == 2
    assert "this tool did not write" in capsys.readouterr().err and (tmp_path / "data" / "keep.txt").exists()
    assert cli(["train", "dpo", "--model", str(files["model"]), "--pairs", str(files["pairs"]), "--out", str(tmp_path / "o"), "--init_adapter", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "adapter_config.json missing" in error and "--out folder of `train sft`" in error
    weightless = tmp_path / "weightless"  # an adapter whose saving was interrupted: config, no weights
    weightless.mkdir()
    (weightless / "adapter_config.json").write_text("{}")
    assert cli(["train", "sft", "--model", str(files["model"]), "--trajectories", str(files["trajectories"]), "--out", str(tmp_path / "o"),
                "--init_adapter", str(weightless)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "has no weights" in error[0] and not (tmp_path / "o").exists()
    assert cli(["train", "sft", "--model", str(files["model"]), "--out", str(tmp_path / "o")]) == 2  # --trajectories missing
    assert cli(["train", "dpo", "--model", str(files["model"]), "--pairs", str(files["pairs"]), "--out", str(tmp_path / "o"), "--loss_type", "sigmoid,dpo"]) == 2
    assert "--loss_type: unknown ['dpo']" in capsys.readouterr().err
    assert cli(["train", "rl"]) == 2


@pytest.mark.parametrize("method", ["sft", "dpo"])
def test_a_model_folder_without_a_tokenizer_is_one_line_before_training(files, tmp_path, capsys, method):
    model = tmp_path / "no_tokenizer"
    model.mkdir()
    for name in ("config.json", "model.safetensors"):  # the weights, but no tokenizer files
        (model / name).write_bytes((files["model"] / name).read_bytes())
    data = ["--trajectories", str(files["trajectories"])] if method == "sft" else ["--pairs", str(files["pairs"])]
    assert cli(["train", method, "--model", str(model), *data, "--out", str(tmp_path / "out"), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {model}: cannot load the model's tokenizer (") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_an_interrupted_run_leaves_no_output(files, tmp_path, monkeypatch):
    from transformers import Trainer

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "train", interrupted)
    argv = ["train", "sft", "--model", str(files["model"]), "--trajectories", str(files["trajectories"]), "--out", str(tmp_path / "out"), *TINY]
    assert cli(argv) == 130
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its staging copy


# --------------------------------------------------------------------------- DPO


def sequence_logps(model, rows: list[dict], side: str):
    """Sum of log-probs of each row's ``side`` answer after its prompt, computed from scratch."""
    import torch

    sums = []
    with torch.no_grad():
        for row in rows:
            ids = row["prompt_ids"] + row[side]
            logps = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1].float(), dim=-1)
            token_logps = logps.gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]
            sums.append(token_logps[len(row["prompt_ids"]) - 1 :].sum())
    return torch.stack(sums)


@pytest.mark.slow
def test_dpo_reference_is_the_sft_policy_and_stays_frozen(files, tokenizer, tiny_lora):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from text2sql_mlops.training import dpo
    from text2sql_mlops.training.config import DPOSettings
    from text2sql_mlops.training.datasets import dpo_rows
    from text2sql_mlops.training.device import resolve_runtime

    rows, _ = dpo_rows(tokenizer, PAIRS, 512)
    base = AutoModelForCausalLM.from_pretrained(files["model"]).eval()
    sft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(files["model"]), str(tiny_lora)).merge_and_unload().eval()
    expected = {name: (sequence_logps(model, rows, "chosen_ids"), sequence_logps(model, rows, "rejected_ids")) for name, model in (("base", base), ("sft", sft))}
    assert not torch.allclose(expected["base"][0], expected["sft"][0], atol=1e-2)  # the adapter matters

    def reference(trainer):
        batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])
        return trainer.compute_ref_log_probs(trainer.model, batch)

    settings = DPOSettings(model=str(files["model"]), out="unused", pairs=["-"], init_adapter=str(tiny_lora), max_length=512,
                           max_steps=2, learning_rate=5e-2, per_device_train_batch_size=2, logging_steps=1)
    trainer = dpo.build_trainer(settings, rows, tokenizer, resolve_runtime(None, None), str(files["root"] / "t3"))
    for got, want in zip(reference(trainer), expected["sft"]):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    trainer.train()
    for got, want in zip(reference(trainer), expected["sft"]):  # after training: still the SFT policy
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(sequence_logps(trainer.model.eval(), rows, "chosen_ids"), expected["sft"][0], atol=1e-3)  # the policy moved

    # A fresh LoRA (no --init_adapter): the reference is the base model.
    fresh = dpo.build_trainer(DPOSettings(model=str(files["model"]), out="unused", pairs=["-"], max_length=512), rows, tokenizer,
                              resolve_runtime(None, None), str(files["root"] / "t4"))
    for got, want in zip(reference(fresh), expected["base"]):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("init", ["base", "sft"])
@pytest.mark.slow
def test_dpo_runs_from_base_and_from_the_sft_adapter(files, sft_out, init, capsys):
    out = files["root"] / f"dpo-{init}"
    # one more pair whose answers differ only in spacing: no DPO signal, dropped and counted
    same = pair(TRAJECTORIES[2], "SELECT 1", "SELECT  1")
    pairs = write_jsonl(files["root"] / f"pairs-{init}.jsonl", [*PAIRS, same])
    argv = ["train", "dpo", "--model", str(files["model"]), "--pairs", str(pairs), "--out", str(out),
            "--max_steps", "2", "--learning_rate", "1e-2", "--beta", "0.2", *TINY]
    if init == "sft":
        argv += ["--init_adapter", str(sft_out)]
    assert cli(argv) == 0
    console = capsys.readouterr()
    assert "train dpo: step 2/2" in console.err and "reward_acc" in console.err
    assert json.loads(console.out.strip().splitlines()[-1])["steps"] == 2

    metrics = read_jsonl(out / "metrics.jsonl")
    assert len(metrics) == 2 and all({"loss", "rewards/accuracies", "rewards/margins", "learning_rate", "steps_per_s"} <= set(row) for row in metrics)
    # Step 1: the policy is still the reference (a zero-B fresh LoRA, or the SFT adapter and its copy): loss ln 2, margin 0.
    assert metrics[0]["loss"] == pytest.approx(math.log(2), abs=1e-4) and metrics[0]["rewards/margins"] == pytest.approx(0, abs=1e-4)
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["settings"]["beta"] == 0.2 and summary["data"] == {"examples": 4, "pairs": 5, "too_long": 0, "same_answer": 1}
    assert len(summary["inputs_sha256"]) == (2 if init == "sft" else 1)
    assert (summary["lora"]["r"], summary["lora"]["lora_alpha"]) == (4, 8)
    assert not (out / "ref").exists()  # only the trained adapter, not TRL's frozen reference copy
    assert generator_applies(files["model"], out)


def test_dpo_refuses_pairs_that_all_have_one_answer(files, capsys):
    pairs = write_jsonl(files["root"] / "same.jsonl", [pair(TRAJECTORIES[2], "SELECT 1", "SELECT 1")])
    out = files["root"] / "dpo-same"
    assert cli(["train", "dpo", "--model", str(files["model"]), "--pairs", str(pairs), "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "same chosen and rejected answer" in err[0] and not out.exists()


@pytest.mark.slow
def test_sft_continues_an_earlier_sft_output(files, sft_out, tmp_path, capsys):
    """`train sft --init_adapter` (e.g. repair SFT after SFT on gold): training starts from the
    earlier run's weights, its LoRA continued (not a fresh one on the base) or, with
    --full_finetune, its whole model."""
    from safetensors.torch import load_file

    out = tmp_path / "continued"
    argv = ["train", "sft", "--model", str(files["model"]), "--pairs", str(files["pairs"]), "--out", str(out),
            "--max_steps", "1", "--learning_rate", "1e-3", *TINY]
    assert cli([*argv, "--init_adapter", str(sft_out)]) == 0
    before, after = load_file(sft_out / "adapter_model.safetensors"), load_file(out / "adapter_model.safetensors")
    assert before.keys() == after.keys() and any(not before[k].equal(after[k]) for k in before)
    # One small step from the earlier LoRA (3 steps at 10x the rate) stays near it; a fresh LoRA's
    # B matrices would start at zero and end about a tenth of the way there.
    assert all((after[k] - before[k]).norm() < 0.5 * before[k].norm() for k in before if "lora_B" in k)
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["settings"]["init_adapter"] == str(sft_out) and str(sft_out / "adapter_model.safetensors") in summary["inputs_sha256"]
    # LoRA flags other than the continued adapter's are ignored: said once, and the settings
    # (the run's params) record the LoRA that trained, not the flags (they said r 8 beside lora.r 4)
    capsys.readouterr()
    assert cli([*argv[:7], str(tmp_path / "other_flags"), *argv[8:], "--lora_r", "8", "--init_adapter", str(sft_out)]) == 0
    assert "--init_adapter continues its own LoRA (r 4, alpha 8); ignored: --lora_r 8" in capsys.readouterr().err
    settings = json.loads((tmp_path / "other_flags" / "training_summary.json").read_text())["settings"]
    assert (settings["lora_r"], settings["lora_alpha"]) == (4, 8)

    full = tmp_path / "full"
    assert cli(["train", "sft", "--model", str(files["model"]), "--trajectories", str(files["trajectories"]), "--out", str(full),
                "--max_steps", "1", "--learning_rate", "1e-2", "--full_finetune", *TINY]) == 0
    full2 = tmp_path / "full2"
    assert cli(["train", "sft", "--model", str(files["model"]), "--pairs", str(files["pairs"]), "--out", str(full2),
                "--max_steps", "1", "--learning_rate", "1e-3", "--full_finetune", "--init_adapter", str(full), *TINY]) == 0
    base, start, end = (load_file(path / "model.safetensors") for path in (files["model"], full, full2))

    def distance(a: dict, b: dict) -> float:
        return sum(float((a[k] - b[k]).abs().sum()) for k in a)

    assert distance(start, end) < distance(base, end)  # continued from the earlier model, not from the base
    # The wrong kind of folder for the flags is one clear error, before any training.
    assert cli(["train", "sft", "--model", str(files["model"]), "--pairs", str(files["pairs"]), "--out", str(tmp_path / "x"),
                "--init_adapter", str(full), *TINY]) == 2
    assert cli(["train", "sft", "--model", str(files["model"]), "--pairs", str(files["pairs"]), "--out", str(tmp_path / "y"),
                "--init_adapter", str(sft_out), "--full_finetune", *TINY]) == 2
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.slow
def test_last_layers_adapts_only_the_last_layers(files, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "last"
    assert cli(["train", "sft", "--model", str(files["model"]), "--trajectories", str(files["trajectories"]), "--out", str(out),
                "--max_steps", "1", "--last_layers", "1", *TINY]) == 0
    keys = list(load_file(out / "adapter_model.safetensors"))
    assert keys and all(".layers.1." in key for key in keys)  # the tiny Llama has layers 0 and 1
    assert {key.split(".")[-3] for key in keys} == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


@pytest.mark.slow
def test_full_finetune_of_the_last_layers_writes_a_whole_model_that_dpo_and_eval_continue(files, tmp_path, demo_dataset):
    from safetensors.torch import load_file

    sft = tmp_path / "sft_full"
    assert cli(["train", "sft", "--model", str(files["model"]), "--trajectories", str(files["trajectories"]), "--out", str(sft),
                "--max_steps", "2", "--learning_rate", "1e-2", "--full_finetune", "--last_layers", "1", *TINY]) == 0
    names = {path.name for path in sft.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names and "adapter_config.json" not in names
    base, trained = load_file(files["model"] / "model.safetensors"), load_file(sft / "model.safetensors")
    changed = {key for key in base if not base[key].equal(trained[key])}
    assert changed and all(".layers.1." in key or key.endswith("norm.weight") for key in changed)  # layer 0 and embeddings frozen
    assert json.loads((sft / "training_summary.json").read_text())["lora"] is None

    dpo_out = tmp_path / "dpo_full"
    assert cli(["train", "dpo", "--model", str(files["model"]), "--pairs", str(files["pairs"]), "--init_adapter", str(sft),
                "--out", str(dpo_out), "--max_steps", "1", "--full_finetune", *TINY]) == 0
    assert (dpo_out / "model.safetensors").is_file() and not (dpo_out / "adapter_config.json").exists()
    assert cli(["train", "dpo", "--model", str(files["model"]), "--pairs", str(files["pairs"]), "--init_adapter", str(sft),
                "--out", str(tmp_path / "lora_on_full"), "--max_steps", "1", *TINY]) == 2  # a LoRA needs its base everywhere

    # eval and rollouts take a whole model where an adapter goes: it replaces the base model
    out = tmp_path / "eval"
    assert cli(["eval", "--adapter", str(dpo_out), "--model_path", str(files["model"]), "--dataset_path", str(demo_dataset),
                "--limit", "2", "--max_turns", "1", "--max_new_tokens", "4", "--output_dir", str(out), "--no_progress"]) == 0
    config = json.loads((out / "summary.json").read_text())["config"]
    assert config["model_path"] == str(dpo_out) and config["adapter_path"] is None


def test_repair_targets_are_a_rollouts_second_turn_on_a_failing_query_then_the_gold(demo_dataset):
    import random

    import sqlglot

    from text2sql_mlops.data.load import load_examples
    from text2sql_mlops.pairs.mutations import function_case
    from text2sql_mlops.prompts import REPAIR_INSTRUCTION
    from text2sql_mlops.schema.select import PromptConfig
    from text2sql_mlops.scoring.errors import unresolved_name
    from text2sql_mlops.sql.catalog import load_catalog
    from text2sql_mlops.sql.sandbox import Sandbox
    from text2sql_mlops.training.datasets import dataset_targets
    from text2sql_mlops.training.repair_examples import invented_columns, repair_targets

    tables = str(demo_dataset / "tables.json")
    examples = load_examples(str(demo_dataset), None, "train")[:40]
    config = PromptConfig(schema_format="compact", sample_values=2)
    targets, counts = repair_targets(examples, config, tables, 0.5, "minimal", "error_only", seed=0)
    assert 10 <= len(targets) <= 30 and sum(n for key, n in counts.items() if key != "repair_no_failing_query") == len(targets)
    assert repair_targets(examples, config, tables, 0.5, "minimal", "error_only", seed=0) == (targets, counts)  # seeded
    first_turns = {messages[1]["content"]: (messages, answer) for messages, answer in dataset_targets(examples, config, tables)[0]}
    with Sandbox() as sandbox:
        for messages, answer in targets:
            first, gold = first_turns[messages[1]["content"]]
            assert messages[:2] == first and answer == gold  # the first turn as a rollout builds it; the gold answer
            assert messages[2]["role"] == "assistant" and messages[3]["role"] == "user"
            failing = messages[2]["content"].removeprefix("```sql\n").removesuffix("\n```")
            example = next(e for e in examples if format_answer(e.query) == answer and e.question in messages[1]["content"])
            error = sandbox.execute(example.db_path, failing).error
            assert unresolved_name(error) is not None  # SQLite rejects it with the name the feedback explains
            assert messages[3]["content"].startswith(f"The query failed with an error: {error}")
            assert "Column-Minimal Repair" in messages[3]["content"] and messages[3]["content"].endswith(REPAIR_INSTRUCTION)
    flights = load_catalog(str(demo_dataset / "database" / "flight_network" / "flight_network.sqlite"))
    gold = "SELECT T2.name FROM flight AS T1 JOIN airline AS T2 ON T1.airline_id = T2.airline_id WHERE T1.price > 100"
    invented = invented_columns(sqlglot.parse_one(gold, read="sqlite"), function_case(gold), flights, random.Random(0))
    assert "SELECT T2.airline_name FROM flight AS T1 JOIN airline AS T2 ON T1.airline_id = T2.airline_id WHERE T1.price > 100" in invented
    assert sorted(invented) == sorted(gold.replace(old, new, 1) for old, new in
                                      [("T2.name", "T2.airline_name"), ("T1.price", "T1.flight_price"), ("T1.airline_id", "T1.flight_airline_id")])


def test_the_reference_projects_training_flags_are_aliases(files, tmp_path):
    """Users of the reference project type --model_name_or_path, --output_dir, --dpo_pairs,
    --base_adapter_path, --max_seq_length, --max_prompt_length; they mean our flags."""
    from text2sql_mlops.core.cliutil import from_args
    from text2sql_mlops.training.config import DPOSettings, SFTSettings
    from text2sql_mlops.training.dpo import make_parser as dpo_parser
    from text2sql_mlops.training.sft import make_parser as sft_parser

    sft = from_args(SFTSettings, sft_parser().parse_args(["--model_name_or_path", "m", "--output_dir", str(tmp_path / "o"),
                                                          "--max_seq_length", "512"]))
    assert (sft.model, sft.out, sft.max_length) == ("m", str(tmp_path / "o"), 512)
    dpo = from_args(DPOSettings, dpo_parser().parse_args(["--model_name_or_path", "m", "--output_dir", str(tmp_path / "o"),
                                                          "--dpo_pairs", "p.jsonl", "--base_adapter_path", "a", "--max_prompt_length", "300"]))
    assert (dpo.model, dpo.pairs, dpo.init_adapter, dpo.max_prompt_length) == ("m", ["p.jsonl"], "a", 300)


def test_max_prompt_length_leaves_long_prompts_out_never_cuts_them(tokenizer):
    from text2sql_mlops.training.datasets import dpo_rows, prompt_ids

    lengths = [len(prompt_ids(tokenizer, pair.prompt)) for pair in PAIRS]
    limit = sorted(lengths)[len(lengths) // 2]
    rows, too_long = dpo_rows(tokenizer, PAIRS, 4096, max_prompt_length=limit)
    assert too_long == sum(length > limit for length in lengths) > 0
    assert [len(row["prompt_ids"]) for row in rows] == [length for length in lengths if length <= limit]


def test_a_diverged_training_stops_with_one_line_and_writes_nothing(files, tmp_path, capsys):
    """At a learning rate that blows the weights up, training went on to its last step, saved
    a NaN adapter and wrote NaN into metrics.jsonl (then `track` refused the file, far from the cause)."""
    out = tmp_path / "out"
    argv = ["train", "sft", "--model", str(files["model"]), "--trajectories", str(files["trajectories"]), "--out", str(out),
            "--max_steps", "6", "--learning_rate", "1e30", "--full_finetune", *TINY]
    assert cli(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: train sft: ") and "the training diverged; lower --learning_rate" in err, err
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its staging copy
    # logged every 4 steps: the NaN loss is logged as NaN (transformers' default swapped in the
    # running mean, so the console showed a healthy-looking loss), and stopped at that step
    assert cli([*argv, "--logging_steps", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "loss is nan at step 4" in err and list(tmp_path.iterdir()) == [], err
