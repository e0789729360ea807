"""summary.json: every number of a rollout, computed from its trajectories alone.

Being a pure function of the trajectories (and of the configuration they were
made with) is what lets a resumed run and a merge of shards reproduce the
summary of an uninterrupted run. Timing lives apart, under ``timing``.

Denominators: example-level rates divide by ALL examples (bad-gold examples
included: they can never be correct); candidate-level rates divide by all
candidates. With ``num_samples`` > 1 an example is correct at a turn when at
least one of its candidates is; candidate EX is the fraction of candidates correct.

Two final numbers, never mixed:

- ``final_ex_oracle``: the final EX of a configuration that uses gold (the verified
  scope stops repairing at the first candidate that matches gold; result_status
  and oracle_rows feedback show gold-derived facts). Null for a strict run.
- ``final_ex_strict``: the EX of the model's own last answers under a configuration
  that uses no gold. A strict run reports its own. A verified run whose feedback
  mode is gold-free also yields the strict number of the ``online`` scope with the
  same feedback: that run's turns are a prefix of this one's (both repair an
  example with the same prompts until a candidate runs without error, where
  online stops), so its final answers are those of the first turn where a
  candidate ran. This holds when a prompt always gets the same answer, so it is
  reported for greedy decoding (temperature 0) only; a batched backend may still
  flip a rare near-tie, as batch shapes differ between the two runs.

A one-shot run (max_turns = 1) repairs nothing, so both equal first-turn EX.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..core.records import Candidate, Summary, Trajectory, Turn
from ..scoring.errors import ERROR_TYPES
from .config import uses_gold
from .feedback import FEEDBACK_MODES


def _rate(count: float, total: int) -> float | None:
    return count / total if total else None


def strict_turn(trajectory: Trajectory) -> Turn:
    """The turn where an ``online`` run would have stopped: the first where a candidate ran."""
    return next((turn for turn in trajectory.turns if any(c.executed for c in turn.candidates)), trajectory.last)


def final_numbers(trajectories: list[Trajectory], config: dict[str, Any]) -> dict[str, Any]:
    """final_ex_oracle / final_ex_strict and the configuration that produced each."""
    n = len(trajectories)
    scope, mode, detail, turns = config["repair_scope"], config["feedback_mode"], config["feedback_detail"], config["max_turns"]
    final = _rate(sum(t.last.any_correct for t in trajectories), n)
    described = f"{scope} scope, {mode} feedback, {detail} detail, max_turns={turns}"
    if turns == 1:
        one_shot = "one-shot (max_turns=1): no repair, no gold used; strict and oracle coincide"
        return {"final_ex_oracle": final, "final_ex_oracle_configuration": one_shot,
                "final_ex_strict": final, "final_ex_strict_configuration": one_shot}
    if not uses_gold(scope, mode):
        return {"final_ex_oracle": None, "final_ex_oracle_configuration": None, "final_ex_strict": final,
                "final_ex_strict_configuration": f"{described}: strict, no gold information reaches the prompts or the stopping rule"}
    why = "repair stops at the first candidate that matches gold" if scope == "verified" else "feedback shows gold-derived facts"
    numbers = {"final_ex_oracle": final, "final_ex_oracle_configuration": f"{described}: oracle, {why}",
               "final_ex_strict": None, "final_ex_strict_configuration": None}
    if scope == "verified" and not FEEDBACK_MODES[mode].uses_gold and config["temperature"] <= 0:
        numbers["final_ex_strict"] = _rate(sum(strict_turn(t).any_correct for t in trajectories), n)
        numbers["final_ex_strict_configuration"] = (
            f"online scope, {mode} feedback, {detail} detail, max_turns={turns}: strict, derived from this verified run "
            "(the answers of the first turn where a candidate ran without error)"
        )
    return numbers


def _error_counts(candidates: list[Candidate]) -> dict[str, int]:
    counts = Counter(c.error_type for c in candidates if c.error_type)
    return {kind: counts.get(kind, 0) for kind in ERROR_TYPES}


def rollout_summary(trajectories: list[Trajectory], config: dict[str, Any]) -> Summary:
    """The summary of ``trajectories`` (any order) made with ``config`` (the run identity); no timing."""
    n = len(trajectories)
    candidates = [c for t in trajectories for c in t.candidates()]
    first = [c for t in trajectories for c in t.first.candidates]
    finals = [t.last.answer for t in trajectories]
    first_ok = [t.first.any_correct for t in trajectories]
    last_ok = [t.last.any_correct for t in trajectories]
    failed_first = sum(not ok for ok in first_ok)
    repaired = sum(last and not first_ok_ for first_ok_, last in zip(first_ok, last_ok))
    # The reference project's rule: an example wrong at turn 1 counts as repaired when SOME later
    # turn has a correct candidate, even if the final answer is not (it differs from ours only
    # when a run goes on repairing after a correct candidate, e.g. several samples per turn).
    reached = sum(not ok and any(turn.any_correct for turn in t.turns[1:]) for ok, t in zip(first_ok, trajectories))
    return Summary(
        examples=n,
        candidates=len(candidates),
        configuration={
            "repair_scope": config["repair_scope"], "feedback_mode": config["feedback_mode"],
            "feedback_detail": config["feedback_detail"], "max_turns": config["max_turns"],
            "num_samples": config["num_samples"], "uses_gold": uses_gold(config["repair_scope"], config["feedback_mode"]),
        },
        first_turn_ex=_rate(sum(first_ok), n),
        **final_numbers(trajectories, config),
        first_turn_candidate_ex=_rate(sum(c.correct for c in first), len(first)),
        candidate_ex=_rate(sum(c.correct for c in candidates), len(candidates)),
        executable_rate=_rate(sum(c.executed for c in candidates), len(candidates)),
        schema_valid_rate=_rate(sum(c.schema_valid for c in candidates), len(candidates)),
        first_turn_executable_rate=_rate(sum(c.executed for c in first), len(first)),
        final_executable_rate=_rate(sum(c.executed for c in finals), n),
        # Conditional on need: of the examples wrong at turn 1, the share this run's own loop fixed.
        repair={"first_turn_failed": failed_first, "repaired": repaired, "repair_success_rate": _rate(repaired, failed_first),
                "repaired_seed_rule": reached, "repair_success_rate_seed_rule": _rate(reached, failed_first)},
        error_types={
            "first_turn": _error_counts(first),
            "all_candidates": _error_counts(candidates),
            "final": _error_counts(finals),
        },
        bad_gold=sum(t.gold_error is not None for t in trajectories),
        turns={
            "mean": _rate(sum(len(t.turns) for t in trajectories), n),
            "histogram": {str(k): v for k, v in sorted(Counter(len(t.turns) for t in trajectories).items())},
            "stop_reasons": dict(sorted(Counter(t.stop_reason for t in trajectories).items())),
        },
        rewards={
            "mean_reward": _rate(sum(c.reward for c in candidates), len(candidates)),
            "mean_cost_reward": _rate(sum(c.cost_reward for c in candidates), len(candidates)),
            "mean_total_reward": _rate(sum(c.total_reward for c in candidates), len(candidates)),
        },
        generated_tokens=sum(c.num_tokens for c in candidates),
        gold_fallback_targets=sum((t.target or {}).get("source") == "gold" for t in trajectories),
        config=config,
    )


def timing(examples: int, tokens: int, rollout_s: float, generation_s: float, wall_s: float, resumed_chunks: int) -> dict[str, Any]:
    """Throughput; ``rollout_s`` and ``generation_s`` sum the chunk times of every invocation
    (model loading excluded), ``wall_s`` is this invocation's wall time."""
    return {
        "wall_time_s": round(wall_s, 3),
        "rollout_s": round(rollout_s, 3),
        "generation_s": round(generation_s, 3),
        "examples_per_s": round(examples / rollout_s, 3) if rollout_s else None,
        "generated_tokens_per_s": round(tokens / generation_s, 1) if generation_s else None,
        "resumed_chunks": resumed_chunks,
    }
