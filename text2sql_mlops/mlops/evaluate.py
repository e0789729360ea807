"""``text2sql-mlops eval``: evaluate a base model or an adapter on a held-out split.

    text2sql-mlops eval --adapter models:/text2sql-sft-dpo@champion --dataset_path data/demo \\
        --output_dir outputs/eval/champion
    text2sql-mlops eval --model_path models/smollm2-135m-instruct --dataset_path data/demo --output_dir outputs/eval/base

An evaluation is a rollout (every ``rollout`` flag works) with evaluation defaults:
the dev split, greedy decoding, and the verified repair scope with gold-free
``error_only`` feedback. That one run yields every row of the seed's table: the first
turn is the one-shot EX, ``final_ex_oracle`` the oracle-assisted repair, and
``final_ex_strict`` the gold-free repair (rollout/metrics.py derives it for greedy runs).

``--adapter`` takes an adapter folder or a registry URI (``models:/NAME@ALIAS``,
``models:/NAME/VERSION``), downloaded once (``registry.resolve_adapter``). Without
``--model_path`` the base model is the one in the adapter's config; a base model that
is not on this machine is a clear error naming it.

Besides the rollout's files, ``examples.jsonl`` has one flat row per example (the
table ``track --table`` logs to MLflow) and ``analysis.json`` breaks the result down for error
analysis: EX by Spider hardness, the final answers' error types, and what repair did.

``--reference_settings`` adds the reference project's two other rows, each a rollout in a
subfolder that replays this run's answers (``generation/replay.py``: greedy answers are
read back, so only prompts this run never sent reach the model):

- ``result_status/``: verified scope with ``result_status`` feedback, the reference's
  default Final EX. It tells the model whether its result matches gold: oracle, reported
  as ``final_ex_oracle_result_status``.
- ``verifier/``: ``online_guarded`` scope with ``online_visible`` feedback, the reference's
  "verifier-constrained" row: gold never consulted, reported as ``final_ex_strict_verifier``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..core.cliutil import flag
from ..core.errors import UserError
from ..core.fileio import write_json, write_jsonl
from ..core.records import Trajectory, read_trajectories
from ..data.guard import EVAL_COMMAND
from ..generation import backend_options, backends_with, create_generator
from ..generation.adapters import base_model_of, is_whole_model_folder
from ..generation.replay import ReplayGenerator, recorded_answers
from ..rollout.command import HEADLINE, config_from_args, run_rollout
from ..rollout.command import make_parser as rollout_parser
from ..rollout.config import RolloutConfig, generator_options
from ..rollout.metrics import strict_turn
from ..rollout.store import EVAL_REPORTS
from ..scoring.hardness import LEVELS, hardness
from .registry import resolve_adapter

EVAL_DEFAULTS = {"split": "dev", "repair_scope": "verified", "feedback_mode": "error_only", "temperature": 0.0}


def make_parser(prog: str | None = "text2sql-mlops eval"):
    parser = rollout_parser(prog)
    parser.description = ("Evaluate a base model or a LoRA adapter (a folder or models:/NAME@ALIAS) with the rollout "
                          "engine; writes the rollout's files plus analysis.json. Defaults: dev split, greedy, verified "
                          "scope with error_only feedback (one-shot, strict and oracle numbers from one run).")
    flag(parser, "adapter", help="adapter folder or registry URI (models:/NAME@ALIAS, models:/NAME/VERSION, runs:/...)")
    flag(parser, "reference_settings", action="store_true",
         help="also run the reference project's settings, replaying this run's answers: result_status feedback "
              "(oracle) in OUTPUT_DIR/result_status, online_guarded scope with online_visible feedback (strict) in "
              "OUTPUT_DIR/verifier")
    parser.set_defaults(generator="hf", **EVAL_DEFAULTS)
    return parser


def resolve_models(adapter: str | None, model_path: str | None, generator: str,
                   adapter_path: str | None = None) -> tuple[str | None, str | None]:
    """(model_path, adapter_path) ready for the generator, with clear errors for missing pieces.

    ``adapter`` is ``--adapter`` (a folder or a registry URI), ``adapter_path`` the rollout's
    ``--adapter_path`` (a folder): one of them at most, and only for a generator that loads
    adapters (one that declares an ``adapter_path`` option); neither is ever dropped silently."""
    if adapter and adapter_path:
        raise UserError("give --adapter or --adapter_path, not both (--adapter takes a folder or models:/NAME@ALIAS)")
    loads_adapters = "adapter_path" in backend_options(generator)
    if (adapter or adapter_path) and not loads_adapters:
        raise UserError(f"--generator {generator} does not load LoRA adapters, so --adapter{'' if adapter else '_path'} "
                        f"would be ignored; use --generator {' or '.join(backends_with('adapter_path'))}, or drop the adapter")
    adapter_path = resolve_adapter(adapter or adapter_path) if (adapter or adapter_path) else None
    if not loads_adapters:
        return model_path, adapter_path
    if adapter_path is not None and is_whole_model_folder(adapter_path):
        return adapter_path, None  # a fully fine-tuned model: it replaces the base model
    if model_path is None and adapter_path is not None:
        model_path = base_model_of(adapter_path)
        if not model_path:
            raise UserError(f"the adapter at {adapter_path} does not name its base model; pass --model_path")
        if not Path(model_path).is_dir():
            raise UserError(f"the adapter's base model {model_path!r} is not available on this machine; "
                            "prepare or copy it there (e.g. `text2sql-mlops model prepare --out PATH`), or pass --model_path")
    if model_path is None:
        raise UserError("give --model_path (a local model folder) or --adapter")
    if not Path(model_path).is_dir():
        raise UserError(f"base model {model_path!r} not found; prepare it with `text2sql-mlops model prepare --out {model_path}`")
    return model_path, adapter_path


def _hardness(trajectory: Trajectory) -> str:
    try:
        return hardness(trajectory.gold)
    except Exception:  # a gold query the hardness parser cannot read
        return "unparsed"


def hardness_analysis(trajectories: list[Trajectory]) -> dict[str, Any]:
    """EX by hardness level, the final answers' error types, and repair transitions."""
    by_level: dict[str, list[Trajectory]] = defaultdict(list)
    for t in trajectories:
        by_level[_hardness(t)].append(t)

    def ex(ts: list[Trajectory], turn: int) -> float | None:
        return sum(t.turns[turn].any_correct for t in ts) / len(ts) if ts else None

    final_types = Counter((t.last.answer.error_type or "correct") for t in trajectories)
    transitions = Counter()
    for t in trajectories:
        first, last = t.first.answer, t.last.answer
        if len(t.turns) > 1:
            transitions[f"{first.error_type or 'correct'} -> {last.error_type or 'correct'}"] += 1
    return {
        "examples": len(trajectories),
        "by_hardness": {level: {"examples": len(by_level[level]), "first_turn_ex": ex(by_level[level], 0),
                                "final_ex": ex(by_level[level], -1)}
                        for level in (*LEVELS, "unparsed") if by_level.get(level)},
        "final_error_types": dict(final_types.most_common()),
        "repair_transitions": dict(transitions.most_common()),
    }


