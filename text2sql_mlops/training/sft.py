"""``train sft``: LoRA supervised fine-tuning on execution-verified SQL with TRL's ``SFTTrainer``.

    text2sql-mlops train sft --model models/smollm2-135m-instruct --trajectories runs/train \\
        [--pairs pairs/merged.jsonl] [--init_adapter adapters/sft_gold] --out adapters/sft --eval_dataset data/spider

Targets: correct candidates (first-turn and repair prompts) and runnable gold SQL of
the trajectories, plus the chosen side of ``--pairs`` (``datasets.py``). The loss
covers the answer tokens only (completion-only), EOS included, so the model learns
to stop where inference stops. A batch's shared prompt prefix is read once per step, and
``--group_by_prefix`` makes each batch one database's questions (``prefixes.py``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..core.cliutil import ArgParser, from_args
from ..core.errors import UserError
from ..core.records import read_pairs, read_trajectories, trajectories_file
from ..data.guard import exclude_leaks, refuse_evaluation_runs, refuse_leaks, rollout_db_roots
from ..data.load import default_tables_json, load_examples, spider_split_files
from ..rollout.feedback import DETAIL_LEVELS, FEEDBACK_MODES
from ..schema.select import PromptConfig
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
from .config import SFTSettings, add_flags
from .datasets import dataset_targets, sft_rows, sft_targets
from .device import resolve_runtime, score_answer_tokens_only
from .prefixes import PrefixGroupedSampler, share_trainer_prefixes
from .repair_examples import repair_targets


def make_parser(prog: str | None = "text2sql-mlops train sft") -> ArgParser:
    parser = ArgParser(prog=prog, description="LoRA SFT with TRL on the verified-correct SQL of rollout trajectories "
                                              "(and the chosen answers of pair files).")
    add_flags(parser, SFTSettings)
    return parser


def build_trainer(settings: SFTSettings, rows: list[dict], tokenizer: Any, runtime, output_dir: str, callbacks: list = ()):
    """An ``SFTTrainer`` over pre-tokenized rows (``datasets.sft_rows``) with a fresh LoRA."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    score_answer_tokens_only()

    class PrefixSFTTrainer(SFTTrainer):
        """With --group_by_prefix, batches of questions that share their prompt's prefix."""

        def _get_train_sampler(self, train_dataset=None):
            if not settings.group_by_prefix:
                return super()._get_train_sampler(train_dataset)
            dataset = self.train_dataset if train_dataset is None else train_dataset
            # TRL turned our completion_mask into labels (-100 on the prompt): the prompt ends at the first label.
            prompts = [ids[: next((i for i, label in enumerate(labels) if label != -100), len(ids))]
                       for ids, labels in zip(dataset["input_ids"], dataset["labels"])]
            return PrefixGroupedSampler(prompts, self.args.train_batch_size, self.args.seed)

    config = SFTConfig(
        **trainer_arguments(settings, runtime, output_dir),
        max_length=settings.max_length,
        completion_only_loss=True,  # labels from our completion_mask: the prompt is context, not target
        packing=False,
        train_sampling_strategy="group_by_length" if settings.group_by_length else "random",
    )
    model, peft_config = starting_model(settings, runtime)  # a fresh LoRA, the base's weights, or --init_adapter's
    trainer = PrefixSFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows),
                               processing_class=tokenizer, peft_config=peft_config, callbacks=list(callbacks))
    share_trainer_prefixes(trainer)
    return trainer


def prompt_config(settings: SFTSettings):
    """The schema settings of --dataset prompts, checked as `rollout` checks them."""
    return PromptConfig.of(settings).check()


def check_repair_settings(settings: SFTSettings) -> None:
    if not 0.0 <= settings.repair_fraction <= 1.0:
        raise UserError(f"--repair_fraction must be between 0 and 1, got {settings.repair_fraction}")
    if settings.repair_fraction and not settings.dataset:
        raise UserError("--repair_fraction builds repair targets from --dataset; give --dataset or drop --repair_fraction")
    if settings.feedback_detail not in DETAIL_LEVELS:
        raise UserError(f"--feedback_detail must be one of {', '.join(DETAIL_LEVELS)}, got {settings.feedback_detail!r}")
    if settings.feedback_mode not in FEEDBACK_MODES:
        raise UserError(f"--feedback_mode must be one of {', '.join(FEEDBACK_MODES)}, got {settings.feedback_mode!r}")


