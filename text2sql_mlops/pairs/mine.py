"""``pairs mine``: natural DPO pairs from verified rollout trajectories.

    text2sql-mlops pairs mine --trajectories runs/train --out pairs/natural.jsonl \\
        --use_gold_when_failed --eval_dataset data/demo --eval_split dev

Every pair contrasts two answers to ONE prompt (the chat exactly as the model saw
it at that turn); correctness comes from the rollout's official-EX verdicts.

  ==========================================  ===============================================
  repair_correct_vs_repair_failed             at a repair turn (turn >= 2), a correct sample vs
                                              a failed sample of the same repair prompt
  self_repair_success_vs_failed_attempt       the prompt of a failed attempt (the answer the
                                              loop repaired): the SQL the repair reached vs
                                              that attempt
  first_turn_correct_sample_vs_failed_sample  turn 1: a correct sample vs a failed sample
  gold_vs_failed_attempt                      only with --use_gold_when_failed, for examples
                                              never solved: gold SQL vs the first attempt
  gold_vs_failed_repair                       only with --use_gold_when_failed and when named in
                                              --pair_types, for examples never solved: at each
                                              repair turn (the chat with the model's own failing
                                              query and its feedback), gold SQL vs each distinct
                                              failed answer (`train sft --pairs` learns their
                                              chosen side: repair SFT, README)
  correct_low_cost_vs_correct_high_cost       two correct samples of one prompt whose
                                              EXPLAIN cost rewards differ by at least
                                              --min_cost_reward_gap
  ==========================================  ===============================================

With ``--max_pairs_per_example`` the pairs of an example are kept in that order, so
a repair-prompt pair is preferred whenever one exists. Rewards in ``meta`` are the
candidates' total rewards (rule + cost); gold as chosen counts as a first-turn
success (1.0) and is flagged ``gold_fallback``: a training target, never a prediction.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from ..core.cliutil import ArgParser, add_flags, flag, from_args, setting
from ..core.errors import UserError
from ..core.fileio import check_outputs, output_file, write_json, write_jsonl
from ..core.records import NATURAL_PAIR_TYPES, Candidate, Pair, Trajectory, Turn, read_trajectories
from ..data.guard import add_guard_flags, load_eval_split, refuse_evaluation_runs, refuse_leaks, rollout_db_roots
from .build import build_pair

# gold_vs_failed_repair is mined only when asked for: as DPO pairs it left the SFT policy's repairs
# where they were (none correct); as SFT targets it taught repairs on held-out databases but cost
# the demo's dev and test_same_db EX (README, repair SFT).
DEFAULT_PAIR_TYPES = tuple(t for t in NATURAL_PAIR_TYPES if t != "gold_vs_failed_repair")


@dataclass(frozen=True)
class MineConfig:
    """Settings of ``pairs mine``; the defaults are the command line's."""

    use_gold_when_failed: bool = setting(False, "gold_vs_failed_attempt pairs for unsolved examples", action="store_true")
    min_cost_reward_gap: float = setting(0.1, "smallest cost-reward difference of a low/high-cost pair", type=float)
    max_pairs_per_example: int | None = setting(None, "keep at most N pairs per example, in type order (default: all)",
                                                type=int, metavar="N")
    pair_types: tuple[str, ...] = setting(DEFAULT_PAIR_TYPES, "types to mine (default: all but gold_vs_failed_repair)",
                                          nargs="+", metavar="TYPE")


# --------------------------------------------------------------------------- one trajectory


@dataclass(frozen=True)
class _Gold:
    """The gold SQL standing in for a chosen candidate: a first-turn success (reward 1.0)."""

    sql: str
    total_reward: float = 1.0
    executed: bool = True


def _norm(sql: str) -> str:
    return " ".join(sql.split()).rstrip(";").strip().lower()


def _distinct(candidates: list[Candidate]) -> list[Candidate]:
    """Candidates with distinct SQL (first occurrence kept): identical samples make one pair."""
    seen, out = set(), []
    for candidate in candidates:
        if _norm(candidate.sql) not in seen:
            seen.add(_norm(candidate.sql))
            out.append(candidate)
    return out


def _best(candidates: list[Candidate]) -> Candidate:
    """The highest-reward candidate, the first one on ties."""
    return max(candidates, key=lambda c: c.total_reward)  # max keeps the first maximum


