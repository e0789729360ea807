"""Records that cross stage boundaries, typed in one place, and their one reader each.

Every stage writes these as JSONL (a rollout's summary as one JSON object); the field
names are the column contract between stages (and TRL's names where TRL consumes them).
Every stage reads them back through ``read_trajectories``, ``read_pairs`` and
``read_summary``, which check each record with its ``from_dict``: a bad record is one
``UserError`` line naming the file and line, the field, what it must be and where good
files come from. ``from_dict`` keeps every value as read, so ``to_dict`` writes a record
back unchanged (same keys, same order, same numbers) and a stage passing records on
(``pairs merge``, ``rollout merge``) writes the bytes it read.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, NoReturn

from .errors import UserError
from .fileio import numbered_jsonl


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


# --------------------------------------------------------------------------- checking a record read back

Check = tuple[Callable[[Any], bool], str]  # (accepts a value, what a value must be)


def nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


_TEXT: Check = (lambda v: isinstance(v, str), "a string")
_NONEMPTY_TEXT: Check = (nonempty_str, "a non-empty string")
_OPTIONAL_TEXT: Check = (lambda v: v is None or isinstance(v, str), "a string or null")
_FLAG: Check = (lambda v: isinstance(v, bool), "true or false")
_NUMBER: Check = (finite_number, "a finite number")  # JSON lets NaN through: it would pass or fail every filter silently
_RATE: Check = (lambda v: v is None or finite_number(v), "a finite number or null")
_COUNT: Check = (_count, "a count (an integer, 0 or more)")
_OPTIONAL_COUNT: Check = (lambda v: v is None or _count(v), "a count or null")
_TURN_NUMBER: Check = (lambda v: _count(v) and v >= 1, "a turn number (1 or more)")
_OBJECT: Check = (lambda v: isinstance(v, dict), "an object")
_OPTIONAL_OBJECT: Check = (lambda v: v is None or isinstance(v, dict), "an object or null")
_TEXTS: Check = (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of strings")
_NONEMPTY_LIST: Check = (lambda v: isinstance(v, list) and bool(v), "a non-empty list")
_MESSAGES: Check = (lambda v: isinstance(v, list) and bool(v), "a non-empty list of chat messages")
_MESSAGE: Check = (lambda v: isinstance(v, dict) and "role" in v and "content" in v, 'a message object with "role" and "content"')


def _shown(value: Any) -> str:
    shown = json.dumps(value, ensure_ascii=False, default=repr)
    return shown if len(shown) <= 80 else shown[:77] + "..."


@dataclass(frozen=True)
class _Reading:
    """One record being read: where it is (``file:line``), what kind it is, and where good
    records come from; the parts of every error line about it."""

    where: str
    kind: str
    source: str

    def fail(self, problem: str) -> NoReturn:
        raise UserError(f"{self.where}: {problem}; {self.source}")

    def check(self, name: str, value: Any, check: Check) -> None:
        ok, wanted = check
        if not ok(value):
            self.fail(f"{name} must be {wanted}, got {_shown(value)}")

    def fields(self, value: Any, path: str, checks: dict[str, Check]) -> dict[str, Any]:
        """``value``, an object holding exactly the keys of ``checks`` (``path``: where it sits in the
        record, "" at the top), each value checked."""
        name = path.rstrip(".") or f"{self.kind} record"
        if not isinstance(value, dict):
            self.fail(f"{name} must be an object, got {_shown(value)}")
        missing = [path + key for key in checks if key not in value]
        if missing:
            self.fail(f"{self.kind} record lacks {', '.join(missing)}")
        unknown = [key for key in value if key not in checks]
        if unknown:
            self.fail(f"{name} has unknown fields {', '.join(map(repr, unknown))}")
        for key, check in checks.items():
            self.check(path + key, value[key], check)
        return value

    def messages(self, name: str, value: Any) -> None:
        self.check(name, value, _MESSAGES)
        for index, message in enumerate(value):
            self.check(f"{name}[{index}]", message, _MESSAGE)
            self.check(f"{name}[{index}].role", message["role"], _NONEMPTY_TEXT)
            self.check(f"{name}[{index}].content", message["content"], _TEXT)


def _names(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]


# --------------------------------------------------------------------------- rollout (rollout/loop.py writes them)

TRAJECTORY_SOURCE = "give a trajectories.jsonl as `rollout` or `eval` wrote it (records.Trajectory records)"


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


_CANDIDATE_CHECKS: dict[str, Check] = {
    "text": _TEXT, "sql": _TEXT, "num_tokens": _COUNT, "executed": _FLAG, "error": _OPTIONAL_TEXT, "error_type": _OPTIONAL_TEXT,
    "row_count": _OPTIONAL_COUNT, "truncated": _FLAG, "schema_valid": _FLAG, "plan": _OPTIONAL_OBJECT, "signals": _TEXTS,
    "correct": _FLAG, "reward": _NUMBER, "cost_reward": _NUMBER, "total_reward": _NUMBER,
}


@dataclass
class Turn:
    turn: int
    messages: list[dict[str, str]]  # the exact chat prompt
    candidates: list[Candidate]
    selected: int  # the candidate the repair continues from, or the final answer
    feedback: str | None = None  # shown in the next turn; None when the episode ended here

    @property
    def answer(self) -> Candidate:
        """The selected candidate: what the repair continues from, or the final answer."""
        return self.candidates[self.selected]

    @property
    def any_correct(self) -> bool:
        """Whether some candidate matches gold (with several samples, what makes the turn correct)."""
        return any(candidate.correct for candidate in self.candidates)


_TURN_CHECKS: dict[str, Check] = {"turn": _TURN_NUMBER, "messages": _MESSAGES, "candidates": _NONEMPTY_LIST,
                                  "selected": _COUNT, "feedback": _OPTIONAL_TEXT}
_TARGET: Check = (lambda v: v is None or (isinstance(v, dict) and set(v) == {"sql", "source"} and isinstance(v["sql"], str)
                                          and v["source"] in ("model", "gold")),
                  'null or {"sql": a string, "source": "model" or "gold"}')


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
    # How the turns' messages were laid out (prompts.PROMPT_STYLES): answers mined or trained
    # from them are written in the same style. Files from before the field read as "chat".
    prompt_style: str = "chat"
    # The gold result had more rows than a rollout fetches (rollout/loop.py MAX_ROWS), so
    # gold_row_count is that cap, not the count. Files from before the field read as False.
    gold_truncated: bool = False

    @property
    def first(self) -> Turn:
        return self.turns[0]

    @property
    def last(self) -> Turn:
        return self.turns[-1]

    @property
    def solved(self) -> bool:
        """Whether any candidate of any turn matches gold."""
        return any(turn.any_correct for turn in self.turns)

    def candidates(self) -> Iterator[Candidate]:
        """Every candidate of every turn, in turn order."""
        return (candidate for turn in self.turns for candidate in turn.candidates)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: Any, where: str) -> Trajectory:
        """The trajectory a JSON record holds, or one ``UserError`` naming ``where`` (``file:line``) and the field.

        Every field a rollout writes must be there, of its type, and nothing else (a misspelt
        field is an error, not a default); values are kept as read, so ``to_dict`` gives ``record`` back.
        """
        reading = _Reading(where, "trajectory", TRAJECTORY_SOURCE)
        if isinstance(record, dict):  # written before these fields existed
            record = {"prompt_style": "chat", "gold_truncated": False, **record}
        reading.fields(record, "", _TRAJECTORY_CHECKS)
        turns = []
        for position, value in enumerate(record["turns"]):
            path = f"turns[{position}]."
            reading.fields(value, path, _TURN_CHECKS)
            reading.messages(path + "messages", value["messages"])
            candidates = [Candidate(**reading.fields(candidate, f"{path}candidates[{index}].", _CANDIDATE_CHECKS))
                          for index, candidate in enumerate(value["candidates"])]
            if value["selected"] >= len(candidates):
                reading.fail(f"{path}selected is {value['selected']}, but the turn has {len(candidates)} candidates")
            turns.append(Turn(**{**value, "candidates": candidates}))
        return cls(**{**record, "turns": turns})


_TRAJECTORY_CHECKS: dict[str, Check] = {
    "index": _COUNT, "id": _TEXT, "db_id": _TEXT, "question": _TEXT, "gold": _TEXT, "gold_error": _OPTIONAL_TEXT,
    "gold_row_count": _OPTIONAL_COUNT, "schema_tables": _TEXTS, "turns": _NONEMPTY_LIST, "stop_reason": _NONEMPTY_TEXT,
    "final_sql": _TEXT, "final_correct": _FLAG, "target": _TARGET, "prompt_style": _NONEMPTY_TEXT,
    "gold_truncated": _FLAG,
}
assert list(_CANDIDATE_CHECKS) == _names(Candidate) and list(_TURN_CHECKS) == _names(Turn)
assert list(_TRAJECTORY_CHECKS) == _names(Trajectory)


def trajectories_file(path: str | os.PathLike) -> Path:
    """A rollout folder's trajectories.jsonl, or the file itself."""
    given = Path(path)
    file = given / "trajectories.jsonl" if given.is_dir() else given
    if not file.is_file():
        raise UserError(f"no trajectories at {path}: give a finished rollout folder or its trajectories.jsonl")
    return file


