"""Records that cross stage boundaries, typed in one place.

Every stage reads and writes these as JSONL; the field names are the column
contract between stages (and TRL's names where TRL consumes them).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError


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


# --------------------------------------------------------------------------- rollout (rollout_loop.py writes them)


@dataclass
class Candidate:
    """One sampled answer, executed and scored."""

    text: str  # the completion as generated
    sql: str  # what extract_sql found in it: the SQL executed and scored
    num_tokens: int
    executed: bool  # ran without error in the sandbox
    error: str | None
    error_type: str | None  # feedback.ERROR_TYPES; None when correct
    row_count: int | None  # None when it did not run
    truncated: bool
    schema_valid: bool
    plan: dict[str, int] | None  # query_plan.PlanFlags
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
    "rejected_error_type",  # feedback.ERROR_TYPES of the rejected side; None when it is correct (cost pairs)
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
    """

    id: str
    prompt: list[dict[str, str]]
    chosen: str
    rejected: str
    meta: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def create(cls, prompt: list[dict[str, str]], chosen_sql: str, rejected_sql: str, **meta: Any) -> Pair:
        """A pair from two SQL strings; fills the answer texts, chosen/rejected SQL, margin and id."""
        from ..prompts import format_answer

        chosen, rejected = format_answer(chosen_sql), format_answer(rejected_sql)
        meta = {"chosen_sql": chosen_sql, "rejected_sql": rejected_sql, **meta}
        meta["reward_margin"] = round(meta["chosen_reward"] - meta["rejected_reward"], 10)
        missing = [key for key in PAIR_META_KEYS if key not in meta]
        if missing:
            raise ValueError(f"pair meta lacks {missing}")
        return cls(id=pair_id(prompt, chosen, rejected), prompt=prompt, chosen=chosen, rejected=rejected, meta=meta)

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

        check("id", record["id"], _nonempty_str, "a non-empty string")
        check("prompt", record["prompt"], lambda v: isinstance(v, list) and bool(v), "a non-empty list of chat messages")
        for index, message in enumerate(record["prompt"]):
            check(f"prompt[{index}]", message, lambda v: isinstance(v, dict) and "role" in v and "content" in v,
                  'a message object with "role" and "content"')
            check(f"prompt[{index}].role", message["role"], _nonempty_str, "a non-empty string")
            check(f"prompt[{index}].content", message["content"], lambda v: isinstance(v, str), "a string")
        for name in ("chosen", "rejected"):
            check(name, record[name], _nonempty_str, "a non-empty string")
        for key, (ok, wanted) in _PAIR_META_CHECKS.items():
            check(f"meta.{key}", meta[key], ok, wanted)
        return cls(id=record["id"], prompt=record["prompt"], chosen=record["chosen"], rejected=record["rejected"], meta=meta)


PAIR_RECORD_KEYS = ("id", "prompt", "chosen", "rejected", "meta")


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_TEXT = (lambda v: isinstance(v, str), "a string")
_FLAG = (lambda v: isinstance(v, bool), "true or false")
_NUMBER = (_finite, "a finite number")
# meta key -> (check, what it must be); every key of PAIR_META_KEYS (extra keys, e.g. "mutation", are free)
_PAIR_META_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "pair_type": (_nonempty_str, "a non-empty string"),
    "source": (lambda v: v in ("natural", "synthetic"), '"natural" or "synthetic"'),
    "gold_fallback": _FLAG,
    "example_id": _TEXT, "db_id": _TEXT, "question": _TEXT, "gold_sql": _TEXT, "chosen_sql": _TEXT, "rejected_sql": _TEXT,
    "chosen_reward": _NUMBER, "rejected_reward": _NUMBER, "reward_margin": _NUMBER,
    "turn": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "a turn number (1 or more)"),
    "chosen_executable": _FLAG, "rejected_executable": _FLAG,
    "rejected_error_type": (lambda v: v is None or _nonempty_str(v), "a string or null"),
}
assert set(_PAIR_META_CHECKS) == set(PAIR_META_KEYS)


