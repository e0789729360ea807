"""What SQLite's ``EXPLAIN QUERY PLAN`` says about the cost of a query.

Each plan row is ``(id, parent, notused, detail)``; rows with the same parent are
the loops of one SELECT, outermost first. The shapes that matter:

- ``SCAN t``: a full scan of ``t``. One per query is normal (every query on a small
  Spider table does it) and is only counted.
- an *inner* full scan: a ``SCAN`` after another ``SCAN``/``SEARCH`` of the same
  SELECT, so ``t`` is read in full once for every row of the outer loop. That is a
  cartesian product, or a join whose condition no index can serve.
  (``a JOIN b ON a.x = b.y`` shows ``SEARCH b USING ... INDEX``; ``FROM a, b``
  without a condition shows ``SCAN a`` then ``SCAN b``.)
- a *looped* full scan: a ``SCAN`` inside a ``CORRELATED ... SUBQUERY``, run again
  for every row of the outer query.
- ``USE TEMP B-TREE``: a sort for ORDER BY, GROUP BY or DISTINCT.

These flags are gold-free: the rollout uses them as guard signals
(``online_guarded``) and for the cost reward (``rollout/rewards.py``).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PlanFlags:
    full_scans: int = 0  # every SCAN of a table
    inner_full_scans: int = 0  # SCANs nested in another loop of the same SELECT
    looped_full_scans: int = 0  # SCANs inside a correlated subquery
    temp_btrees: int = 0  # sorts

    @property
    def cartesian(self) -> bool:
        return self.inner_full_scans > 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def _is_loop(detail: str) -> bool:
    return detail.startswith(("SCAN ", "SEARCH ")) and detail != "SCAN CONSTANT ROW"


def plan_flags(rows: list[tuple]) -> PlanFlags:
    """Flags of a plan given as ``EXPLAIN QUERY PLAN`` rows (id, parent, notused, detail)."""
    parent_of = {row[0]: row[1] for row in rows}
    detail_of = {row[0]: str(row[3]) for row in rows}
    seen_loop: set[int] = set()  # parents that already have an outer loop
    full = inner = looped = sorts = 0
    for node, parent, _, detail in rows:
        detail = str(detail)
        if detail.startswith("USE TEMP B-TREE"):
            sorts += 1
        if not _is_loop(detail):
            continue
        if detail.startswith("SCAN "):
            full += 1
            inner += parent in seen_loop
            looped += _inside_correlated_subquery(node, parent_of, detail_of)
        seen_loop.add(parent)
    return PlanFlags(full_scans=full, inner_full_scans=inner, looped_full_scans=looped, temp_btrees=sorts)


def _inside_correlated_subquery(node: int, parent_of: dict[int, int], detail_of: dict[int, str]) -> bool:
    seen = set()
    while node in parent_of and node not in seen:  # the root's parent is 0, which is no row
        seen.add(node)
        node = parent_of[node]
        if detail_of.get(node, "").startswith("CORRELATED "):
            return True
    return False


def explain(sandbox, db_path: str | os.PathLike, sql: str, timeout: float | None = None) -> PlanFlags | None:
    """The plan flags of ``sql`` (which must be one statement), or None when SQLite cannot plan it."""
    result = sandbox.execute(db_path, f"EXPLAIN QUERY PLAN {sql}", timeout=timeout, max_rows=None)
    return plan_flags(result.rows) if result.ok else None