def _pair(trajectory: Trajectory, turn: Turn, pair_type: str, chosen: Candidate | _Gold, rejected: Candidate,
          gold_fallback: bool = False) -> Pair | None:
    if _norm(chosen.sql) == _norm(rejected.sql):
        return None
    return build_pair(
        turn.messages, chosen.sql, rejected.sql, trajectory.prompt_style,
        pair_type=pair_type, source="natural", gold_fallback=gold_fallback,
        example_id=trajectory.id, db_id=trajectory.db_id, question=trajectory.question, gold_sql=trajectory.gold,
        chosen_reward=chosen.total_reward, rejected_reward=rejected.total_reward, turn=turn.turn,
        chosen_executable=chosen.executed, rejected_executable=rejected.executed,
        rejected_error_type=rejected.error_type,
    )


def _correct_vs_failed(trajectory: Trajectory, turn: Turn, pair_type: str) -> Iterator[Pair | None]:
    correct = [c for c in turn.candidates if c.correct]
    failed = [c for c in _distinct(turn.candidates) if not c.correct]
    if correct:
        chosen = _best(correct)
        for rejected in failed:
            yield _pair(trajectory, turn, pair_type, chosen, rejected)


def repair_correct_vs_repair_failed(trajectory: Trajectory, config: MineConfig) -> Iterator[Pair | None]:
    for turn in trajectory.turns[1:]:
        yield from _correct_vs_failed(trajectory, turn, "repair_correct_vs_repair_failed")


def self_repair_success_vs_failed_attempt(trajectory: Trajectory, config: MineConfig) -> Iterator[Pair | None]:
    turns = trajectory.turns
    solved = next((k for k, turn in enumerate(turns) if turn.any_correct), None)
    if not solved:  # never solved, or solved at turn 1: nothing was repaired
        return
    chosen = _best([c for c in turns[solved].candidates if c.correct])
    for turn in turns[:solved]:
        yield _pair(trajectory, turn, "self_repair_success_vs_failed_attempt", chosen, turn.answer)


def first_turn_correct_sample_vs_failed_sample(trajectory: Trajectory, config: MineConfig) -> Iterator[Pair | None]:
    yield from _correct_vs_failed(trajectory, trajectory.first, "first_turn_correct_sample_vs_failed_sample")


def gold_vs_failed_attempt(trajectory: Trajectory, config: MineConfig) -> Iterator[Pair | None]:
    if not config.use_gold_when_failed or trajectory.gold_error or trajectory.solved:
        return
    first = trajectory.first
    yield _pair(trajectory, first, "gold_vs_failed_attempt", _Gold(trajectory.gold), first.answer, gold_fallback=True)


def gold_vs_failed_repair(trajectory: Trajectory, config: MineConfig) -> Iterator[Pair | None]:
    # The repair prompt shows the model's own mistake, which synthetic repair targets only
    # imitate; its failed answers are mostly that mistake again (a model repairs by copying).
    if not config.use_gold_when_failed or trajectory.gold_error or trajectory.solved:
        return
    for turn in trajectory.turns[1:]:
        for rejected in _distinct(turn.candidates):
            yield _pair(trajectory, turn, "gold_vs_failed_repair", _Gold(trajectory.gold), rejected, gold_fallback=True)


def correct_low_cost_vs_correct_high_cost(trajectory: Trajectory, config: MineConfig) -> Iterator[Pair | None]:
    for turn in trajectory.turns:
        correct = [c for c in _distinct(turn.candidates) if c.correct]
        if len(correct) < 2:
            continue
        cheap = max(correct, key=lambda c: c.cost_reward)
        costly = min(correct, key=lambda c: c.cost_reward)
        if cheap.cost_reward - costly.cost_reward >= config.min_cost_reward_gap - 1e-12:
            yield _pair(trajectory, turn, "correct_low_cost_vs_correct_high_cost", cheap, costly)


MINERS: dict[str, Callable[[Trajectory, MineConfig], Iterator[Pair | None]]] = {
    miner.__name__: miner
    for miner in (repair_correct_vs_repair_failed, self_repair_success_vs_failed_attempt,
                  first_turn_correct_sample_vs_failed_sample, gold_vs_failed_attempt, gold_vs_failed_repair,
                  correct_low_cost_vs_correct_high_cost)
}
assert tuple(MINERS) == NATURAL_PAIR_TYPES