def example_rows(trajectories: list[Trajectory]) -> list[dict[str, Any]]:
    """One flat row per example (the per-example table MLflow shows): question, database,
    hardness, gold, each turn's selected SQL with its error type and verdict, and the final
    verdicts, strict (where a gold-free run would have stopped) and oracle (the last turn)."""
    rows = []
    for t in trajectories:
        row: dict[str, Any] = {"id": t.id, "db_id": t.db_id, "hardness": _hardness(t), "question": t.question, "gold": t.gold}
        for turn in t.turns:
            row[f"turn{turn.turn}_sql"] = turn.answer.sql
            row[f"turn{turn.turn}_error_type"] = turn.answer.error_type or "correct"
            row[f"turn{turn.turn}_correct"] = turn.answer.correct
        row["turns"] = len(t.turns)
        row["final_correct_strict"] = strict_turn(t).any_correct
        row["final_correct_oracle"] = t.last.any_correct
        rows.append(row)
    return rows


# The reference project's other rows: (subfolder, repair scope, feedback mode, the summary's
# number for that kind of configuration, the name it is reported under).
REFERENCE_SETTINGS = (
    ("result_status", "verified", "result_status", "final_ex_oracle", "final_ex_oracle_result_status"),
    ("verifier", "online_guarded", "online_visible", "final_ex_strict", "final_ex_strict_verifier"),
)