# The reference project's dpo_pairs.json: a JSON list of {prompt, chosen, rejected, ...} with a
# plain-string prompt. Fields our records need that such a record may lack, and what they get.
REFERENCE_PAIR_DEFAULTS: dict[str, Any] = {
    "pair_type": "reference_pair", "chosen_reward": 1.0, "rejected_reward": 0.0, "turn": 1,
    "chosen_executable": True, "rejected_executable": False, "rejected_error_type": None,
    "example_id": "", "db_id": "", "question": "", "gold_sql": "",
}
_REFERENCE_ALIASES = {"example_id": ("example_id", "id", "qid"), "gold_sql": ("gold_sql", "gold", "query"),
                      "db_id": ("db_id",), "question": ("question",)}


def pair_from_reference(record: Any, where: str) -> tuple[dict[str, Any], list[str]]:
    """One reference ``dpo_pairs.json`` record as a ``Pair`` record, and the meta fields it lacked
    (filled from ``REFERENCE_PAIR_DEFAULTS``). The prompt string becomes one user message and the
    answers stay exactly as written (they are the reference model's training targets)."""
    from ..prompts import extract_sql

    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a pair object, got {type(record).__name__}")
    for key in ("prompt", "chosen", "rejected"):
        if not _nonempty_str(record.get(key)):
            raise UserError(f"{where}: a reference pair needs a non-empty string {key!r}; dpo_pairs.json records hold "
                            "prompt, chosen and rejected texts")
    meta: dict[str, Any] = {}
    missing = []
    for key, default in REFERENCE_PAIR_DEFAULTS.items():
        found = next((record[name] for name in _REFERENCE_ALIASES.get(key, (key,)) if record.get(name) is not None), None)
        if found is None:
            missing.append(key)
            found = default
        meta[key] = str(found) if key in _REFERENCE_ALIASES else found
    source = record.get("source")
    meta["source"] = source if source in ("natural", "synthetic") else (
        "synthetic" if str(meta["pair_type"]).startswith(SYNTHETIC_PREFIX) else "natural")
    meta["gold_fallback"] = bool(record.get("gold_fallback", meta["source"] == "synthetic"))
    meta["chosen_sql"], meta["rejected_sql"] = extract_sql(record["chosen"]), extract_sql(record["rejected"])
    margin = meta["chosen_reward"] - meta["rejected_reward"] if all(
        _finite(meta[k]) for k in ("chosen_reward", "rejected_reward")) else math.nan
    meta["reward_margin"] = round(margin, 10)
    meta["converted_from"] = "reference dpo_pairs.json"
    meta["assumed"] = missing
    prompt = [{"role": "user", "content": record["prompt"]}]
    converted = {"id": pair_id(prompt, record["chosen"], record["rejected"]), "prompt": prompt,
                 "chosen": record["chosen"], "rejected": record["rejected"], "meta": meta}
    Pair.from_dict(converted, where)
    return converted, missing


def read_reference_pairs(path: str | os.PathLike) -> tuple[list[dict[str, Any]], Counter]:
    """Every record of a reference ``dpo_pairs.json`` (a JSON list) as a Pair record, and how many
    records lacked each field."""
    try:
        records = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: invalid JSON ({exc.msg}, line {exc.lineno}); a reference dpo_pairs.json is one JSON list") from None
    if not isinstance(records, list):
        raise UserError(f"{path}: expected a JSON list of pairs, got {type(records).__name__}")
    converted, lacked = [], Counter()
    for index, record in enumerate(records):
        pair, missing = pair_from_reference(record, f"{path}[{index}]")
        converted.append(pair)
        lacked.update(missing)
    return converted, lacked


def read_pair_file(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every record of a pair JSONL file (blank lines skipped), each checked by ``Pair.from_dict``;
    errors name ``path:line``. Records are returned as read, so writers pass them on unchanged."""
    from .fileio import numbered_jsonl

    records = []
    for lineno, record in numbered_jsonl(path):
        Pair.from_dict(record, f"{path}:{lineno}")
        records.append(record)
    return records
