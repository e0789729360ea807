"""Records that cross stage boundaries, typed in one place.

Every stage reads and writes these as JSONL; the field names are the column
contract between stages (and TRL's names where TRL consumes them).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any


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
    def from_dict(cls, record: dict[str, Any]) -> "Example":
        return cls(**{k: record[k] for k in ("id", "db_id", "question", "query", "db_path")}, extra=record.get("extra", {}))