def run_reference_settings(config: RolloutConfig, trajectories: list[Trajectory]) -> dict[str, Any]:
    """The reference settings' numbers, each from a rollout that replays ``trajectories``' answers."""
    answers = recorded_answers(trajectories)  # a first-turn prompt and a repair prompt never share a key
    generator = ReplayGenerator(answers, lambda: create_generator(config.generator, **generator_options(config)))
    repair_generator = generator if config.repair_adapter_path is None else ReplayGenerator(
        answers, lambda: create_generator(config.generator, **generator_options(config, repair=True)))
    replays = [generator] if repair_generator is generator else [generator, repair_generator]
    numbers: dict[str, Any] = {}
    try:
        for folder, scope, mode, number, name in REFERENCE_SETTINGS:
            setting = replace(config, repair_scope=scope, feedback_mode=mode, output_dir=str(Path(config.output_dir) / folder))
            summary = run_rollout(setting, generator=generator, repair_generator=repair_generator, command=EVAL_COMMAND)
            numbers[name], numbers[f"{name}_configuration"] = getattr(summary, number), getattr(summary, f"{number}_configuration")
    finally:
        for replay in replays:
            replay.close()
    numbers["replayed_answers"] = sum(g.replayed for g in replays)
    numbers["generated_answers"] = sum(g.generated for g in replays)
    return numbers


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops eval") -> int:

    args = make_parser(prog).parse_args(argv)
    config = config_from_args(args)
    if config.repair_prompts_only:
        raise UserError("eval measures repairs, and --repair_prompts_only makes none (it only records repair prompts, "
                        "for `rollout`); drop it")
    model_path, adapter_path = resolve_models(args.adapter, config.model_path, config.generator, config.adapter_path)
    config = replace(config, model_path=model_path, adapter_path=adapter_path)
    if config.repair_adapter_path:  # a folder or a registry URI, as --adapter
        config = replace(config, repair_adapter_path=resolve_adapter(config.repair_adapter_path))
    if args.reference_settings and (config.temperature > 0 or config.num_samples != 1):
        raise UserError("eval --reference_settings replays greedy answers: use --temperature 0 --num_samples 1")
    summary = run_rollout(config, command=EVAL_COMMAND)
    trajectories = read_trajectories(config.output_dir)
    analysis = hardness_analysis(trajectories)
    examples_file, analysis_file = (Path(config.output_dir) / name for name in EVAL_REPORTS)
    write_jsonl(examples_file, example_rows(trajectories))
    analysis["adapter"] = args.adapter
    analysis["model_path"] = model_path
    analysis["repair_adapter"] = config.repair_adapter_path
    reference = run_reference_settings(config, trajectories) if args.reference_settings else {}
    if reference:
        analysis["reference_settings"] = reference
    write_json(analysis_file, analysis)
    headline = {k: getattr(summary, k) for k in HEADLINE}
    headline.update({key: reference[key] for *_, key in REFERENCE_SETTINGS if key in reference})
    print(json.dumps({"output_dir": config.output_dir, "adapter": args.adapter, **headline}))
    if config.max_turns > 1 and summary.final_ex_strict is None:
        print("eval: note: this configuration reports no strict final EX (sampling or gold-derived feedback)", file=sys.stderr)
    return 0
