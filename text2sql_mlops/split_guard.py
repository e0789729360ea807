"""The clean-split guard: evaluation examples never reach mining, pairs or training.

An evaluation set (the dev split the pipeline evaluates on) is reduced to three
sets of keys: example ids, normalised questions and database ids. A training
record leaks when ANY of them matches: the same example, the same question
asked again, or a question over a database the evaluation uses (Spider's train
and dev databases are disjoint by design; holding out whole databases is also
how generalisation is estimated on the train split).

Records are examples, trajectories (``id``, ``db_id``, ``question`` at the top)
or pairs (the same keys under ``meta`` as ``example_id``, ``db_id``, ``question``).
Stages call ``refuse_leaks`` before writing anything, so a refused run leaves no
output behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from .errors import UserError


def normalize_question(question: str) -> str:
    return " ".join(question.lower().split())


@dataclass(frozen=True)
class EvalSplit:
    source: str  # how the user named it, for error messages
    ids: frozenset[str]
    questions: frozenset[str]
    db_ids: frozenset[str]


def load_eval_split(path: str, db_root: str | None = None, split: str = "dev") -> EvalSplit:
    """The keys of the evaluation set at ``path`` (JSON, JSONL or a Spider-layout folder's ``split``)."""
    from .data import load_examples

    examples = load_examples(path, db_root, split)
    return EvalSplit(
        source=f"{path} ({split})" if _is_dir(path) else str(path),
        ids=frozenset(example.id for example in examples),
        questions=frozenset(normalize_question(example.question) for example in examples),
        db_ids=frozenset(example.db_id for example in examples),
    )


def _is_dir(path: str) -> bool:
    from pathlib import Path

    return Path(path).is_dir()


def record_keys(record: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(example id, question, db_id) of an example, trajectory or pair record."""
    meta = record.get("meta")
    if isinstance(meta, dict) and "example_id" in meta:
        return meta.get("example_id"), meta.get("question"), meta.get("db_id")
    return record.get("id"), record.get("question"), record.get("db_id")


def leak_reason(record: dict[str, Any], eval_split: EvalSplit) -> str | None:
    """Why ``record`` belongs to the evaluation set, or None when it does not."""
    example, question, db_id = record_keys(record)
    if example is not None and example in eval_split.ids:
        return f"example id {example} is an evaluation example"
    if db_id is not None and db_id in eval_split.db_ids:
        return f"database {db_id!r} is an evaluation database"
    if question is not None and normalize_question(question) in eval_split.questions:
        return f"question {question!r} is an evaluation question"
    return None


def refuse_leaks(records: Iterable[dict[str, Any]], eval_split: EvalSplit | None, where: str, what: str = "records") -> None:
    """Raise one ``UserError`` line if any record belongs to ``eval_split`` (no-op when None)."""
    if eval_split is None:
        return
    leaks = [(index, reason) for index, record in enumerate(records, start=1) if (reason := leak_reason(record, eval_split))]
    if leaks:
        index, reason = leaks[0]
        raise UserError(
            f"{where}: {len(leaks)} {what} belong to the evaluation set {eval_split.source} (first: #{index}, {reason}); "
            "evaluation examples must never reach training: train on another split or hold out other databases"
        )


def exclude_leaks(examples: list, eval_split: EvalSplit | None, where: str) -> list:
    """The examples (``records.Example``) that do not belong to ``eval_split``.

    For the stages that pick training examples from a split (rollout, pairs synth):
    an example sharing a database or a question text with the evaluation set is left
    out before anything is generated, and the count is reported on stderr. Stages
    downstream (mining, merging, training) refuse such records instead: by then a
    leak is a bug, not a selection.
    """
    import sys

    if eval_split is None:
        return list(examples)
    kept, left_out = [], []
    for example in examples:
        reason = leak_reason(example.to_dict(), eval_split)
        if reason:
            left_out.append(reason)
        else:
            kept.append(example)
    if left_out:
        print(f"{where}: left out {len(left_out)} of {len(examples)} examples that overlap the evaluation set "
              f"{eval_split.source} (first: {left_out[0]})", file=sys.stderr)
    return kept