def read_trajectories(path: str | os.PathLike) -> list[Trajectory]:
    """Every trajectory of a rollout folder (or of its trajectories.jsonl), each checked by
    ``Trajectory.from_dict``; errors name ``file:line``."""
    file = trajectories_file(path)
    return [Trajectory.from_dict(record, f"{file}:{lineno}") for lineno, record in numbered_jsonl(file)]


# --------------------------------------------------------------------------- a rollout's summary.json (rollout/metrics.py)

SUMMARY_SOURCE = "give the summary.json of a finished `rollout` or `eval` (records.Summary)"


@dataclass
class Summary:
    """Every number of a rollout (``rollout/metrics.py`` says what each means), as ``summary.json`` holds them.

    Nested groups stay objects: ``repair``, ``error_types``, ``turns`` and ``rewards`` hold counts
    and rates, ``configuration`` what the final numbers depend on, ``config`` the run identity
    (``rollout.run_identity``) and ``timing`` the throughput of the invocations that made it.
    """

    examples: int
    candidates: int
    configuration: dict[str, Any]
    first_turn_ex: float | None
    final_ex_oracle: float | None  # uses gold: an upper bound, never a prediction
    final_ex_oracle_configuration: str | None
    final_ex_strict: float | None  # no gold information at inference
    final_ex_strict_configuration: str | None
    first_turn_candidate_ex: float | None
    candidate_ex: float | None
    executable_rate: float | None  # over all candidates of all turns
    schema_valid_rate: float | None
    first_turn_executable_rate: float | None
    final_executable_rate: float | None
    repair: dict[str, Any]
    error_types: dict[str, dict[str, int]]  # first_turn, all_candidates, final: count per scoring.errors.ERROR_TYPES
    bad_gold: int
    turns: dict[str, Any]
    rewards: dict[str, float | None]
    generated_tokens: int
    gold_fallback_targets: int
    config: dict[str, Any]
    timing: dict[str, Any] | None = None  # None until the run is written (rollout.command)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: Any, where: str) -> Summary:
        """The summary a JSON object holds, or one ``UserError`` naming ``where`` and the field."""
        reading = _Reading(where, "summary", SUMMARY_SOURCE)
        return cls(**reading.fields(record, "", _SUMMARY_CHECKS))


