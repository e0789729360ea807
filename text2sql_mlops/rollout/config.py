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

from ..core.errors import UserError
from ..core.records import Candidate
from ..generation import backend_options, batches_internally, generator_names, parse_option
from ..generation.adapters import is_whole_model_folder
from ..schema.select import PromptConfig
from ..scoring.match import MATCHERS
from .feedback import DETAIL_LEVELS, FEEDBACK_MODES

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
    """Every setting of a rollout; the defaults are the command line's."""

    dataset_path: str  # JSON list, JSONL or Spider-layout folder
    output_dir: str
    db_root: str | None = None  # default: <dataset folder>/database
    split: str = "train"  # for a Spider-layout folder
    tables_json: str | None = None  # default: tables.json next to the dataset, when there is one
    # generation
    generator: str = "mock"  # a registered backend: generation.generator_names()
    # Generation flags (GENERIC_OPTIONS): each goes to the backends that declare it, others ignore it.
    model_path: str | None = None  # a model folder
    adapter_path: str | None = None  # a LoRA adapter folder
    model_name: str | None = None  # the model name a server serves
    base_url: str | None = None  # a server's endpoint, e.g. http://localhost:8000/v1
    api_key_env: str | None = None  # the variable holding the API key
    max_concurrency: int | None = None  # requests in flight
    batch_size: int | None = None  # prompts per forward pass (backend default when unset)
    device_map: str | None = None  # transformers device_map ("auto" shards a big model across GPUs)
    generator_option: tuple[str, ...] = ()  # further KEY=VALUE backend options
    num_samples: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0
    # the repair loop
    max_turns: int = 3  # 1 = one-shot
    feedback_detail: str = "minimal"  # basic | column | minimal
    feedback_mode: str = "error_only"  # error_only | online_visible | result_status | oracle_rows
    repair_scope: str = "online"  # verified | online | online_guarded
    timeout_sec: float = 10.0  # per query
    matcher: str = "official"  # official (Spider's evaluator) | seed (the reference project's; keeps DISTINCT)
    use_gold_when_failed: bool = False  # gold SQL as the training target of unsolved examples
    # the prompt's schema
    schema_mode: str = "bm25_fk"  # full | retrieved | bm25 | bm25_fk
    top_k_tables: int = 6
    fk_hops: int = 1
    sample_rows: int = 0
    schema_format: str = "create_table"  # create_table | compact | seed
    sample_values: int = 0  # distinct values per text column in the schema
    prompt_style: str = "chat"  # chat | seed (prompts.PROMPT_STYLES)
    # which examples, in what pieces
    eval_dataset: str | None = None  # leave out examples overlapping this evaluation set (data/guard.py)
    eval_split: str = "dev"
    eval_same_db_split: str | None = None  # another evaluation split on the training databases (questions guarded)
    eval_db_root: str | None = None
    offset: int = 0
    limit: int | None = None
    shard: str | None = None  # "i/n"
    chunk_size: int | None = None  # examples per durable step and per generate call (None: chunk_size_for)
    sql_workers: int | None = None  # threads running candidates' SQL during the model's next call (None: sql_workers_for)
    # not part of the results
    progress: bool = True
    progress_every: int = 0  # also print one progress line every N examples (logs without a terminal)
    overwrite: bool = False


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
SQL_WORKERS = 4


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
    identity["examples"] = len(example_ids)
    identity["examples_sha256"] = hashlib.sha256("\n".join(example_ids).encode()).hexdigest()
    return identity


# The rollout's generation flags (what a profile's `generation:` section sets) -> the option
# names backends declare. Each backend gets those it declares; the rest are noted and ignored,
# so one profile can switch backends. --generator_option names one backend's option exactly.
GENERIC_OPTIONS = {"model_path": "model_path", "adapter_path": "adapter_path", "model_name": "model", "base_url": "base_url",
                   "api_key_env": "api_key_env", "max_concurrency": "max_concurrency", "batch_size": "batch_size",
                   "device_map": "device_map"}


def _generic_options(config: RolloutConfig) -> dict[str, tuple[str, Any]]:
    """The generation flags given: option name -> (flag, value)."""
    given = {option: (flag, getattr(config, flag)) for flag, option in GENERIC_OPTIONS.items()}
    if config.adapter_path:
        if is_whole_model_folder(config.adapter_path):  # a fully fine-tuned model replaces the base
            given.update(model_path=("adapter_path", config.adapter_path), adapter_path=("adapter_path", None))
    return {option: (flag, value) for option, (flag, value) in given.items() if value is not None}


def ignored_flags(config: RolloutConfig) -> list[str]:
    """The generation flags given that ``config.generator`` has no option for."""
    declared = backend_options(config.generator)
    return sorted({flag for option, (flag, _) in _generic_options(config).items() if option not in declared})


def generator_options(config: RolloutConfig) -> dict[str, Any]:
    """The options ``config.generator`` declares, from the generation flags and --generator_option
    (an option that backend lacks is an error there, naming the ones it has)."""
    declared = backend_options(config.generator)
    options = {option: value for option, (_, value) in _generic_options(config).items() if option in declared}
    if not config.progress and "progress" in declared:
        options["progress"] = False  # a backend's own bars too
    options.update(parse_option(config.generator, item) for item in config.generator_option)
    return options


def default_tables_json(dataset_path: str) -> str | None:
    path = Path(dataset_path)
    candidate = (path if path.is_dir() else path.parent) / "tables.json"
    return str(candidate) if candidate.is_file() else None


def check(config: RolloutConfig) -> None:
    """One-line errors for settings no run could use."""
    for name, value, minimum in (
        ("max_turns", config.max_turns, 1), ("num_samples", config.num_samples, 1), ("max_new_tokens", config.max_new_tokens, 1),
        ("offset", config.offset, 0), ("limit", config.limit if config.limit is not None else 0, 0),
        ("chunk_size", config.chunk_size if config.chunk_size is not None else 1, 1), ("sql_workers", config.sql_workers or 0, 0),
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
    for name, value, choices in (("feedback_detail", config.feedback_detail, DETAIL_LEVELS), ("feedback_mode", config.feedback_mode, FEEDBACK_MODES),
                                 ("repair_scope", config.repair_scope, REPAIR_SCOPES), ("matcher", config.matcher, MATCHERS)):
        if value not in choices:
            raise UserError(f"--{name} {value!r} is not one of: {', '.join(choices)}")
    PromptConfig.of(config).check()
