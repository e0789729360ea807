"""Typed rollout records for tests (``records.Candidate``, ``Turn``, ``Trajectory``, ``Summary``): a
test names the fields it is about, every other field gets a plain value of the type a rollout writes."""

from __future__ import annotations

from dataclasses import replace

from text2sql_mlops.core.records import Candidate, Summary, Trajectory, Turn
from text2sql_mlops.rollout.metrics import rollout_summary


def candidate(sql: str = "SELECT 1", correct: bool = False, executed: bool = True, reward: float = 0.0, cost: float = 0.0,
              error: str | None = None, error_type: str | None = None, signals: tuple[str, ...] = (), **fields) -> Candidate:
    """``reward`` is the total reward (the rule reward is ``reward - cost``); a wrong candidate's error
    type is wrong_result when it ran and no_such_column when it did not, unless given."""
    if error_type is None and not correct:
        error_type = "wrong_result" if executed else "no_such_column"
    values = dict(text=f"```sql\n{sql}\n```", sql=sql, num_tokens=len(sql.split()) + 2, executed=executed, error=error,
                  error_type=error_type, row_count=1 if executed else None, truncated=False, schema_valid=True, plan=None,
                  signals=list(signals), correct=correct, reward=reward - cost, cost_reward=cost, total_reward=reward)
    return Candidate(**{**values, **fields})


def turn(number: int, candidates: list[Candidate], selected: int = 0, messages: list[dict] | None = None,
         feedback: str | None = None) -> Turn:
    messages = messages if messages is not None else [{"role": "user", "content": f"prompt of turn {number}"}]
    return Turn(turn=number, messages=messages, candidates=list(candidates), selected=selected, feedback=feedback)


def trajectory(*turns: Turn, index: int = 0, id: str = "ex1", db_id: str = "concert", question: str = "Who is older than 30?",
               gold: str = "SELECT 1", gold_error: str | None = None, stop_reason: str = "max_turns",
               target: dict | None = None) -> Trajectory:
    last = turns[-1].answer
    return Trajectory(index=index, id=id, db_id=db_id, question=question, gold=gold, gold_error=gold_error,
                      gold_row_count=None if gold_error else 1, schema_tables=[], turns=list(turns), stop_reason=stop_reason,
                      final_sql=last.sql, final_correct=last.correct, target=target)


ROLLOUT_CONFIG = {"repair_scope": "verified", "feedback_mode": "error_only", "feedback_detail": "minimal", "max_turns": 2,
                  "num_samples": 1, "temperature": 0.0}


def summary(config: dict | None = None, **fields) -> Summary:
    """The summary of a one-example rollout (``config`` added to its run identity, empty timing),
    with ``fields`` in place of its numbers."""
    made = rollout_summary([trajectory(turn(1, [candidate()]))], {**ROLLOUT_CONFIG, **(config or {})})
    return replace(made, timing={}, **fields)
