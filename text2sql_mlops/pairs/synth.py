"""``pairs synth``: synthetic hard negatives, one plausible mistake in the gold SQL, checked by execution.

    text2sql-mlops pairs synth --dataset_path data/spider --out pairs/synth.jsonl --limit 500 \\
        --prefer_executable_wrong --max_schema_error_fraction 0.2 --eval_dataset data/spider --eval_split dev

A pair teaches most when the rejected answer is a near miss. Mined pairs need a
model's failures; these need only gold SQL, so every training example can have some.

Per example, each mutation family (``mutations.py: MUTATIONS``) lists single edits of the gold's
sqlglot tree, in kinds (``wrong_column``: a sibling column, or another table's).
Kinds are shuffled with a seed drawn from (``--seed``, db_id, gold) and interleaved,
so one plentiful kind cannot crowd out the rest: the edits are a pure function of
gold, catalog and seed. Up to ``--candidates_per_mutation`` distinct edits per
family are executed and scored against gold with the official semantics; an edit
whose result matches gold is no negative and is dropped (counted), as is one that
times out (its result is unknown). A family stops at its first negative that runs.

Selection: at most ``--max_errors_per_example`` per example, every family once
before any twice, the ones that run first with ``--prefer_executable_wrong``, ties
in a seeded order. Then negatives that fail to execute are cut (or swapped for a
spare of the same example that runs) until at most ``--max_schema_error_fraction``
of the output fails.

Chosen and rejected come from the same printer (``render``: SQLite with the gold's
function-name case, ``!=`` and ``x NOT IN``), so they differ only by the mutation
and DPO cannot win on formatting; the printed gold is verified to return the gold
result. ``--chosen gold`` keeps the gold text as written instead.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from fractions import Fraction
from itertools import islice
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot.errors import SqlglotError

from ..core.cliutil import ArgParser, add_flags, flag, from_args, setting, yes_no
from ..core.errors import UserError
from ..core.fileio import (
    atomic_folder,
    check_outputs,
    holds_only,
    output_file,
    output_folder_type,
    write_json,
    write_jsonl,
)
from ..core.records import SYNTHETIC_PREFIX
from ..data.guard import add_guard_flags, exclude_leaks, load_eval_split
from ..data.load import default_tables_json, load_examples, take
from ..prompts import build_messages
from ..rollout.rewards import rule_reward
from ..schema.select import PromptConfig, prompt_schema, prompt_setting
from ..scoring.errors import GoldResult, observe, outcome_type
from ..scoring.scorer import Scorer, verdict_database
from ..sql.catalog import load_catalog
from ..sql.sandbox import Sandbox
from .build import build_pair
from .mutations import MUTATIONS, candidate_sqls, function_case, render

MAX_ROWS = 10_000  # rows fetched per query, as in the rollout

# --------------------------------------------------------------------------- checking and choosing


@dataclass
class Negative:
    family: str
    sql: str
    executable: bool
    error_type: str  # scoring.errors.ERROR_TYPES
    rank: int  # 0 for the family's first negative of this example, 1 for its second, ...


def _rng(seed: int, *parts: str) -> random.Random:
    return random.Random("\x1f".join((str(seed), *parts)))


def select_negatives(negatives: list[Negative], limit: int, prefer_executable: bool, rng: random.Random) -> tuple[list[Negative], list[Negative]]:
    """(kept, spares): every family once before any twice, executable first when preferred, ties seeded."""
    shuffled = negatives[:]
    rng.shuffle(shuffled)
    ranked = sorted(shuffled, key=lambda n: (prefer_executable and not n.executable, n.rank))
    return ranked[:limit], ranked[limit:]


def cap_schema_errors(kept: list[list[Negative]], spares: list[list[Negative]], fraction: Fraction, rng: random.Random) -> None:
    """Cut failing negatives, in a seeded order, until at most ``fraction`` of all kept ones fail;
    a cut one is replaced by a spare of its example that runs, when there is one. In place."""
    failing = [(i, j) for i, chosen in enumerate(kept) for j, n in enumerate(chosen) if not n.executable]
    rng.shuffle(failing)
    running = sum(n.executable for chosen in kept for n in chosen)
    while failing and len(failing) > fraction * (running + len(failing)):
        i, j = failing.pop()
        spare = next((s for s in spares[i] if s.executable), None)
        if spare is not None:
            spares[i].remove(spare)
            running += 1
        kept[i][j] = spare
    for chosen in kept:
        chosen[:] = [n for n in chosen if n is not None]


@dataclass(frozen=True)
class SynthConfig:
    """Settings of ``pairs synth``; the defaults are the command line's."""

    mutations: tuple[str, ...] = setting(tuple(MUTATIONS), "the mistake families", cli=False)  # --mutations a,b: the command's
    prefer_executable_wrong: bool = setting(False, "pick negatives that run (and are wrong) first", action="store_true")
    max_schema_error_fraction: float = setting(0.2, "at most this fraction of the pairs may have a rejected SQL that fails",
                                               type=float)
    max_errors_per_example: int = setting(2, "negatives per example", type=int)
    candidates_per_mutation: int = setting(4, "mutations executed per family and example", type=int)
    seed: int = setting(0, "seed of the mutations drawn and the negatives kept", type=int)
    timeout_sec: float = setting(10.0, "seconds per query", type=float)
    chosen: str = setting("rendered", "chosen SQL: the gold printed like the negatives, or the gold text as written",
                          choices=("rendered", "gold"))
    schema_mode: str = prompt_setting("schema_mode")
    top_k_tables: int = prompt_setting("top_k_tables")
    fk_hops: int = prompt_setting("fk_hops")
    sample_rows: int = prompt_setting("sample_rows")
    schema_format: str = prompt_setting("schema_format")
    sample_values: int = prompt_setting("sample_values")
    prompt_style: str = prompt_setting("prompt_style")