def dataset_examples(settings: SFTSettings) -> list:
    """The examples of --dataset (none without it); tables.json defaults to the one next to it."""
    if not settings.dataset:
        return []

    prompt_config(settings)  # bad schema settings fail before anything is loaded
    settings.tables_json = settings.tables_json or default_tables_json(settings.dataset, settings.split)
    return load_examples(settings.dataset, None, settings.split)


def dataset_files(settings: SFTSettings) -> list[str]:
    """The files of --dataset that the inputs' hashes cover (the split's JSON, tables.json)."""
    if not settings.dataset:
        return []

    path = Path(settings.dataset)
    files = [str(f) for f in spider_split_files(path, settings.split)] if path.is_dir() else [str(path)]
    return files + ([settings.tables_json] if settings.tables_json else [])


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops train sft") -> int:
    started = time.perf_counter()
    settings = from_args(SFTSettings, make_parser(prog).parse_args(argv))
    check_settings(settings)
    check_repair_settings(settings)
    if settings.group_by_prefix and settings.group_by_length:
        raise UserError("train sft: --group_by_prefix and --group_by_length each choose the batches; give one of them")
    if not (settings.trajectories or settings.pairs or settings.dataset):
        raise UserError("train sft: give something to learn from: --dataset (a training split), --trajectories and/or --pairs")
    adapter_file = init_adapter_file(settings)
    refuse_evaluation_runs(settings.trajectories, "train sft")
    trajectories = [trajectory for path in settings.trajectories for trajectory in read_trajectories(path)]
    pairs = [pair for path in settings.pairs for pair in read_pairs(path)]
    guard = eval_split(settings)
    # --dataset picks examples from a split, as rollout and synth do: those that overlap the
    # evaluation set are left out (with a count), not refused. Spider repeats generic
    # questions across databases ("How many students are there?"), so the train split of a
    # held-out-database layout always shares a few questions with dev.
    picked = dataset_examples(settings)
    examples = exclude_leaks(picked, guard, "train sft")
    if picked and not examples:
        raise UserError(f"train sft: all {len(picked)} examples of --dataset {settings.dataset} ({settings.split}) belong to the "
                        f"evaluation set {guard.source}; train on another split or hold out other databases")
    db_roots = [*settings.db_root, *rollout_db_roots(settings.trajectories)]
    refuse_leaks(trajectories, guard, "train sft", "trajectories", db_roots)
    refuse_leaks(pairs, guard, "train sft", "pairs", db_roots)
    gold, bad_gold = dataset_targets(examples, prompt_config(settings), settings.tables_json) if examples else ([], 0)
    repairs, repair_counts = repair_targets(examples, prompt_config(settings), settings.tables_json, settings.repair_fraction,
                                            settings.feedback_detail, settings.feedback_mode, settings.seed) if examples and settings.repair_fraction else ([], {})
    targets, counts = sft_targets(trajectories, pairs, gold, repairs)
    counts.update(repair_counts)
    counts["dataset_bad_gold"] = bad_gold
    counts["dataset_left_out"] = len(picked) - len(examples)
    if not targets:
        raise UserError("train sft: nothing to learn: the inputs hold no correct candidate, no runnable gold SQL and no pair")

    quiet_libraries()
    tokenizer = load_tokenizer(settings.model)
    rows, too_long = sft_rows(tokenizer, targets, settings.max_length)
    if not rows:
        raise UserError(f"train sft: all {len(targets)} examples are longer than --max_length {settings.max_length} tokens; raise it")
    runtime = resolve_runtime(settings.bf16, settings.gradient_checkpointing)
    data = {"examples": len(rows), **counts, "too_long": too_long}
    files = [*(str(trajectories_file(path)) for path in settings.trajectories), *settings.pairs, *dataset_files(settings),
             *([adapter_file] if adapter_file else [])]
    inputs = {path: sha256_file(path) for path in files}
    announce("sft", settings, runtime, data)

    summary = train_and_save("sft", settings, runtime, lambda out, callbacks: build_trainer(settings, rows, tokenizer, runtime, out, callbacks),
                             inputs, data, started)
    report(summary)
    return 0
