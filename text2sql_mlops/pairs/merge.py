"""``text2sql-mlops pairs merge``: several pair files -> one filtered, balanced set.

    text2sql-mlops pairs merge --inputs natural.jsonl synthetic.jsonl --output train_pairs.jsonl \\
        --input_fraction_limits 1.0 0.2 --pair_type_max_fractions gold_vs_failed_attempt=0.2 \\
        --min_reward_margin 0.3 --max_sql_edit_distance_ratio 1.0 --stats train_pairs_stats.json

(the seed project's final recipe, "Synth20"). The steps, always in this order:

1. ``--input_limits``: the first N pairs of each input (N drawn with ``--seed`` under ``--shuffle``).
2. Filters, in this order: exact duplicates (same pair id = same prompt, chosen and rejected; the first in
   input order stays), chosen and rejected with the same SQL tokens (a trailing ``;`` aside), ``--min_reward_margin`` (keeps
   ``meta.reward_margin >= m``), ``--max_sql_edit_distance_ratio`` (keeps ``similarity.edit_distance_ratio``
   of ``meta.chosen_sql`` and ``meta.rejected_sql`` <= r; not computed for r >= 1, which every pair meets).
3. ``--pair_type_limits TYPE=N``: at most N pairs of TYPE (the first ones).
4. Fraction caps, exact on the output: ``--input_fraction_limits`` (the share of the output from each input)
   and ``--pair_type_max_fractions TYPE=F``: at most floor(F * N) of the N output pairs. N is the largest
   size for which every cap holds (``solve_counts``); pairs under no cap are all kept, and the capped
   (input, pair type) groups competing for a full cap keep about the same share of their pairs.
5. ``--max_pairs``: the same solver with that size as ceiling, so the caps still hold and every
   (input, pair type) group shrinks by about the same share.
6. Output order: input order (inputs as given, then file order); ``--shuffle`` shuffles it with ``--seed``.

TYPE is a pair type (``records.NATURAL_PAIR_TYPES`` or ``synthetic_<mutation>``) or a prefix ending in ``*``
(``synthetic_*=0.2`` caps all synthetic types together); caps may nest. A fraction of 1 is no cap. Without
``--shuffle`` nothing is random: the pairs a limit or cap drops are the last of their group in file order.
With it, every choice (step 1's sample, which pairs steps 3-5 drop, the output order) follows ``--seed``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

from ..core.cliutil import ArgParser, add_flags, flag, from_args, setting
from ..core.errors import UserError
from ..core.fileio import check_outputs, output_file, write_json, write_jsonl
from ..core.records import NATURAL_PAIR_TYPES, SYNTHETIC_PREFIX, Pair
from ..data.guard import add_guard_flags, load_eval_split, refuse_leaks
from .build import read_pair_file
from .similarity import edit_distance_ratio, sql_tokens
from .solver import matches, solve_counts

REMOVAL_STEPS = ("input_limits", "duplicates", "same_sql", "min_reward_margin", "max_sql_edit_distance_ratio",
                 "pair_type_limits", "fraction_caps", "max_pairs")


@dataclass
class MergeConfig:
    """Configuration of [`merge_pairs`]; each field is one `pairs merge` flag (``from_flags`` reads them)."""

    input_limits: Sequence[int | None] | None = setting(
        None, "at most N pairs from each input ('all': no limit), or INDEX=N for some inputs (0=308 1=150)",
        nargs="+", metavar="N")
    input_fraction_limits: Sequence[float] | None = setting(
        None, "largest share of the output from each input, in [0, 1] (1: no cap), or INDEX=F for some inputs (1=0.20)",
        nargs="+", metavar="F")
    pair_type_limits: dict[str, int] = setting({}, "at most N pairs of TYPE", nargs="+", action="extend", metavar="TYPE=N")
    pair_type_max_fractions: dict[str, float] = setting(
        {}, "largest share of the output of TYPE; TYPE may be a prefix ending in * (synthetic_*=0.2)",
        nargs="+", action="extend", metavar="TYPE=F")
    min_reward_margin: float | None = setting(None, "keep pairs with meta.reward_margin >= this", type=float)
    max_sql_edit_distance_ratio: float | None = setting(
        None, "keep pairs whose chosen and rejected SQL are at most this token edit-distance ratio apart", type=float)
    max_pairs: int | None = setting(None, "largest output (the fraction caps still hold exactly)", type=int)
    shuffle: bool = setting(False, "sample, drop and order at random with --seed instead of by position",
                            action="store_true")
    seed: int = setting(0, "seed of every random choice (used with --shuffle)", type=int)

    @classmethod
    def from_flags(cls, args: argparse.Namespace, n_inputs: int) -> MergeConfig:
        """The config of parsed flags: per-input lists and TYPE=VALUE words read into their types."""
        def limit(text: str) -> int | None:
            try:
                return _limit(text)
            except argparse.ArgumentTypeError as exc:
                raise UserError(f"--input_limits: {exc}") from None

        return from_args(
            cls, args,
            input_limits=per_input(args.input_limits, n_inputs, "input_limits", limit, None),
            input_fraction_limits=per_input(args.input_fraction_limits, n_inputs, "input_fraction_limits", _fraction, 1.0),
            pair_type_limits=parse_type_values(args.pair_type_limits, "pair_type_limits", int),
            pair_type_max_fractions=parse_type_values(args.pair_type_max_fractions, "pair_type_max_fractions", float))


def _check_pattern(pattern: str, where: str) -> None:
    if pattern.endswith("*") and "*" not in pattern[:-1]:
        return
    if pattern not in NATURAL_PAIR_TYPES and not (pattern.startswith(SYNTHETIC_PREFIX) and len(pattern) > len(SYNTHETIC_PREFIX)):
        raise UserError(f"{where}: unknown pair type {pattern!r}; use one of {', '.join(NATURAL_PAIR_TYPES)}, "
                        f"{SYNTHETIC_PREFIX}<mutation> or a prefix ending in * ({SYNTHETIC_PREFIX}*)")


def check_config(config: MergeConfig, n_inputs: int) -> None:
    """One-line errors for settings no merge could use."""
    for name, values in (("input_limits", config.input_limits), ("input_fraction_limits", config.input_fraction_limits)):
        if values is not None and len(values) != n_inputs:
            raise UserError(f"--{name} has {len(values)} values for {n_inputs} inputs; give one per input, in --inputs order")
    if any(limit is not None and limit < 0 for limit in config.input_limits or ()):
        raise UserError(f"--input_limits must be >= 0, got {list(config.input_limits)}")
    if any(not 0 <= value <= 1 for value in config.input_fraction_limits or ()):
        raise UserError(f"--input_fraction_limits must lie in [0, 1], got {list(config.input_fraction_limits)}")
    for pattern, limit in config.pair_type_limits.items():
        _check_pattern(pattern, "--pair_type_limits")
        if not isinstance(limit, int) or limit < 0:
            raise UserError(f"--pair_type_limits {pattern}={limit}: the limit must be an integer >= 0")
    for pattern, fraction in config.pair_type_max_fractions.items():
        _check_pattern(pattern, "--pair_type_max_fractions")
        if not 0 <= fraction <= 1:
            raise UserError(f"--pair_type_max_fractions {pattern}={fraction}: the fraction must lie in [0, 1]")
    if config.min_reward_margin is not None and not math.isfinite(config.min_reward_margin):
        raise UserError(f"--min_reward_margin must be a finite number, got {config.min_reward_margin}")
    if config.max_sql_edit_distance_ratio is not None and not config.max_sql_edit_distance_ratio >= 0:
        raise UserError(f"--max_sql_edit_distance_ratio must be >= 0, got {config.max_sql_edit_distance_ratio}")
    if config.max_pairs is not None and config.max_pairs < 0:
        raise UserError(f"--max_pairs must be >= 0, got {config.max_pairs}")


# --------------------------------------------------------------------------- merging


def _same_sql(meta: dict[str, Any]) -> bool:
    def tokens(sql: Any) -> tuple[str, ...]:
        return sql_tokens(str(sql).strip().rstrip(";").strip())

    return tokens(meta["chosen_sql"]) == tokens(meta["rejected_sql"])


def merge_pairs(inputs: list[list[Pair]], config: MergeConfig, names: Sequence[str] | None = None) -> tuple[list[Pair], dict]:
    """Merge, filter and balance pairs (steps in the module docstring); returns (pairs, stats).

    ``names`` label the inputs in the stats (default ``input1``, ``input2``, ...).
    """
    names = list(names) if names is not None else [f"input{i + 1}" for i in range(len(inputs))]
    check_config(config, len(inputs))
    rng = random.Random(config.seed)
    removed = dict.fromkeys(REMOVAL_STEPS, 0)
    pool: list[tuple[int, int, Pair]] = []  # (input, position in the input, pair), in processing order
    for i, given in enumerate(inputs):
        order = list(range(len(given)))
        if config.shuffle:
            rng.shuffle(order)
        limit = config.input_limits[i] if config.input_limits else None
        if limit is not None:
            removed["input_limits"] += max(0, len(order) - limit)
            order = order[:limit]
        pool += [(i, j, given[j]) for j in order]

    def keep(step: str, wanted) -> None:
        nonlocal pool
        kept = [entry for entry in pool if wanted(entry)]
        removed[step] += len(pool) - len(kept)
        pool = kept

    first: dict[str, tuple[int, int]] = {}
    for i, j, pair in sorted(pool, key=lambda entry: entry[:2]):
        first.setdefault(pair.id, (i, j))
    keep("duplicates", lambda e: first[e[2].id] == e[:2])
    keep("same_sql", lambda e: not _same_sql(e[2].meta))
    if config.min_reward_margin is not None:
        keep("min_reward_margin", lambda e: e[2].meta["reward_margin"] >= config.min_reward_margin)
    if config.max_sql_edit_distance_ratio is not None and config.max_sql_edit_distance_ratio < 1:
        ratio = config.max_sql_edit_distance_ratio
        keep("max_sql_edit_distance_ratio",
             lambda e: edit_distance_ratio(str(e[2].meta["chosen_sql"]), str(e[2].meta["rejected_sql"])) <= ratio)
    if config.pair_type_limits:
        taken: Counter[str] = Counter()

        def fits(entry) -> bool:
            hit = [p for p in config.pair_type_limits if matches(p, entry[2].meta["pair_type"])]
            if any(taken[p] >= config.pair_type_limits[p] for p in hit):
                return False
            taken.update(hit)
            return True

        keep("pair_type_limits", fits)

    # Steps 4 and 5 choose counts per (input, pair type) group, then keep each group's first pairs.
    groups: dict[tuple[int, str], list[tuple[int, int, Pair]]] = {}
    for entry in sorted(pool, key=lambda entry: entry[:2]):  # groups in input, then file order
        groups.setdefault((entry[0], entry[2].meta["pair_type"]), [])
    for entry in pool:
        groups[entry[0], entry[2].meta["pair_type"]].append(entry)
    keys, sizes = list(groups), [len(group) for group in groups.values()]
    input_caps = {i: Fraction(str(f)) for i, f in enumerate(config.input_fraction_limits or ()) if f < 1}
    type_caps = {p: Fraction(str(f)) for p, f in config.pair_type_max_fractions.items() if f < 1}
    counts = sizes
    if input_caps or type_caps:
        fixed = [i not in input_caps and not any(matches(p, t) for p in type_caps) for i, t in keys]
        counts = solve_counts(keys, sizes, fixed, sum(sizes), input_caps, type_caps)
        removed["fraction_caps"] = sum(sizes) - sum(counts)
    if config.max_pairs is not None and sum(counts) > config.max_pairs:
        capped = solve_counts(keys, counts, [False] * len(keys), config.max_pairs, input_caps, type_caps)
        removed["max_pairs"], counts = sum(counts) - sum(capped), capped
    chosen = {entry[:2] for group, count in zip(groups.values(), counts) for entry in group[:count]}
    output = [entry for entry in pool if entry[:2] in chosen]
    if config.shuffle:
        rng.shuffle(output)
    pairs = [pair for _, _, pair in output]
    return pairs, _stats(inputs, names, output, removed, config, input_caps, type_caps)


def _stats(inputs, names, output, removed, config, input_caps, type_caps) -> dict[str, Any]:
    n_out = len(output)
    types_in = Counter(pair.meta["pair_type"] for pairs in inputs for pair in pairs)
    types_out = Counter(pair.meta["pair_type"] for _, _, pair in output)
    per_input = Counter(i for i, _, _ in output)
    caps = [{"cap": f"input {names[i]}", "max_fraction": float(f), "pairs": per_input[i]} for i, f in input_caps.items()]
    caps += [{"cap": f"pair_type {p}", "max_fraction": float(f), "pairs": sum(n for t, n in types_out.items() if matches(p, t))}
             for p, f in type_caps.items()]
    for cap in caps:
        cap["fraction"] = round(cap["pairs"] / n_out, 6) if n_out else 0.0
    return {
        "pairs_in": sum(map(len, inputs)), "pairs_out": n_out, "removed": removed,
        "inputs": [{"path": name, "in": len(pairs), "out": per_input[i]} for i, (name, pairs) in enumerate(zip(names, inputs))],
        "pair_types": {t: {"in": types_in[t], "out": types_out[t]} for t in sorted(types_in, key=_type_order)},
        "sources": dict(Counter(pair.meta["source"] for _, _, pair in output)),
        "fraction_caps": caps, "config": asdict(config),
    }


def _type_order(pair_type: str) -> tuple[int, str]:
    return (NATURAL_PAIR_TYPES.index(pair_type), "") if pair_type in NATURAL_PAIR_TYPES else (len(NATURAL_PAIR_TYPES), pair_type)


# --------------------------------------------------------------------------- command line


def read_input(path: str) -> list[Pair]:
    """Every pair of one ``--inputs`` file: pair JSONL, or the reference project's ``dpo_pairs.json``."""
    return read_pair_file(path, "pairs merge")