def example_negatives(example, config: SynthConfig, scorer, sandbox, tables_json: str | None, stats: Counter) -> tuple[str | None, list[Negative]]:
    """(chosen SQL, verified negatives) of one example; (None, []) when its gold cannot serve."""
    db, gold = example.db_path, example.query
    judged = verdict_database(db, example.db_id)  # every .sqlite file of its folder, as the official evaluator
    ran = observe(sandbox, db, gold, max_rows=MAX_ROWS)
    if scorer.score(judged, gold, "SELECT 1").gold_error or not ran.ok:
        stats["bad_gold"] += 1
        return None, []
    try:
        tree = sqlglot.parse_one(gold, read="sqlite")
    except (SqlglotError, RecursionError):
        stats["unparsed"] += 1
        return None, []
    case = function_case(gold)
    chosen = render(tree, case) if config.chosen == "rendered" else gold
    if not scorer.score(judged, gold, chosen).match:  # the printer changed the meaning (or gold is nondeterministic)
        stats["unprintable"] += 1
        return None, []
    catalog = load_catalog(db, tables_json, example.db_id)
    gold_result = GoldResult.of(ran)
    negatives, seen = [], {render(tree, case)}  # one text is tried once, whichever family makes it
    for family in config.mutations:
        found = 0
        sqls = candidate_sqls(tree, catalog, family, _rng(config.seed, example.db_id, gold, family), case, seen)
        for sql in islice(sqls, config.candidates_per_mutation):
            stats["candidates_executed"] += 1
            verdict = scorer.score(judged, gold, sql)
            if verdict.match:
                stats["dropped_same_result"] += 1
                continue
            result = None if (verdict.pred_error or "").startswith("timeout") else observe(sandbox, db, sql, max_rows=MAX_ROWS)
            error_type = outcome_type(result, gold_result) if result else "timeout"
            if error_type == "timeout":
                stats["dropped_timeout"] += 1
                continue
            negatives.append(Negative(family, sql, result.ok, error_type, found))
            found += 1
            if result.ok:
                break
    return chosen, negatives


def _pair(example, prompt: list[dict[str, str]], chosen: str, negative: Negative, style: str) -> dict[str, Any]:
    return build_pair(
        prompt, chosen, negative.sql, style,
        pair_type=SYNTHETIC_PREFIX + negative.family, source="synthetic", gold_fallback=True, mutation=negative.family,
        example_id=example.id, db_id=example.db_id, question=example.question, gold_sql=example.query,
        chosen_reward=1.0, rejected_reward=rule_reward(False, negative.executable, 1, 2), turn=1,
        chosen_executable=True, rejected_executable=negative.executable, rejected_error_type=negative.error_type,
    ).to_dict()


