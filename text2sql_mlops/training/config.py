"""Settings of ``train sft`` and ``train dpo``: one dataclass per method, one field per flag.

Like TRL's ``SFTConfig``/``DPOConfig``, every field is documented where it is
declared; ``add_flags`` turns the fields into command-line flags (defaults and help
included), so a setting is defined once. ``None`` for ``bf16`` and
``gradient_checkpointing`` means "not given": bf16 on a GPU that supports it,
checkpointing off (``device.py``). The resolved
settings are printed at start and stored in ``training_summary.json``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path

from ..core import cliutil
from ..core.cliutil import setting
from ..core.fileio import output_folder_type
from ..data.guard import guard_setting
from ..schema.select import prompt_setting

# What a training output folder holds besides the adapter and tokenizer.
SUMMARY = "training_summary.json"
METRICS = "metrics.jsonl"


def trained_here(folder: Path) -> bool:
    """A folder `train` wrote before folders carried the fileio marker."""
    return (folder / SUMMARY).is_file()


@dataclass
class TrainSettings:
    """What SFT and DPO share: inputs and outputs, LoRA, optimisation, precision."""

    # > inputs and outputs
    model: str = setting(None, "base model folder in Hugging Face layout (e.g. models/smollm2-135m-instruct)", required=True, metavar="DIR",
                         aliases=("--model_name_or_path",))
    out: str = setting(None, "output folder: the LoRA adapter, tokenizer, training_summary.json, metrics.jsonl (written atomically)", required=True, metavar="DIR",
                       type=output_folder_type(trained_here), aliases=("--output_dir",))
    eval_dataset: str | None = guard_setting("eval_dataset")
    eval_split: str = guard_setting("eval_split")
    eval_same_db_split: str | None = guard_setting("eval_same_db_split")
    eval_db_root: str | None = guard_setting("eval_db_root")
    db_root: list[str] = setting([], "folders of the training databases, whose schemas the guard compares with the evaluation "
                                     "databases' (default: a rollout folder's own, then --eval_dataset's)", nargs="+", action="extend", metavar="DIR")
    # > LoRA (ignored with --init_adapter, which continues that adapter as it is)
    lora_r: int = setting(16, "LoRA rank", type=int)
    lora_alpha: int = setting(32, "LoRA scaling numerator (the update is scaled by alpha / r)", type=int)
    lora_dropout: float = setting(0.05, "dropout on the LoRA input", type=float)
    lora_target_modules: str = setting("all-linear", "modules that get LoRA: 'all-linear' or a comma-separated list of names (q_proj,v_proj,...)")
    full_finetune: bool = setting(False, "train every weight instead of a LoRA adapter; the output is a whole model "
                                         "folder (for small models: on a CPU a full step costs about what a LoRA step does)",
                                  action="store_true")
    last_layers: int = setting(0, "train only the last N transformer layers (their LoRA adapters, or with --full_finetune "
                                  "their weights); 0: all. Backward stops below them, which makes a CPU step cheaper", type=int)
    # > optimisation
    learning_rate: float = setting(2e-4, "peak AdamW learning rate", type=float)
    lr_scheduler_type: str = setting("linear", "learning-rate schedule (transformers names: linear, cosine, constant, ...)")
    warmup_steps: float = setting(0.0, "warm-up steps; a value below 1 is a fraction of all steps", type=float)
    num_train_epochs: float = setting(1.0, "passes over the training data (ignored when --max_steps is set)", type=float)
    max_steps: int = setting(-1, "optimizer steps to run; -1: as many as --num_train_epochs takes", type=int)
    per_device_train_batch_size: int = setting(8, "examples (SFT) or pairs (DPO) per forward pass on each device", type=int)
    gradient_accumulation_steps: int = setting(1, "forward passes per optimizer step", type=int)
    max_length: int = setting(2048, "longest prompt + answer in tokens; longer examples are left out (and counted)", type=int,
                              aliases=("--max_seq_length",))
    seed: int = setting(0, "seed of the LoRA initialisation and the data order", type=int)
    logging_steps: int = setting(10, "optimizer steps between two lines of metrics.jsonl and the console", type=int)
    # > precision and memory (None: chosen per device, see device.py)
    bf16: bool | None = setting(None, "bf16 mixed precision (default: on a GPU that supports it; off on CPU, where bf16 is slow)", auto=True)
    gradient_checkpointing: bool | None = setting(None, "recompute activations in backward to save memory, for one more forward pass per "
                                                        "step: turn it on when a step runs out of GPU memory (default: off)", auto=True)


@dataclass
class SFTSettings(TrainSettings):
    """``train sft``: supervised fine-tuning on execution-verified SQL (``datasets.sft_rows``)."""

    trajectories: list[str] = setting([], "rollout folders or trajectories.jsonl files: their correct candidates and gold SQL are the targets", nargs="+", action="extend", metavar="PATH")
    pairs: list[str] = setting([], "pair JSONL files whose chosen answers are added as targets", nargs="+", action="extend", metavar="PATH")
    init_adapter: str | None = setting(None, "the --out folder of an earlier `train sft` to continue (a LoRA adapter, or with "
                                             "--full_finetune a whole model; default: a fresh LoRA or the weights of --model)", metavar="DIR")
    group_by_length: bool = setting(False, "batches of similar length (random order of batches): less padding, "
                                           "about 10%% more examples per second on a CPU", action="store_true")
    group_by_prefix: bool = setting(False, "batches of questions whose prompts share a prefix (one database's schema), which "
                                           "each training step reads once instead of once per question (random order of batches)",
                                    action="store_true")
    dataset: str | None = setting(None, "a training split whose gold SQL are targets, with first-turn prompts built exactly as "
                                        "`rollout` builds them from the schema settings below (JSON, JSONL or Spider-layout folder)", metavar="PATH")
    split: str = setting("train", "split of a Spider-layout --dataset")
    tables_json: str | None = setting(None, "Spider tables.json of --dataset (default: next to it)", metavar="PATH")
    # > the prompt's schema for --dataset (as `rollout`'s flags; trajectories and pairs carry their prompts)
    schema_mode: str = prompt_setting("schema_mode")
    top_k_tables: int = prompt_setting("top_k_tables")
    fk_hops: int = prompt_setting("fk_hops")
    sample_rows: int = prompt_setting("sample_rows")
    schema_format: str = prompt_setting("schema_format")
    sample_values: int = prompt_setting("sample_values")
    prompt_style: str = prompt_setting("prompt_style")
    # > repair targets from --dataset (training/repair_examples.py): the rollout's second-turn prompt
    repair_fraction: float = setting(0.0, "share of --dataset examples that also get a repair target: the gold query with "
                                          "one schema mistake, its execution feedback, then the gold SQL", type=float)
    feedback_detail: str = setting("minimal", "feedback detail of repair targets: basic, column or minimal (as rollout's)")
    feedback_mode: str = setting("error_only", "feedback mode of repair targets (as rollout's; gold-free modes only)")


@dataclass
class DPOSettings(TrainSettings):
    """``train dpo``: direct preference optimisation on pair files (``datasets.dpo_rows``)."""

    pairs: list[str] = setting([], "pair JSONL files (records.Pair)", required=True, nargs="+", action="extend", metavar="PATH",
                               aliases=("--dpo_pairs",))
    init_adapter: str | None = setting(None, "an SFT adapter folder to continue; it is also the frozen reference policy "
                                             "(default: a fresh LoRA on the base model, whose reference is the base model)", metavar="DIR",
                                      aliases=("--base_adapter_path",))
    max_prompt_length: int | None = setting(None, "longest prompt in tokens; pairs with a longer prompt are left out (and counted), "
                                                  "never cut: a cut schema is another question", type=int)
    beta: float = setting(0.1, "DPO temperature: higher keeps the policy closer to the reference", type=float)
    loss_type: str = setting("sigmoid", "TRL DPO loss: sigmoid (DPO), ipo, hinge, robust, ... (comma-separated to combine)")
    learning_rate: float = setting(5e-6, "peak AdamW learning rate", type=float)


def add_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """One flag per field of ``cls``; the method's own fields (inputs) come first in --help."""
    cliutil.add_flags(parser, cls, later=[f.name for f in fields(TrainSettings)])

