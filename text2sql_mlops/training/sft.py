"""``train sft``: LoRA supervised fine-tuning on execution-verified SQL with TRL's ``SFTTrainer``.

    text2sql-mlops train sft --model models/smollm2-135m-instruct --trajectories runs/train \\
        [--pairs pairs/merged.jsonl] --out adapters/sft --eval_dataset data/spider

Targets: correct candidates (first-turn and repair prompts) and runnable gold SQL of
the trajectories, plus the chosen side of ``--pairs`` (``datasets.py``). The loss
covers the answer tokens only (completion-only), EOS included, so the model learns
to stop where inference stops.
"""

from __future__ import annotations

import time
from typing import Any

from ..cliutil import ArgParser
from ..errors import UserError
from .config import SFTSettings, add_flags, from_args


def make_parser(prog: str | None = "text2sql-mlops train sft") -> ArgParser:
    parser = ArgParser(prog=prog, description="LoRA SFT with TRL on the verified-correct SQL of rollout trajectories "
                                              "(and the chosen answers of pair files).")
    add_flags(parser, SFTSettings)
    return parser


def build_trainer(settings: SFTSettings, rows: list[dict], tokenizer: Any, runtime, output_dir: str, callbacks: list = ()):
    """An ``SFTTrainer`` over pre-tokenized rows (``datasets.sft_rows``) with a fresh LoRA."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from .common import load_model, lora_config, trainer_arguments
    from .device import score_answer_tokens_only

    score_answer_tokens_only()

    config = SFTConfig(
        **trainer_arguments(settings, runtime, output_dir),
        max_length=settings.max_length,
        completion_only_loss=True,  # labels from our completion_mask: the prompt is context, not target
        packing=False,
    )
    return SFTTrainer(model=load_model(settings.model, runtime), args=config, train_dataset=Dataset.from_list(rows),
                      processing_class=tokenizer, peft_config=lora_config(settings), callbacks=list(callbacks))


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops train sft") -> int:
    from ..pairs.mine import read_trajectories, trajectories_file
    from ..split_guard import refuse_leaks
    from .common import announce, check_settings, eval_split, load_tokenizer, quiet_libraries, report, sha256_file, train_and_save
    from .datasets import read_pairs, sft_rows, sft_targets
    from .device import resolve_runtime

    started = time.perf_counter()
    settings = from_args(SFTSettings, make_parser(prog).parse_args(argv))
    check_settings(settings)
    trajectories, pairs = read_trajectories(settings.trajectories), read_pairs(settings.pairs)
    guard = eval_split(settings)
    refuse_leaks(trajectories, guard, "train sft", "trajectories")
    refuse_leaks(pairs, guard, "train sft", "pairs")
    targets, counts = sft_targets(trajectories, pairs)
    if not targets:
        raise UserError("train sft: nothing to learn: the trajectories hold no correct candidate and no runnable gold SQL, and no --pairs were given")

    quiet_libraries()
    tokenizer = load_tokenizer(settings.model)
    rows, too_long = sft_rows(tokenizer, targets, settings.max_length)
    if not rows:
        raise UserError(f"train sft: all {len(targets)} examples are longer than --max_length {settings.max_length} tokens; raise it")
    runtime = resolve_runtime(settings.bf16, settings.gradient_checkpointing)
    data = {"examples": len(rows), **counts, "too_long": too_long}
    files = [str(trajectories_file(path)) for path in settings.trajectories] + list(settings.pairs)
    inputs = {path: sha256_file(path) for path in files}
    announce("sft", settings, runtime, data)

    summary = train_and_save("sft", settings, runtime, lambda out, callbacks: build_trainer(settings, rows, tokenizer, runtime, out, callbacks),
                             inputs, data, started)
    report(summary)
    return 0