def per_input(items: Sequence[str] | None, inputs: int, option: str, parse, default):
    """One value per input: positional (``0.2 1.0``) or, as the reference project wrote them,
    ``INDEX=VALUE`` pairs (``1=0.20``; inputs not named get ``default``)."""
    if not items:
        return None
    named = ["=" in item for item in items]
    if not any(named):
        return [parse(item) for item in items]
    if not all(named):
        raise UserError(f"--{option}: give one value per input or INDEX=VALUE pairs, not both (got {' '.join(items)})")
    values = [default] * inputs
    for item in items:
        index, _, value = item.partition("=")
        if not index.strip().isdigit() or int(index) >= inputs:
            raise UserError(f"--{option}: {item!r} names input {index!r}; inputs are numbered 0 to {inputs - 1} in --inputs order")
        values[int(index)] = parse(value)
    return values


def _fraction(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UserError(f"--input_fraction_limits: expected a number, got {text!r}") from None


def _limit(text: str) -> int | None:
    if text.lower() == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count or 'all', got {text!r}") from None


def parse_type_values(items: Sequence[str], option: str, kind: type) -> dict[str, Any]:
    """``["TYPE=N", ...]`` -> ``{TYPE: N}``; one-line errors for anything else."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        try:
            value = kind(text) if sep and key.strip() else None
        except ValueError:
            value = None
        if value is None:
            example = "synthetic_*=0.2" if kind is float else "gold_vs_failed_attempt=500"
            raise UserError(f"--{option} expects TYPE={'F' if kind is float else 'N'} (e.g. {example}), got {item!r}")
        if key.strip() in values:
            raise UserError(f"--{option} names {key.strip()!r} twice")
        values[key.strip()] = value
    return values


def make_parser(prog: str | None = "text2sql-mlops pairs merge") -> argparse.ArgumentParser:
    parser = ArgParser(prog=prog, description=(
        "Merge pair files: per-input limits, filters (duplicates, same SQL, reward margin, SQL distance), "
        "pair-type limits, then input and pair-type fraction caps that hold exactly on the output."))
    flag(parser, "inputs", nargs="+", required=True, metavar="PAIRS.jsonl", help="pair files, in priority order")
    flag(parser, "output", "--out", required=True, type=output_file, help="the merged pairs (JSONL, written atomically)")
    add_flags(parser, MergeConfig)
    add_guard_flags(parser)
    flag(parser, "db_root", nargs="+", default=[], metavar="DIR",
         help="folders of the training databases, whose schemas the guard compares (default: --eval_dataset's)")
    flag(parser, "stats", type=output_file, help="write counts per input, pair type and filter to this JSON file")
    return parser


def _refuse_repeated_inputs(paths: Sequence[str]) -> None:
    """One file given twice is refused rather than merged with itself: its second copy would only
    be removed again as duplicates, while the per-input options (--input_limits,
    --input_fraction_limits) and the per-input counts would see two inputs where there is one."""
    seen: dict[str, str] = {}
    for path in paths:
        key = os.path.normcase(os.path.realpath(path))
        if key in seen:
            same = f"{path!r} and {seen[key]!r} are the same file" if path != seen[key] else f"{path!r} is given twice"
            raise UserError(f"--inputs: {same}; give each pair file once (merging a file with itself adds nothing)")
        seen[key] = path


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops pairs merge") -> int:
    args = make_parser(prog).parse_args(sys.argv[1:] if argv is None else argv)
    config = MergeConfig.from_flags(args, len(args.inputs))
    check_config(config, len(args.inputs))
    _refuse_repeated_inputs(args.inputs)
    check_outputs((("--out", args.output), ("--stats", args.stats)), [*args.inputs, args.eval_dataset])
    inputs = [read_input(path) for path in args.inputs]
    if args.eval_dataset:
        eval_split = load_eval_split(args.eval_dataset, args.eval_db_root, args.eval_split, args.eval_same_db_split)
        for path, pairs in zip(args.inputs, inputs):
            refuse_leaks(pairs, eval_split, where=path, what="pairs", db_roots=args.db_root)
    pairs, stats = merge_pairs(inputs, config, names=args.inputs)
    write_jsonl(args.output, (pair.to_dict() for pair in pairs))
    stats = {"output": args.output, **stats}
    if args.stats:
        write_json(args.stats, stats)
    print(json.dumps({key: stats[key] for key in ("output", "pairs_in", "pairs_out", "removed")}
                     | {"inputs": {item["path"]: item["out"] for item in stats["inputs"]}}))
    if stats["pairs_in"] and not stats["pairs_out"]:
        biggest = max(stats["removed"], key=stats["removed"].get)
        print(f"{prog}: note: no pair survived ({stats['removed'][biggest]} removed by {biggest}); when every pair "
              "falls under a fraction cap (e.g. only gold-fallback and synthetic pairs, each capped at 0.2), the caps "
              "can only all hold at size 0: loosen a cap or add uncapped pairs", file=sys.stderr)
    return 0