_SUMMARY_CHECKS: dict[str, Check] = {
    "examples": _COUNT, "candidates": _COUNT, "configuration": _OBJECT,
    "first_turn_ex": _RATE, "final_ex_oracle": _RATE, "final_ex_oracle_configuration": _OPTIONAL_TEXT,
    "final_ex_strict": _RATE, "final_ex_strict_configuration": _OPTIONAL_TEXT,
    **dict.fromkeys(("first_turn_candidate_ex", "candidate_ex", "executable_rate", "schema_valid_rate",
                     "first_turn_executable_rate", "final_executable_rate"), _RATE),
    "repair": _OBJECT, "error_types": _OBJECT, "bad_gold": _COUNT, "turns": _OBJECT, "rewards": _OBJECT,
    "generated_tokens": _COUNT, "gold_fallback_targets": _COUNT, "config": _OBJECT, "timing": _OBJECT,
}
assert list(_SUMMARY_CHECKS) == _names(Summary)


def read_summary(path: str | os.PathLike) -> Summary:
    """The summary.json of a rollout or eval folder (or the file itself), checked by ``Summary.from_dict``."""
    given = Path(path)
    file = given / "summary.json" if given.is_dir() else given
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read {file}: {exc.strerror}; {SUMMARY_SOURCE}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{file}: not a JSON summary ({exc}); {SUMMARY_SOURCE}") from None
    return Summary.from_dict(record, str(file))


