"""Rewards of one candidate: the seed's rule reward plus a query-plan cost reward.

Rule reward (correctness uses gold: rewards are training signals, never metrics):

  ===============================================  ==========================
  correct at turn 1                                1.0
  correct at turn t >= 2 (self-corrected)          0.7 - 0.1 * (t - 2)
  executable but wrong, before the final turn      0.2
  failed (syntax, schema, timeout...), before
  the final turn                                   -0.2
  wrong at the final turn (t == max_turns)         -0.5
  ===============================================  ==========================

Cost reward (gold-free, from ``EXPLAIN QUERY PLAN``, see ``sql/plan.py``): 0 for a
plan with nothing wasteful, minus 0.1 per inner full scan (cartesian product),
minus 0.1 per full scan repeated by a correlated subquery, minus 0.02 per
temporary sort, floored at -0.3; 0 for a candidate that did not run. A single full
scan costs nothing: on Spider-sized tables it is how every query runs.

The total reward is their sum.
"""

from __future__ import annotations

from ..sql.plan import PlanFlags

COST_PER_INNER_SCAN = 0.1
COST_PER_LOOPED_SCAN = 0.1
COST_PER_SORT = 0.02
COST_FLOOR = -0.3


def rule_reward(correct: bool, executable: bool, turn: int, max_turns: int) -> float:
    if correct:
        return 1.0 if turn == 1 else round(0.7 - 0.1 * (turn - 2), 10)
    if turn >= max_turns:
        return -0.5
    return 0.2 if executable else -0.2


def cost_reward(plan: PlanFlags | None) -> float:
    if plan is None:
        return 0.0
    cost = COST_PER_INNER_SCAN * plan.inner_full_scans + COST_PER_LOOPED_SCAN * plan.looped_full_scans + COST_PER_SORT * plan.temp_btrees
    return round(max(COST_FLOOR, -cost), 10) if cost else 0.0
