"""What a rollout can be set to: ``RolloutConfig``, the repair scopes, the run identity, generator options.

Repair scopes (``REPAIR_SCOPES``) decide when an example is repaired again:

  ==============  =========================================================  ==========
  verified        until some candidate matches gold (the seed's setting)     uses gold
  online          while the selected candidate fails to execute               gold-free
  online_guarded  while the selected candidate raises a guard signal: an      gold-free
                  error, schema-invalid SQL, an empty result, a cartesian or
                  looped full scan in EXPLAIN QUERY PLAN
  ==============  =========================================================  ==========

A configuration uses gold (is an *oracle* configuration) when its scope or its
feedback mode (``feedback.FEEDBACK_MODES``) does (``uses_gold``). ``check`` turns
settings no run could use into one error line each, before any work; the repair loop
itself is ``loop.py``, the command ``command.py``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..core.cliutil import count_or_all, setting
from ..core.errors import UserError
from ..core.records import Candidate
from ..data.guard import guard_setting
from ..generation import backend_options, batches_internally, generator_names, parse_option
from ..generation.adapters import is_whole_model_folder, weights_sha256
from ..schema.select import PromptConfig, prompt_setting
from ..scoring.match import MATCHERS
from .feedback import DETAIL_LEVELS, FEEDBACK_MODES
from .store import output_dir as output_dir_type

# --------------------------------------------------------------------------- repair scopes


def _no_candidate_correct(candidates: list[Candidate], selected: Candidate) -> bool:
    return not any(c.correct for c in candidates)


def _selected_failed(candidates: list[Candidate], selected: Candidate) -> bool:
    return not selected.executed


def _selected_flagged(candidates: list[Candidate], selected: Candidate) -> bool:
    return bool(selected.signals)


@dataclass(frozen=True)
class RepairScope:
    name: str
    uses_gold: bool
    needs_repair: Callable[[list[Candidate], Candidate], bool]
    stop_reason: str  # why an episode that needs no repair stops


REPAIR_SCOPES = {
    scope.name: scope
    for scope in (
        RepairScope("verified", True, _no_candidate_correct, "correct"),
        RepairScope("online", False, _selected_failed, "executed"),
        RepairScope("online_guarded", False, _selected_flagged, "no_guard_signal"),
    )
}


def uses_gold(repair_scope: str, feedback_mode: str) -> bool:
    """Whether a configuration is an oracle one: gold reaches the prompts or the stopping rule."""
    return REPAIR_SCOPES[repair_scope].uses_gold or FEEDBACK_MODES[feedback_mode].uses_gold


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class RolloutConfig:
    """Every setting of a rollout, one field per flag of `text2sql-mlops rollout` (help and defaults here)."""

    dataset_path: str = setting(None, "JSON list, JSONL or Spider-layout folder", required=True, aliases=("--dataset",))
    output_dir: str = setting(None, "folder for run.json and the outputs", required=True, type=output_dir_type, aliases=("--out",))
    db_root: str | None = setting(None, "folder of <db_id>/<db_id>.sqlite (default: <dataset folder>/database)")
    split: str = setting("train", "split of a Spider-layout folder")
    tables_json: str | None = setting(None, "Spider tables.json (default: tables.json next to the dataset, if any)")
    # generation
    generator: str = setting("mock", f"{', '.join(generator_names())}")
    # Generation flags (GENERIC_OPTIONS): each goes to the backends that declare it, others ignore it.
    # Their flags are the command's (help from the backends' own declarations).
    model_path: str | None = setting(None, "a model folder", cli=False)
    adapter_path: str | None = setting(None, "a LoRA adapter folder", cli=False)
    model_name: str | None = setting(None, "the model name a server serves", cli=False)
    base_url: str | None = setting(None, "a server's endpoint, e.g. http://localhost:8000/v1", cli=False)
    api_key_env: str | None = setting(None, "the variable holding the API key", cli=False)
    max_concurrency: int | None = setting(None, "requests in flight", cli=False)
    batch_size: int | None = setting(None, "prompts per forward pass (backend default when unset)", cli=False)
    device_map: str | None = setting(None, "transformers device_map (auto shards a big model across GPUs)", cli=False)
    generator_option: tuple[str, ...] = setting((), "further KEY=VALUE backend options", cli=False)
    num_samples: int = setting(1, "candidates per prompt", type=int)
    temperature: float = setting(0.0, "0 = greedy", type=float)
    top_p: float = setting(1.0, "nucleus sampling", type=float)
    max_new_tokens: int = setting(256, "tokens generated per answer at most", type=int)
    seed: int = setting(0, "sampling seed", type=int)
    # the repair loop
    max_turns: int = setting(3, "1 = one-shot", type=int)
    feedback_detail: str = setting("minimal", "basic, column or minimal")
    feedback_mode: str = setting("error_only", "error_only, online_visible (gold-free), result_status, oracle_rows (use gold)")
    repair_scope: str = setting("online", "verified (uses gold), online, online_guarded")
    repair_adapter_path: str | None = setting(
        None, "answer the repair turns (2 and later) with this model instead of the first turn's: a LoRA adapter on "
              "the same base or a whole fine-tuned model folder (e.g. `train sft --init_adapter` on repair chats; hf only)")
    repair_prompts_only: bool = setting(
        False, "answer each repair turn by repeating the failed query, with no model call: the run records every "
               "failing answer's repair prompt at the cost of its first turns (rollout_repair; no repair is measured)",
        action="store_true")
    timeout_sec: float = setting(10.0, "seconds per query", type=float)
    matcher: str = setting("official", "how a candidate is judged correct: official (Spider's evaluator) or seed (the "
                                       "reference project's: sorted rows, rounded floats, DISTINCT kept)")
    use_gold_when_failed: bool = setting(False, "gold SQL as the training target of unsolved examples (never a prediction)",
                                         action="store_true")
    # the prompt's schema
    schema_mode: str = prompt_setting("schema_mode")
    top_k_tables: int = prompt_setting("top_k_tables")
    fk_hops: int = prompt_setting("fk_hops")
    sample_rows: int = prompt_setting("sample_rows")
    schema_format: str = prompt_setting("schema_format")
    sample_values: int = prompt_setting("sample_values")
    prompt_style: str = prompt_setting("prompt_style")
    # which examples, in what pieces
    eval_dataset: str | None = guard_setting("eval_dataset")
    eval_split: str = guard_setting("eval_split")
    eval_same_db_split: str | None = guard_setting("eval_same_db_split")
    eval_db_root: str | None = guard_setting("eval_db_root")
    offset: int = setting(0, "skip this many examples", type=int)
    limit: int | None = setting(None, "at most this many examples after --offset, or 'all' (default: all)", type=count_or_all)
    spread: bool = setting(False, "take the --limit examples evenly spaced over the split (every database of a Spider-layout "
                                  "split) instead of the first ones", action="store_true")
    shard: str | None = setting(None, "run every n-th example, starting with the i-th (1-based)", metavar="i/n")
    chunk_size: int | None = setting(None, "examples per durable step and per generate call (default: 64, or up to 1024 "
                                           "for generators that batch requests themselves: vllm, openai)", type=int)
    sql_workers: int | None = setting(None, "threads executing candidates' SQL while the model generates another chunk's "
                                            "turn; 0 runs it between generate calls (default: 1 with a GPU or a server, "
                                            "0 with a model on the CPU)", type=int)
    # not part of the results
    progress: bool = setting(True, "a progress bar on stderr", cli=False)  # the command's flag is --no_progress
    progress_every: int = setting(0, "also print a progress line every N examples", type=int, metavar="N")
    overwrite: bool = setting(False, "discard another run's files in --output_dir", action="store_true")


# Settings that never change a trajectory, left out of the run identity.
# (The evaluation set only removes examples, which the hash of the selected ids records.)
NOT_IN_IDENTITY = ("output_dir", "progress", "progress_every", "device_map", "overwrite", "api_key_env", "max_concurrency", "eval_dataset", "eval_split", "eval_db_root",
                    "eval_same_db_split", "sql_workers")

# Examples per chunk when --chunk_size is not given. A backend that batches one call at a time
# (hf) gets 64 prompts a call; one that schedules requests itself (vllm's continuous batching,
# a server behind openai) gets every pending prompt of a turn, up to WHOLE_TURN_CHUNK examples
# per durable step, so a resumed run loses at most one such step.
DEFAULT_CHUNK = 64
WHOLE_TURN_CHUNK = 1024


# Threads that run candidates' SQL while the model answers another chunk, when --sql_workers is
# not given and the generator leaves the CPU free (a GPU, a server); 0 next to a model on the CPU.
# One: with a model that takes 0.5 s a call, 512 Spider questions took 11.9 s serially, 10.8 s
# with one worker and 11.6 s with four (their Python work contends for the GIL;
# bench/bench_rollout_overlap.py --emulate-gpu 0.5, 2026-12-05).
SQL_WORKERS = 1


def sql_workers_for(config: RolloutConfig, generator_frees_cpu: bool) -> int:
    if config.sql_workers is not None:
        return config.sql_workers
    return SQL_WORKERS if generator_frees_cpu else 0


def chunk_size_for(config: RolloutConfig) -> int:
    if config.chunk_size is not None:
        return config.chunk_size
    return WHOLE_TURN_CHUNK if batches_internally(config.generator) else DEFAULT_CHUNK


def run_identity(config: RolloutConfig, example_ids: list[str]) -> dict[str, Any]:
    """What makes two runs the same run: result-changing settings and the examples selected
    (before sharding, so every shard of a run shares it with the unsharded run)."""
    identity = {key: value for key, value in asdict(config).items() if key not in NOT_IN_IDENTITY}
    # A generation flag the backend ignores cannot change a trajectory (a profile's batch_size for openai).
    identity.update(dict.fromkeys(ignored_flags(config)))
    identity["generator_option"] = list(config.generator_option)
    for flag, unset in (("repair_adapter_path", None), ("repair_prompts_only", False)):
        if identity[flag] == unset:
            del identity[flag]  # so runs without it keep the identity they had before it existed
    for flag in ("adapter_path", "repair_adapter_path"):
        if identity.get(flag):
            # A path alone named an adapter retrained in place: an eval of the new weights said
            # "complete; nothing to do" and kept the old numbers, or resumed mixing the two.
            identity[flag.replace("_path", "_sha256")] = weights_sha256(identity[flag])
    if identity.get("model_path") and (Path(identity["model_path"]) / "training_summary.json").is_file():
        identity["model_sha256"] = weights_sha256(identity["model_path"])  # a fully fine-tuned model, evaluated as the model
    identity["examples"] = len(example_ids)
    identity["examples_sha256"] = hashlib.sha256("\n".join(example_ids).encode()).hexdigest()
    return identity


# The rollout's generation flags (what a profile's `generation:` section sets) -> the option
# names backends declare. Each backend gets those it declares; the rest are noted and ignored,
# so one profile can switch backends. --generator_option names one backend's option exactly.
GENERIC_OPTIONS = {"model_path": "model_path", "adapter_path": "adapter_path", "model_name": "model", "base_url": "base_url",
                   "api_key_env": "api_key_env", "max_concurrency": "max_concurrency", "batch_size": "batch_size",
                   "device_map": "device_map"}


def _generic_options(config: RolloutConfig, repair: bool = False) -> dict[str, tuple[str, Any]]:
    """The generation flags given: option name -> (flag, value); with ``repair``, those of the
    repair turns' model (``--repair_adapter_path`` in place of ``--adapter_path``)."""
    given = {option: (flag, getattr(config, flag)) for flag, option in GENERIC_OPTIONS.items()}
    adapter_flag = "repair_adapter_path" if repair else "adapter_path"
    adapter = getattr(config, adapter_flag)
    given["adapter_path"] = (adapter_flag, adapter)
    if adapter and is_whole_model_folder(adapter):  # a fully fine-tuned model replaces the base
        given.update(model_path=(adapter_flag, adapter), adapter_path=(adapter_flag, None))
    return {option: (flag, value) for option, (flag, value) in given.items() if value is not None}


