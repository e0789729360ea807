"""``train dpo``: LoRA direct preference optimisation with TRL's ``DPOTrainer``.

    text2sql-mlops train dpo --model models/smollm2-135m-instruct --pairs pairs/merged.jsonl \\
        [--init_adapter adapters/sft] --out adapters/dpo --eval_dataset data/spider

The reference policy (what the DPO loss measures the policy against) is:

* without ``--init_adapter``: the base model. A fresh LoRA is trained and TRL computes
  the reference log-probs with the adapter disabled.
* with ``--init_adapter``: the SFT policy. The adapter is loaded trainable
  (``PeftModel.from_pretrained(..., is_trainable=True)``) and passed without a
  ``ref_model``; TRL 1.16 then copies it into a second, frozen adapter named "ref"
  and computes the reference log-probs with "ref" active (``DPOTrainer.__init__``,
  ``compute_ref_log_probs``). No second model in memory; only "default", the trained
  adapter, is saved. ``tests/test_training.py`` checks the reference log-probs
  equal the SFT model's, before and after training, not the base model's.
"""

from __future__ import annotations

import time
from typing import Any

from ..core.cliutil import ArgParser, from_args
from ..core.errors import UserError
from ..core.records import read_pairs
from ..data.guard import refuse_leaks
from .common import (
    announce,
    check_settings,
    eval_split,
    init_adapter_file,
    load_tokenizer,
    quiet_libraries,
    report,
    sha256_file,
    starting_model,
    train_and_save,
    trainer_arguments,
)
from .config import DPOSettings, add_flags
from .datasets import dpo_rows
from .device import resolve_runtime, score_answer_tokens_only
from .prefixes import share_trainer_prefixes

# TRL 1.16's DPO losses (DPOTrainer raises on others, but only at the first step).
LOSS_TYPES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot", "aot_unpaired",
              "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm")


def loss_types(given: str) -> list[str]:
    names = [name.strip() for name in given.split(",") if name.strip()]
    unknown = [name for name in names if name not in LOSS_TYPES]
    if unknown or not names:
        raise UserError(f"--loss_type: unknown {unknown or given!r}; choose from {', '.join(LOSS_TYPES)} (comma-separated to combine)")
    return names


def make_parser(prog: str | None = "text2sql-mlops train dpo") -> ArgParser:
    parser = ArgParser(prog=prog, description="LoRA DPO with TRL on preference pairs, from the base model or continuing an SFT adapter.")
    add_flags(parser, DPOSettings)
    return parser


def build_trainer(settings: DPOSettings, rows: list[dict], tokenizer: Any, runtime, output_dir: str, callbacks: list = ()):
    """A ``DPOTrainer`` over tokenized rows (``datasets.dpo_rows``): a fresh LoRA, or the
    ``--init_adapter`` continued with its frozen copy as the reference."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    score_answer_tokens_only()

    class TokenizedDPOTrainer(DPOTrainer):
        """Takes the rows as tokenized by ``datasets.dpo_rows``. (TRL 1.16 always tokenizes the
        text columns itself, with the tokenizer's special tokens on.)"""

        def _prepare_dataset(self, dataset, *args, **kwargs):
            return dataset

    config = DPOConfig(
        **trainer_arguments(settings, runtime, output_dir),
        max_length=settings.max_length,
        beta=settings.beta,
        loss_type=loss_types(settings.loss_type),
    )
    # A fresh LoRA on the base, the --init_adapter LoRA, or (--full_finetune) the weights of the base
    # or of the fully fine-tuned --init_adapter; TRL keeps a frozen copy of the starting policy as the reference.
    model, peft_config = starting_model(settings, runtime)
    trainer = TokenizedDPOTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                                  peft_config=peft_config, callbacks=list(callbacks))
    share_trainer_prefixes(trainer)  # a pair's chosen and rejected rows share its prompt
    return trainer


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops train dpo") -> int:
    started = time.perf_counter()
    settings = from_args(DPOSettings, make_parser(prog).parse_args(argv))
    check_settings(settings)
    if settings.max_prompt_length is not None and settings.max_prompt_length < 1:
        raise UserError(f"--max_prompt_length must be at least 1, got {settings.max_prompt_length}")
    loss_types(settings.loss_type)
    adapter_file = init_adapter_file(settings)
    pairs = [pair for path in settings.pairs for pair in read_pairs(path)]
    refuse_leaks(pairs, eval_split(settings), "train dpo", "pairs", settings.db_root)
    if not pairs:
        raise UserError("train dpo: the pair files hold no pairs")
    # A pair whose answers are the same query (up to whitespace) has a zero DPO gradient: it
    # teaches nothing and only dilutes the batch, so it is dropped and counted.
    distinct = [pair for pair in pairs if pair.chosen.split() != pair.rejected.split()]
    same_answer = len(pairs) - len(distinct)
    if not distinct:
        raise UserError(f"train dpo: all {len(pairs)} pairs have the same chosen and rejected answer; "
                        "mine pairs with `text2sql-mlops pairs mine` or `pairs synth`")

    quiet_libraries()
    tokenizer = load_tokenizer(settings.model)
    rows, too_long = dpo_rows(tokenizer, distinct, settings.max_length, settings.max_prompt_length)
    if not rows:
        limit = f" or a prompt longer than --max_prompt_length {settings.max_prompt_length}" if settings.max_prompt_length else ""
        raise UserError(f"train dpo: all {len(distinct)} pairs are longer than --max_length {settings.max_length} tokens{limit}; raise it")
    runtime = resolve_runtime(settings.bf16, settings.gradient_checkpointing)
    data = {"examples": len(rows), "pairs": len(pairs), "too_long": too_long, "same_answer": same_answer}
    inputs = {path: sha256_file(path) for path in [*settings.pairs, *([adapter_file] if adapter_file else [])]}
    announce("dpo", settings, runtime, data)

    summary = train_and_save("dpo", settings, runtime, lambda out, callbacks: build_trainer(settings, rows, tokenizer, runtime, out, callbacks),
                             inputs, data, started)
    report(summary)
    return 0