def synthesize(examples: list, config: SynthConfig, tables_json: str | None = None, progress: bool = True) -> tuple[list[dict], dict[str, Any]]:
    """The pairs (as dicts, in example order) and the summary of one run. An example that
    appears twice (same id) is used once, so every pair is unique and the cap holds on the output."""
    from tqdm import tqdm

    started = time.perf_counter()
    stats: Counter = Counter()
    first: dict[str, Any] = {}
    unique = [first.setdefault(example.id, example) for example in examples if example.id not in first]
    chosen_sqls, kept, spares = [], [], []
    sandbox, scorer = Sandbox(timeout=config.timeout_sec, max_rows=MAX_ROWS), Scorer(timeout=config.timeout_sec)
    try:
        for example in tqdm(unique, desc="pairs synth", unit="ex", file=sys.stderr, disable=not progress, dynamic_ncols=True):
            chosen, negatives = example_negatives(example, config, scorer, sandbox, tables_json, stats)
            rng = _rng(config.seed, example.db_id, example.query, "select")
            picked, rest = select_negatives(negatives, config.max_errors_per_example, config.prefer_executable_wrong, rng)
            chosen_sqls.append(chosen)
            kept.append(picked)
            spares.append(rest)
    finally:
        sandbox.close()
        scorer.close()
    before = sum(map(len, kept))
    cap_schema_errors(kept, spares, Fraction(str(config.max_schema_error_fraction)), _rng(config.seed, "cap"))
    prompt_config = PromptConfig.of(config)
    pairs = []
    for example, chosen, negatives in zip(unique, chosen_sqls, kept):
        if negatives:
            schema = prompt_schema(example.db_path, example.question, prompt_config, tables_json, example.db_id)
            prompt = build_messages(schema.text, example.question, style=prompt_config.prompt_style)
            pairs += [_pair(example, prompt, chosen, n, prompt_config.prompt_style) for n in negatives]
    families = Counter(p["meta"]["mutation"] for p in pairs)
    return pairs, {
        "examples": len(examples), "duplicate_examples": len(examples) - len(unique),
        "examples_with_pairs": sum(map(bool, kept)), "pairs": len(pairs),
        "per_family": {family: families[family] for family in config.mutations},
        "rejected_error_types": dict(Counter(p["meta"]["rejected_error_type"] for p in pairs).most_common()),
        "executable_fraction": round(sum(p["meta"]["rejected_executable"] for p in pairs) / len(pairs), 4) if pairs else None,
        "candidates_executed": stats["candidates_executed"], "dropped_same_result": stats["dropped_same_result"],
        "dropped_timeout": stats["dropped_timeout"], "cut_by_schema_error_cap": before - sum(map(len, kept)),
        "bad_gold": stats["bad_gold"], "unparsed": stats["unparsed"], "unprintable": stats["unprintable"],
        "wall_s": round(time.perf_counter() - started, 3),
    }


# --------------------------------------------------------------------------- command line


def make_parser(prog: str | None = "text2sql-mlops pairs synth") -> ArgParser:
    parser = ArgParser(prog=prog, description="Synthetic DPO pairs: gold SQL vs one mutation of it, kept only when "
                       "execution shows a different result.")
    flag(parser, "dataset_path", "--dataset", required=True, help="JSON list, JSONL or Spider-layout folder")
    where = parser.add_mutually_exclusive_group(required=True)
    flag(where, "out", "--output", type=output_file, help="pairs JSONL to write")
    flag(where, "output_dir", type=output_folder_type(_written_by_synth), help="a folder for the reference project's three "
         "files instead: dpo_pairs.jsonl, synthetic_error_sql.jsonl (one line per negative) and summary.json")
    flag(parser, "db_root", help="folder of <db_id>/<db_id>.sqlite (default: <dataset folder>/database)")
    flag(parser, "split", default="train", help="split of a Spider-layout folder (default: %(default)s)")
    flag(parser, "tables_json", help="Spider tables.json (default: tables.json next to the dataset, if any)")
    flag(parser, "mutations", default=",".join(MUTATIONS), help="comma-separated families (default: all)")
    add_flags(parser, SynthConfig)  # every other setting of SynthConfig, the prompt's included
    flag(parser, "offset", type=int, default=0, help="skip this many examples (default: %(default)s)")
    flag(parser, "limit", type=int, help="at most this many examples after --offset (default: all)")
    flag(parser, "spread", nargs="?", const=True, default=False, type=yes_no, metavar="BOOL", help="take the --limit examples "
         "evenly spaced over the split, as `rollout --spread` does, instead of the first ones (`--spread false`: the first)")
    add_guard_flags(parser)
    flag(parser, "no_progress", action="store_true", help="no progress bar on stderr")
    flag(parser, "stats", type=output_file, help="also write the summary (counts and the resolved configuration) to this JSON file")
    return parser


def _written_by_synth(folder: Path) -> bool:
    """A folder `pairs synth --output_dir` wrote: only its three files."""
    return holds_only(folder, {"dpo_pairs.jsonl", "synthetic_error_sql.jsonl", "summary.json"})