def mine_trajectory(trajectory: Trajectory, config: MineConfig) -> list[Pair]:
    """The pairs of one trajectory, in type priority order, without duplicates."""
    pairs, seen = [], set()
    for pair_type in NATURAL_PAIR_TYPES:
        if pair_type not in config.pair_types:
            continue
        for pair in MINERS[pair_type](trajectory, config):
            if pair is not None and pair.id not in seen:
                seen.add(pair.id)
                pairs.append(pair)
    return pairs[:config.max_pairs_per_example] if config.max_pairs_per_example is not None else pairs


def mine(trajectories: list[Trajectory], config: MineConfig) -> list[Pair]:
    """Pairs of every trajectory, in trajectory order; an id mined twice is kept once."""
    out, seen = [], set()
    for trajectory in trajectories:
        for pair in mine_trajectory(trajectory, config):
            if pair.id not in seen:
                seen.add(pair.id)
                out.append(pair)
    return out


# --------------------------------------------------------------------------- I/O


def make_parser(prog: str | None = "text2sql-mlops pairs mine") -> ArgParser:
    parser = ArgParser(prog=prog, description="Mine natural DPO preference pairs from rollout trajectories.")
    flag(parser, "trajectories", nargs="+", required=True, metavar="PATH", help="rollout folders or trajectories.jsonl files")
    flag(parser, "out", "--output", required=True, type=output_file, help="pairs JSONL to write")
    add_flags(parser, MineConfig)
    add_guard_flags(parser)
    flag(parser, "db_root", nargs="+", default=[], metavar="DIR", help="folders of the training databases, whose schemas the guard "
         "compares (default: the rollout folder's, then --eval_dataset's)")
    flag(parser, "stats", type=output_file, help="also write the counts printed and the resolved configuration to this JSON file")
    return parser


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops pairs mine") -> int:
    args = make_parser(prog).parse_args(argv)
    unknown = sorted(set(args.pair_types) - set(NATURAL_PAIR_TYPES))
    if unknown:
        raise UserError(f"--pair_types: unknown {unknown}; choose from {', '.join(NATURAL_PAIR_TYPES)}")
    if args.max_pairs_per_example is not None and args.max_pairs_per_example < 1:
        raise UserError(f"--max_pairs_per_example must be at least 1, got {args.max_pairs_per_example}")
    config = from_args(MineConfig, args, pair_types=tuple(args.pair_types))
    check_outputs((("--out", args.out), ("--stats", args.stats)), [*args.trajectories, args.eval_dataset])
    started = time.perf_counter()
    refuse_evaluation_runs(args.trajectories, "pairs mine")
    trajectories = [trajectory for path in args.trajectories for trajectory in read_trajectories(path)]
    eval_split = load_eval_split(args.eval_dataset, args.eval_db_root, args.eval_split, args.eval_same_db_split) if args.eval_dataset else None
    refuse_leaks(trajectories, eval_split, "pairs mine", "trajectories", [*args.db_root, *rollout_db_roots(args.trajectories)])
    pairs = mine(trajectories, config)
    write_jsonl(args.out, (pair.to_dict() for pair in pairs))
    summary: dict[str, Any] = {
        "out": args.out, "trajectories": len(trajectories), "pairs": len(pairs),
        "examples_with_pairs": len({p.meta["example_id"] for p in pairs}),
        "pair_types": dict(Counter(p.meta["pair_type"] for p in pairs)),
        "wall_s": round(time.perf_counter() - started, 3),
    }
    print(json.dumps(summary))
    if args.stats:
        write_json(args.stats, {**summary, "config": {"trajectories": args.trajectories, **asdict(config), "eval_dataset": args.eval_dataset,
                                                      "eval_split": args.eval_split, "eval_same_db_split": args.eval_same_db_split}})
    if not trajectories:
        print(f"pairs mine: note: no pairs: {', '.join(args.trajectories)} hold no trajectories (an empty file?)", file=sys.stderr)
    elif not pairs:
        print("pairs mine: note: no pairs: a pair needs a correct and a failed answer to one example "
              "(more samples, more turns or --use_gold_when_failed help)", file=sys.stderr)
    return 0