# --------------------------------------------------------------------------- preference pairs (pairs/ writes them)

# Natural pair types are mined from trajectories (pairs/mine.py); synthetic ones are
# "synthetic_<mutation>" (pairs/synth.py). Order: most to least preferred by mining.
NATURAL_PAIR_TYPES = (
    "repair_correct_vs_repair_failed",
    "self_repair_success_vs_failed_attempt",
    "first_turn_correct_sample_vs_failed_sample",
    "gold_vs_failed_attempt",
    "gold_vs_failed_repair",
    "correct_low_cost_vs_correct_high_cost",
)
SYNTHETIC_PREFIX = "synthetic_"
PAIR_SOURCE = "pair files hold records.Pair records as `pairs mine`, `pairs synth` and `pairs merge` write them"


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
    ``pairs/build.py`` makes them from SQL (``build_pair``). ``meta`` holds the keys of
    ``PAIR_META_CHECKS``, in the order its writer chose, and any others a writer adds
    (``pairs synth``: ``mutation``).
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
        training): the fields present, each of the right type, and no other top-level field
        (extra information goes in ``meta``).
        """
        reading = _Reading(where, "pair", PAIR_SOURCE)
        if not isinstance(record, dict):
            reading.fail(f"expected a pair object, got {type(record).__name__}")
        missing = [key for key in _PAIR_CHECKS if key not in record]
        meta = record.get("meta")
        if isinstance(meta, dict):
            missing += [f"meta.{key}" for key in PAIR_META_CHECKS if key not in meta]
        elif "meta" in record:
            missing.append("meta (an object)")
        if missing:
            reading.fail(f"pair record lacks {', '.join(missing)}")
        reading.fields(record, "", _PAIR_CHECKS)
        reading.messages("prompt", record["prompt"])
        for key, check in PAIR_META_CHECKS.items():
            reading.check(f"meta.{key}", meta[key], check)
        return cls(**record)


_PAIR_CHECKS: dict[str, Check] = {"id": _NONEMPTY_TEXT, "prompt": _MESSAGES, "chosen": _NONEMPTY_TEXT,
                                  "rejected": _NONEMPTY_TEXT, "meta": _OBJECT}
assert list(_PAIR_CHECKS) == _names(Pair)
# The meta keys every pair carries, and what each must be (a writer may add others, e.g. "mutation"):
PAIR_META_CHECKS: dict[str, Check] = {
    "pair_type": _NONEMPTY_TEXT,  # one of NATURAL_PAIR_TYPES or SYNTHETIC_PREFIX + mutation
    "source": (lambda v: v in ("natural", "synthetic"), '"natural" or "synthetic"'),  # mined, or mutated gold
    "gold_fallback": _FLAG,  # chosen is the gold SQL (gold_vs_failed_attempt, synthetic): a target, never a prediction
    "example_id": _TEXT, "db_id": _TEXT, "question": _TEXT, "gold_sql": _TEXT,
    "chosen_sql": _TEXT, "rejected_sql": _TEXT,
    # total rewards (rule + cost), margin = chosen - rejected
    "chosen_reward": _NUMBER, "rejected_reward": _NUMBER, "reward_margin": _NUMBER,
    "turn": _TURN_NUMBER,  # the turn whose prompt the pair uses (1 = first turn)
    "chosen_executable": _FLAG, "rejected_executable": _FLAG,
    # scoring.errors.ERROR_TYPES of the rejected side; None when it is correct (cost pairs)
    "rejected_error_type": (lambda v: v is None or nonempty_str(v), "a string or null"),
}


def read_pairs(path: str | os.PathLike) -> list[Pair]:
    """Every pair of a pair JSONL file (blank lines skipped), each checked by ``Pair.from_dict``;
    errors name ``path:line``."""
    if not Path(path).exists():
        raise UserError(f"pair file not found: {path}")
    if Path(path).is_dir():
        raise UserError(f"{path} is a folder; give a pair file (JSONL of records.Pair)")
    return [Pair.from_dict(record, f"{path}:{lineno}") for lineno, record in numbered_jsonl(path)]
