"""What running one query showed, and the kind of failure it was: the error taxonomy.

``observe`` runs a query once (read-only, then ``EXPLAIN QUERY PLAN`` when it ran) and
keeps what anything downstream may need: the error, the first rows, the row count and
the plan flags. From that alone (gold-free) come the guard signals of ``online_guarded``
repair (``Execution.signals``); against the gold result, ``outcome_type`` names how a
wrong candidate failed (``ERROR_TYPES``), the taxonomy of the rollout's metrics, the
pairs' ``rejected_error_type`` and the reports. Feedback text is ``rollout/feedback.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..sql.plan import PlanFlags, explain

ERROR_TYPES = (
    "no_such_column", "no_such_table", "syntax", "wrong_result", "wrong_row_count", "empty_result", "timeout", "other",
)
GUARD_SIGNALS = ("error", "schema_invalid", "empty_result", "cartesian", "looped_full_scan")
FEEDBACK_ROWS = 3  # rows of a result quoted in feedback

_SYNTAX_MARKERS = ("syntax error", "incomplete input", "unrecognized token", "rejected: no sql statement")
_NOT_READ_ONLY = "rejected: only read-only queries"
SQLITE_STATEMENTS = frozenset(
    """ALTER ANALYZE ATTACH BEGIN COMMIT CREATE DELETE DETACH DROP END INSERT PRAGMA REINDEX RELEASE REPLACE
    ROLLBACK SAVEPOINT SELECT UPDATE UPSERT VACUUM VALUES WITH""".split()
)
# SQLite's messages for names it cannot resolve: the query does not fit the schema.
_UNRESOLVED = {"no such column: ": "column", "no such table: ": "table", "ambiguous column name: ": "ambiguous"}


def classify_error(error: str) -> str:
    """The error type of a failed query, from SQLite's (or the sandbox's) message."""
    lowered = error.lower()
    if lowered.startswith("no such column"):
        return "no_such_column"
    if lowered.startswith("no such table"):
        return "no_such_table"
    if lowered.startswith("timeout"):
        return "timeout"
    if any(marker in lowered for marker in _SYNTAX_MARKERS):
        return "syntax"
    if lowered.startswith(_NOT_READ_ONLY):
        # The sandbox refuses a statement by its first word before SQLite parses it:
        # a misspelled SELECT is a syntax error, a real write statement is not.
        first_word = error.rpartition("starts with ")[2].strip("'\"").upper()
        return "other" if first_word in SQLITE_STATEMENTS else "syntax"
    return "other"


def unresolved_name(error: str | None) -> tuple[str, str] | None:
    """(kind, name) for a name SQLite could not resolve: kind is column, table or ambiguous."""
    for prefix, kind in _UNRESOLVED.items():
        if error and error.startswith(prefix):
            return kind, error[len(prefix):].strip()
    return None


def is_schema_valid(error: str | None) -> bool:
    """Whether SQLite parsed the query and resolved every table and column name.

    A query can be schema-valid and still fail at run time (timeout) or on other
    compile errors (misused aggregate); a syntax error means nothing was resolved.
    """
    return error is None or (unresolved_name(error) is None and classify_error(error) != "syntax")


# --------------------------------------------------------------------------- observing a query


@dataclass(frozen=True)
class Execution:
    """What running one query showed; gold-free."""

    ok: bool
    error: str | None
    rows: tuple[tuple, ...]  # the first FEEDBACK_ROWS rows
    row_count: int  # rows fetched (a lower bound when truncated)
    truncated: bool
    plan: PlanFlags | None  # None when the query did not run

    @property
    def signals(self) -> tuple[str, ...]:
        """The guard signals that fire, in ``GUARD_SIGNALS`` order."""
        fired = {
            "error": not self.ok,
            "schema_invalid": not is_schema_valid(self.error),
            "empty_result": self.ok and self.row_count == 0,
            "cartesian": bool(self.plan and self.plan.cartesian),
            "looped_full_scan": bool(self.plan and self.plan.looped_full_scans),
        }
        return tuple(signal for signal in GUARD_SIGNALS if fired[signal])


def observe(sandbox, db_path: str | os.PathLike, sql: str, timeout: float | None = None, max_rows: int | None = 10_000) -> Execution:
    """Run ``sql`` read-only, then plan it when it ran."""
    result = sandbox.execute(db_path, sql, timeout=timeout, max_rows=max_rows)
    plan = explain(sandbox, db_path, sql, timeout) if result.ok else None
    rows = tuple(tuple(row) for row in result.rows[:FEEDBACK_ROWS])
    return Execution(result.ok, result.error, rows, len(result.rows), result.truncated, plan)


@dataclass(frozen=True)
class GoldResult:
    """The verdict against gold and the gold result; only modes that use gold see it."""

    match: bool
    error: str | None  # the gold query itself failed
    rows: tuple[tuple, ...] = ()
    row_count: int = 0
    truncated: bool = False  # the gold result has more rows than were fetched (row_count is the cap)

    @classmethod
    def of(cls, ran: Execution, match: bool = False, error: str | None = None) -> GoldResult:
        """What running the gold query showed (``ran``), with the verdict and the bad-gold error."""
        return cls(match, error, ran.rows, ran.row_count, ran.truncated)


def outcome_type(ran: Execution, gold: GoldResult) -> str:
    """The error type of a candidate that is not correct (``ERROR_TYPES``).

    A candidate that ran against a gold query that fails counts as ``other``: its
    result cannot be judged.
    """
    if not ran.ok:
        return classify_error(ran.error or "")
    if gold.error is not None:
        return "other"
    if ran.row_count == 0 and gold.row_count > 0:
        return "empty_result"
    if ran.truncated and gold.truncated:  # both past the cap: the counts are unknown, the rows differ
        return "wrong_result"
    if ran.row_count != gold.row_count or ran.truncated != gold.truncated:
        return "wrong_row_count"
    return "wrong_result"