def ignored_flags(config: RolloutConfig) -> list[str]:
    """The generation flags given that ``config.generator`` has no option for."""
    declared = backend_options(config.generator)
    return sorted({flag for option, (flag, _) in _generic_options(config).items() if option not in declared})


def generator_options(config: RolloutConfig, repair: bool = False) -> dict[str, Any]:
    """The options ``config.generator`` declares, from the generation flags and --generator_option
    (an option that backend lacks is an error there, naming the ones it has); with ``repair``,
    those of the model that answers the repair turns."""
    declared = backend_options(config.generator)
    options = {option: value for option, (_, value) in _generic_options(config, repair).items() if option in declared}
    if not config.progress and "progress" in declared:
        options["progress"] = False  # a backend's own bars too
    options.update(parse_option(config.generator, item) for item in config.generator_option)
    return options


def check(config: RolloutConfig) -> None:
    """One-line errors for settings no run could use."""
    for name, value, minimum in (
        ("max_turns", config.max_turns, 1), ("num_samples", config.num_samples, 1), ("max_new_tokens", config.max_new_tokens, 1),
        ("offset", config.offset, 0), ("limit", config.limit if config.limit is not None else 0, 0),
        ("chunk_size", config.chunk_size if config.chunk_size is not None else 1, 1), ("sql_workers", config.sql_workers or 0, 0),
        ("progress_every", config.progress_every, 0),
    ):
        if value < minimum:
            raise UserError(f"--{name} must be at least {minimum}, got {value}")
    # Written so that NaN fails every test: a NaN or infinite timeout would reach the sandbox.
    if not (0 <= config.temperature < math.inf and 0 < config.top_p <= 1 and 0 < config.timeout_sec < math.inf):
        raise UserError(f"--temperature must be >= 0, --top_p in (0, 1] and --timeout_sec a positive, finite number of seconds; "
                        f"got {config.temperature:g}, {config.top_p:g} and {config.timeout_sec:g}")
    if config.generator not in generator_names():
        raise UserError(f"--generator {config.generator!r} is not one of: {', '.join(generator_names())}")
    generator_options(config)  # a bad --generator_option fails before any work
    if config.repair_prompts_only:
        if config.repair_adapter_path is not None:
            raise UserError("--repair_prompts_only answers the repair turns without a model, and --repair_adapter_path "
                            "with a repair model; give one of them")
        if config.max_turns < 2:
            raise UserError("--repair_prompts_only records repair turns, and --max_turns 1 has none; give --max_turns 2")
    if config.repair_adapter_path is not None:
        # Two engines of vLLM would each claim most of the GPU; a server takes one model per name.
        if config.generator != "hf":
            raise UserError(f"--repair_adapter_path needs --generator hf (it loads a second model in-process); "
                            f"the {config.generator} generator cannot answer turns with two models")
        if config.max_turns < 2:
            raise UserError("--repair_adapter_path answers repair turns, and --max_turns 1 has none; give --max_turns 2 or more")
        if not Path(config.repair_adapter_path).is_dir():
            raise UserError(f"--repair_adapter_path {config.repair_adapter_path}: no such folder; give the output "
                            "folder of a training (a LoRA adapter or a whole model)")
    for name, value, choices in (("feedback_detail", config.feedback_detail, DETAIL_LEVELS), ("feedback_mode", config.feedback_mode, FEEDBACK_MODES),
                                 ("repair_scope", config.repair_scope, REPAIR_SCOPES), ("matcher", config.matcher, MATCHERS)):
        if value not in choices:
            raise UserError(f"--{name} {value!r} is not one of: {', '.join(choices)}")
    PromptConfig.of(config).check()
