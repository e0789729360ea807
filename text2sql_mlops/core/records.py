"""Records that cross stage boundaries, typed in one place.

Every stage reads and writes these as JSONL; the field names are the column
contract between stages (and TRL's names where TRL consumes them).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError
from .fileio import numbered_jsonl, read_jsonl


def example_id(db_id: str, question: str, gold_sql: str) -> str:
    """Stable id of an example: the same (db, question, gold SQL) always hashes the same.

    Used for resume, joins and the clean-split guard, so it must not depend on
    file order or on the folder the dataset was loaded from.
    """
    key = "\x1f".join((db_id.strip(), " ".join(question.split()), " ".join(gold_sql.split())))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


@dataclass
class Example:
    """One question over one SQLite database, with its gold SQL."""

    id: str
    db_id: str
    question: str
    query: str  # gold SQL
    db_path: str  # resolved path to the .sqlite file
    extra: dict[str, Any] = field(default_factory=dict)  # fields we carry but do not interpret

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Example:
        return cls(**{k: record[k] for k in ("id", "db_id", "question", "query", "db_path")}, extra=record.get("extra", {}))


# --------------------------------------------------------------------------- rollout (rollout/loop.py writes them)


@dataclass
class Candidate:
    """One sampled answer, executed and scored."""

    text: str  # the completion as generated
    sql: str  # what extract_sql found in it: the SQL executed and scored
    num_tokens: int
    executed: bool  # ran without error in the sandbox
    error: str | None
    error_type: str | None  # scoring.errors.ERROR_TYPES; None when correct
    row_count: int | None  # None when it did not run
    truncated: bool
    schema_valid: bool
    plan: dict[str, int] | None  # sql.plan.PlanFlags
    signals: list[str]  # guard signals that fired (gold-free)
    correct: bool  # official EX against gold
    reward: float  # rule reward
    cost_reward: float
    total_reward: float


@dataclass
class Turn:
    turn: int
    messages: list[dict[str, str]]  # the exact chat prompt
    candidates: list[Candidate]
    selected: int  # the candidate the repair continues from, or the final answer
    feedback: str | None = None  # shown in the next turn; None when the episode ended here


TRAJECTORY_KEYS = ("id", "db_id", "question", "gold", "turns")


@dataclass
class Trajectory:
    index: int  # position in the dataset; outputs are in this order
    id: str
    db_id: str
    question: str
    gold: str
    gold_error: str | None  # the gold SQL fails: a bad-gold example, never correct
    gold_row_count: int | None
    schema_tables: list[str]  # the tables the prompt shows
    turns: list[Turn] = field(default_factory=list)
    stop_reason: str = "max_turns"
    final_sql: str = ""  # the model's own answer: the selected candidate of the last turn
    final_correct: bool = False
    # What a training stage should learn for this example: the first correct candidate
    # (source "model"), else the gold SQL with --use_gold_when_failed (source "gold").
    # A gold target is never a prediction: no metric reads it.
    target: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- preference pairs (pairs/ writes them)

# Natural pair types are mined from trajectories (pairs/mine.py); synthetic ones are
# "synthetic_<mutation>" (pairs/synth.py). Order: most to least preferred by mining.
NATURAL_PAIR_TYPES = (
    "repair_correct_vs_repair_failed",
    "self_repair_success_vs_failed_attempt",
    "first_turn_correct_sample_vs_failed_sample",
    "gold_vs_failed_attempt",
    "correct_low_cost_vs_correct_high_cost",
)
SYNTHETIC_PREFIX = "synthetic_"

# meta keys every pair carries (synthetic pairs add "mutation"):
PAIR_META_KEYS = (
    "pair_type",  # one of NATURAL_PAIR_TYPES or SYNTHETIC_PREFIX + mutation
    "source",  # "natural" (mined) or "synthetic" (mutated gold)
    "gold_fallback",  # chosen is the gold SQL (gold_vs_failed_attempt, synthetic): a target, never a prediction
    "example_id", "db_id", "question", "gold_sql",
    "chosen_sql", "rejected_sql",
    "chosen_reward", "rejected_reward", "reward_margin",  # total rewards (rule + cost), margin = chosen - rejected
    "turn",  # the turn whose prompt the pair uses (1 = first turn)
    "chosen_executable", "rejected_executable",
    "rejected_error_type",  # scoring.errors.ERROR_TYPES of the rejected side; None when it is correct (cost pairs)
)


def pair_id(prompt: list[dict[str, str]], chosen: str, rejected: str) -> str:
    """Stable id of a pair: the same prompt, chosen and rejected always hash the same,
    so exact duplicates share an id."""
    key = json.dumps([prompt, chosen, rejected], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


@dataclass
class Pair:
    """One DPO preference pair, in TRL's column names.

    ``prompt`` is the chat exactly as the model saw it (``prompts.build_messages``);
    ``chosen`` and ``rejected`` are assistant answers in the exact format the model is
    asked to produce (``prompts.format_answer``), so training and inference agree.
    ``pairs/build.py`` makes them from SQL (``build_pair``).
    """

    id: str
    prompt: list[dict[str, str]]
    chosen: str
    rejected: str
    meta: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: Any, where: str) -> Pair:
        """The pair a JSON record holds, or one ``UserError`` naming ``where`` (``file:line``) and the field.

        The one check of pair records, for every stage that reads pair files (merge, report,
        training): the fields present, and each of the right type. Rewards and the margin must
        be finite numbers (JSON lets NaN through, and it would pass or fail every filter silently).
        """
        if not isinstance(record, dict):
            raise UserError(f"{where}: expected a pair object, got {type(record).__name__}")
        missing = [key for key in PAIR_RECORD_KEYS if key not in record]
        meta = record.get("meta")
        if isinstance(meta, dict):
            missing += [f"meta.{key}" for key in PAIR_META_KEYS if key not in meta]
        elif "meta" in record:
            missing.append("meta (an object)")
        if missing:
            raise UserError(f"{where}: pair record lacks {', '.join(missing)}; pair files hold records.Pair "
                            "records as `pairs mine`, `pairs synth` and `pairs merge` write them")

        def check(name: str, value: Any, ok: Callable[[Any], bool], wanted: str) -> None:
            if not ok(value):
                shown = json.dumps(value, ensure_ascii=False, default=repr)
                shown = shown if len(shown) <= 80 else shown[:77] + "..."
                raise UserError(f"{where}: {name} must be {wanted}, got {shown}")

        check("id", record["id"], nonempty_str, "a non-empty string")
        check("prompt", record["prompt"], lambda v: isinstance(v, list) and bool(v), "a non-empty list of chat messages")
        for index, message in enumerate(record["prompt"]):
            check(f"prompt[{index}]", message, lambda v: isinstance(v, dict) and "role" in v and "content" in v,
                  'a message object with "role" and "content"')
            check(f"prompt[{index}].role", message["role"], nonempty_str, "a non-empty string")
            check(f"prompt[{index}].content", message["content"], lambda v: isinstance(v, str), "a string")
        for name in ("chosen", "rejected"):
            check(name, record[name], nonempty_str, "a non-empty string")
        for key, (ok, wanted) in _PAIR_META_CHECKS.items():
            check(f"meta.{key}", meta[key], ok, wanted)
        return cls(id=record["id"], prompt=record["prompt"], chosen=record["chosen"], rejected=record["rejected"], meta=meta)


PAIR_RECORD_KEYS = ("id", "prompt", "chosen", "rejected", "meta")


def nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_TEXT = (lambda v: isinstance(v, str), "a string")
_FLAG = (lambda v: isinstance(v, bool), "true or false")
_NUMBER = (finite_number, "a finite number")
# meta key -> (check, what it must be); every key of PAIR_META_KEYS (extra keys, e.g. "mutation", are free)
_PAIR_META_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "pair_type": (nonempty_str, "a non-empty string"),
    "source": (lambda v: v in ("natural", "synthetic"), '"natural" or "synthetic"'),
    "gold_fallback": _FLAG,
    "example_id": _TEXT, "db_id": _TEXT, "question": _TEXT, "gold_sql": _TEXT, "chosen_sql": _TEXT, "rejected_sql": _TEXT,
    "chosen_reward": _NUMBER, "rejected_reward": _NUMBER, "reward_margin": _NUMBER,
    "turn": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "a turn number (1 or more)"),
    "chosen_executable": _FLAG, "rejected_executable": _FLAG,
    "rejected_error_type": (lambda v: v is None or nonempty_str(v), "a string or null"),
}
assert set(_PAIR_META_CHECKS) == set(PAIR_META_KEYS)


def read_pair_file(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every record of a pair JSONL file (blank lines skipped), each checked by ``Pair.from_dict``;
    errors name ``path:line``. Records are returned as read, so writers pass them on unchanged."""
    records = []
    for lineno, record in numbered_jsonl(path):
        Pair.from_dict(record, f"{path}:{lineno}")
        records.append(record)
    return records


def trajectories_file(path: str) -> Path:
    """A rollout folder's trajectories.jsonl, or the file itself."""
    given = Path(path)
    file = given / "trajectories.jsonl" if given.is_dir() else given
    if not file.is_file():
        raise UserError(f"no trajectories at {path}: give a finished rollout folder or its trajectories.jsonl")
    return file


def read_trajectories(paths: list[str]) -> list[dict]:
    """Every trajectory of rollout folders (or their trajectories.jsonl), each checked to be one; errors name the record."""
    trajectories = []
    for path in paths:
        file = trajectories_file(path)
        for lineno, record in enumerate(read_jsonl(file), start=1):
            missing = [key for key in TRAJECTORY_KEYS if key not in record]
            if missing or not record.get("turns"):
                raise UserError(f"{file}: record {lineno} is not a trajectory (missing {missing or ['turns']}); "
                                "give the trajectories.jsonl a rollout wrote")
            trajectories.append(record)
    return trajectories