def negative_rows(pairs: list[dict]) -> list[dict[str, Any]]:
    """One line per synthetic negative, as the reference project's synthetic_error_sql.jsonl."""
    return [{"example_id": p["meta"]["example_id"], "db_id": p["meta"]["db_id"], "question": p["meta"]["question"],
             "gold_sql": p["meta"]["gold_sql"], "error_sql": p["meta"]["rejected_sql"],
             "mutation": p["meta"]["mutation"], "executable": p["meta"]["rejected_executable"],
             "error_type": p["meta"]["rejected_error_type"]} for p in pairs]


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops pairs synth") -> int:
    args = make_parser(prog).parse_args(argv)
    args.mutations = tuple(dict.fromkeys(name.strip() for name in args.mutations.split(",") if name.strip()))
    unknown = [name for name in args.mutations if name not in MUTATIONS]
    if unknown or not args.mutations:
        raise UserError(f"--mutations: unknown {unknown or 'none given'}; choose from {', '.join(MUTATIONS)}")
    for name, minimum in (("max_errors_per_example", 1), ("candidates_per_mutation", 1), ("offset", 0), ("limit", 0)):
        if (getattr(args, name) or 0) < minimum:
            raise UserError(f"--{name} must be at least {minimum}, got {getattr(args, name)}")
    if not 0 <= args.max_schema_error_fraction <= 1 or not 0 < args.timeout_sec < float("inf"):
        raise UserError("--max_schema_error_fraction must be in [0, 1] and --timeout_sec a positive, finite number of seconds")
    config = from_args(SynthConfig, args)
    PromptConfig.of(config).check()
    if args.output_dir and args.stats and Path(args.output_dir).resolve() in Path(args.stats).resolve().parents:
        # The folder is written as a whole and holds only its three files: a stats file put in it
        # made the next run refuse the folder as one the user had added to.
        raise UserError(f"--stats {args.stats} is inside --output_dir {args.output_dir}, which holds only its own three files "
                        "(its summary.json is the same summary); drop --stats or write it outside the folder; nothing was written")
    check_outputs((("--out", args.out), ("--output_dir", args.output_dir), ("--stats", args.stats)),
                  (args.dataset_path, args.db_root, args.tables_json or default_tables_json(args.dataset_path, args.split),
                   args.eval_dataset, args.eval_db_root))
    # Evaluation overlap is left out before --offset/--limit, exactly as `rollout` does, so a
    # pipeline's rollout and synth stages pick the same TRAIN_LIMIT examples.
    eval_split = load_eval_split(args.eval_dataset, args.eval_db_root, args.eval_split, args.eval_same_db_split) if args.eval_dataset else None
    examples = exclude_leaks(load_examples(args.dataset_path, args.db_root, args.split), eval_split, "pairs synth")
    picked = take(examples, args.offset, args.limit, args.spread)
    if examples and not picked:  # (all of them left out by --eval_dataset stays an empty output)
        chosen = f"--offset {args.offset}" + (f" and --limit {args.limit}" if args.limit is not None else "")
        raise UserError(f"no examples to use: {chosen} select none of the "
                        f"{len(examples)} examples of {args.dataset_path}")
    examples = picked
    tables_json = args.tables_json or default_tables_json(args.dataset_path, args.split)
    pairs, summary = synthesize(examples, config, tables_json, progress=not args.no_progress)
    summary["config"] = {"dataset_path": args.dataset_path, "db_root": args.db_root, "split": args.split, "tables_json": tables_json,
                         "offset": args.offset, "limit": args.limit, "spread": args.spread, **asdict(config), "eval_dataset": args.eval_dataset,
                         "eval_split": args.eval_split, "eval_same_db_split": args.eval_same_db_split}
    if args.output_dir:
        with atomic_folder(args.output_dir, _written_by_synth) as staged:
            staged.mkdir()
            write_jsonl(staged / "dpo_pairs.jsonl", pairs)
            write_jsonl(staged / "synthetic_error_sql.jsonl", negative_rows(pairs))
            write_json(staged / "summary.json", summary)
    else:
        write_jsonl(args.out, pairs)
    if args.stats:
        write_json(args.stats, summary)
    print(json.dumps({"out": args.out or args.output_dir, **{k: v for k, v in summary.items() if k != "config"}}))
    if not examples:
        print(f"pairs synth: note: no pairs: --eval_dataset left out every example of {args.dataset_path} (they are "
              "evaluation examples); synthesize from a training split", file=sys.stderr)
    elif not pairs:
        print("pairs synth: note: no pairs: no mutation of these gold queries ran to a different result", file=sys.stderr)
    return 0
