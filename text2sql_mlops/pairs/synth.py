"""``pairs synth``: synthetic hard negatives, one plausible mistake in the gold SQL, checked by execution.

    text2sql-mlops pairs synth --dataset_path data/spider --out pairs/synth.jsonl --limit 500 \\
        --prefer_executable_wrong --max_schema_error_fraction 0.2 --eval_dataset data/spider --eval_split dev

A pair teaches most when the rejected answer is a near miss. Mined pairs need a
model's failures; these need only gold SQL, so every training example can have some.

Per example, each mutation family (``MUTATIONS``) lists single edits of the gold's
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

import contextlib
import json
import random
import re
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, fields
from fractions import Fraction
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.sqlite import SQLite
from sqlglot.errors import SqlglotError

from ..core.cliutil import ArgParser, flag
from ..core.errors import UserError
from ..core.fileio import output_file, output_folder_type
from ..core.records import SYNTHETIC_PREFIX, Pair

MAX_ROWS = 10_000  # rows fetched per query, as in the rollout
AGGREGATES = (exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max)
FLIPS = {exp.EQ: (exp.NEQ,), exp.NEQ: (exp.EQ,), exp.GT: (exp.LT, exp.GTE), exp.LT: (exp.GT, exp.LTE),
         exp.GTE: (exp.LTE, exp.GT), exp.LTE: (exp.GTE, exp.LT)}

# An edit: (find the target nodes in a tree, which one, change it in place). Applied to a copy.
Edit = tuple[Callable[[exp.Expression], list], int, Callable[[exp.Expression], Any]]


# --------------------------------------------------------------------------- printing


class _Printer(SQLite.Generator):
    """SQLite as Spider writes it: ``!=`` and ``x NOT IN`` / ``x IS NOT NULL``, not ``<>`` and ``NOT x IN``."""

    TRANSFORMS = {**SQLite.Generator.TRANSFORMS, exp.NEQ: lambda self, e: self.binary(e, "!=")}

    def not_sql(self, expression: exp.Not) -> str:
        inner = expression.this
        if isinstance(inner, exp.Is):
            return f"{self.sql(inner, 'this')} IS NOT {self.sql(inner, 'expression')}"
        if isinstance(inner, (exp.In, exp.Between, exp.Like)):
            left, text = self.sql(inner, "this"), self.sql(inner)
            if text.startswith(left + " "):
                return f"{left} NOT {text[len(left) + 1:]}"
        return super().not_sql(expression)


def function_case(gold: str) -> str:
    """"lower" when the gold writes its aggregates in lower case (Spider mostly does), else "upper"."""
    names = re.findall(r"\b(count|sum|avg|min|max)\s*\(", gold, re.IGNORECASE)
    return "upper" if sum(n.isupper() for n in names) > len(names) / 2 else "lower"


def render(tree: exp.Expression, case: str) -> str:
    return _Printer(dialect="sqlite", normalize_functions=case).generate(tree)


@lru_cache(maxsize=65536)
def _bare_name_ok(name: str) -> bool:
    """Whether SQLite reads ``name`` unquoted as that column name (not a keyword, no odd characters)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return False
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        try:
            conn.execute(f'SELECT {name} FROM (SELECT 1 AS "{name}")')
            return True
        except sqlite3.Error:
            return False


def _rename(name: str) -> Callable[[exp.Expression], Any]:
    """Change a column's or table's name to ``name``, quoted when it was or must be."""
    return lambda node: node.set("this", exp.to_identifier(name, quoted=node.this.quoted or not _bare_name_ok(name)))


# --------------------------------------------------------------------------- reading the tree


def _sources(select: exp.Select) -> dict[str, str]:
    """Lower-cased alias (or name) -> table name, for the tables a SELECT reads directly."""
    from_ = select.args.get("from_")
    items = ([from_.this] if from_ else []) + [join.this for join in select.args.get("joins") or ()]
    return {item.alias_or_name.lower(): item.name for item in items if isinstance(item, exp.Table)}


def _owner(column: exp.Column, catalog) -> str | None:
    """The catalog table a column reference reads: by its qualifier, else the first table of its
    SELECT (or of an enclosing one, for correlated subqueries) that has such a column."""
    from ..sql.shape import has_column

    select = column.find_ancestor(exp.Select)
    while select is not None:
        sources = _sources(select)
        if column.table and column.table.lower() in sources:
            return catalog.resolve(sources[column.table.lower()])
        if not column.table:
            owner = next((name for name in sources.values() if has_column(catalog, name, column.name)), None)
            if owner:
                return catalog.resolve(owner)
        select = select.find_ancestor(exp.Select)
    return None


def _in_filter(node: exp.Expression) -> bool:
    """Inside a WHERE or HAVING (not a join condition or the select list)."""
    return isinstance(node.find_ancestor(exp.Where, exp.Having, exp.Join, exp.Select), (exp.Where, exp.Having))


def _conjuncts(condition: exp.Expression) -> list[exp.Expression]:
    return list(condition.flatten()) if isinstance(condition, exp.And) else [condition]


# --------------------------------------------------------------------------- mutation families
# Each takes (gold tree, catalog) and returns kinds of edits (lists of Edit); no kind, no negatives.


def _edits(targets: Callable[[exp.Expression], list], tree: exp.Expression, changes: Callable[[Any], list]) -> list[Edit]:
    """One edit per target node of ``tree`` and change that ``changes(node)`` offers for it."""
    return [(targets, index, change) for index, node in enumerate(targets(tree)) for change in changes(node)]


def _siblings(column: exp.Column, catalog) -> list[str]:
    owner = _owner(column, catalog)
    return [c.name for c in catalog.table(owner).columns if c.name.lower() != column.name.lower()] if owner else []


def wrong_column(tree, catalog) -> list[list[Edit]]:
    """A real column in place of the right one: a sibling of the same table (the classic near
    miss) or a column that lives in another table (the schema-linking mistake)."""
    names = {column.name.lower(): column.name for table in catalog.tables for column in table.columns}

    def targets(t):
        return [c for c in t.find_all(exp.Column) if isinstance(c.this, exp.Identifier) and c.name.lower() in names]

    def elsewhere(column):
        near = {column.name.lower(), *(name.lower() for name in _siblings(column, catalog))}
        return [_rename(name) for lower, name in names.items() if lower not in near]

    return [_edits(targets, tree, lambda c: [_rename(name) for name in _siblings(c, catalog)]), _edits(targets, tree, elsewhere)]


def wrong_table(tree, catalog) -> list[list[Edit]]:
    """Another table under the same alias: one linked by a foreign key (easy to confuse) or any other."""

    def targets(t):
        return [table for table in t.find_all(exp.Table) if catalog.resolve(table.name)]

    def others(table, linked: bool):
        name = catalog.resolve(table.name)
        return [_rename(t) for t in catalog.table_names if t != name and (t in catalog.linked_tables(name)) == linked]

    return [_edits(targets, tree, lambda t: others(t, True)), _edits(targets, tree, lambda t: others(t, False))]


def missing_join(tree, catalog) -> list[list[Edit]]:
    """One joined table dropped with its ON condition: the query forgets a table it needs."""
    return [_edits(lambda t: list(t.find_all(exp.Join)), tree, lambda join: [exp.Expression.pop])]


def wrong_aggregation(tree, catalog) -> list[list[Edit]]:
    """COUNT/SUM/AVG/MIN/MAX swapped for another, removed, or added to a plain selected column."""

    def aggregates(t):
        return [a for a in t.find_all(*AGGREGATES) if not isinstance(a.this, exp.Star)]

    def plain(t):
        return [e.unalias() for s in t.find_all(exp.Select) for e in s.expressions
                if isinstance(e.unalias(), exp.Column) and not isinstance(e.unalias().this, exp.Star)]

    def swaps(node):
        return [lambda n, cls=cls: n.replace(cls(this=n.this)) for cls in AGGREGATES if type(node) is not cls]

    def unwrap(node):
        node.replace(node.this.expressions[0] if isinstance(node.this, exp.Distinct) else node.this)

    def wraps(node):
        return [lambda n, cls=cls: n.replace(cls(this=n.copy())) for cls in AGGREGATES]

    return [_edits(aggregates, tree, swaps), _edits(aggregates, tree, lambda a: [unwrap]), _edits(plain, tree, wraps)]


def wrong_condition(tree, catalog) -> list[list[Edit]]:
    """A filter gone wrong: comparison flipped, number off by one, AND/OR swapped, or one WHERE
    conjunct dropped (the whole WHERE when it has one)."""

    def comparisons(t):
        return [c for c in t.find_all(*FLIPS) if _in_filter(c)]

    def numbers(t):
        return [n for n in t.find_all(exp.Literal) if n.is_number and _in_filter(n)]

    def connectors(t):
        return [c for c in t.find_all(exp.And, exp.Or) if _in_filter(c)]

    def flips(node):
        return [lambda n, cls=cls: n.replace(cls(this=n.this, expression=n.expression)) for cls in FLIPS[type(node)]]

    def shift(node, delta):
        value = float(node.this) + delta
        node.replace(exp.Literal.number(int(value) if value.is_integer() and "." not in node.this else value))

    def swap_connector(node):
        other = (exp.Or if isinstance(node, exp.And) else exp.And)(this=node.this, expression=node.expression)
        node.replace(exp.Paren(this=other) if isinstance(node.parent, exp.Connector) else other)

    def drop(where, j):
        rest = [c for k, c in enumerate(_conjuncts(where.this)) if k != j]
        where.set("this", exp.and_(*rest)) if rest else where.pop()

    return [
        _edits(comparisons, tree, flips),
        _edits(numbers, tree, lambda n: [lambda x: shift(x, 1), lambda x: shift(x, -1)]),
        _edits(connectors, tree, lambda c: [swap_connector]),
        _edits(lambda t: list(t.find_all(exp.Where)), tree,
               lambda w: [lambda x, j=j: drop(x, j) for j in range(len(_conjuncts(w.this)))]),
    ]


def wrong_group_by(tree, catalog) -> list[list[Edit]]:
    """GROUP BY dropped (with the HAVING that needs it) or grouped by a sibling column."""

    def keys(t):
        return [key for group in t.find_all(exp.Group) for key in group.expressions if isinstance(key, exp.Column)]

    def drop(group):
        select = group.parent
        group.pop()
        if select.args.get("having"):
            select.args["having"].pop()

    return [_edits(lambda t: list(t.find_all(exp.Group)), tree, lambda g: [drop]),
            _edits(keys, tree, lambda key: [_rename(name) for name in _siblings(key, catalog)])]


def wrong_order_limit(tree, catalog) -> list[list[Edit]]:
    """ASC/DESC flipped, LIMIT off by one, or LIMIT dropped: the top-k answer gone wrong."""

    def limits(t):
        return [limit for limit in t.find_all(exp.Limit) if isinstance(limit.expression, exp.Literal) and limit.expression.is_int]

    def flip(node):
        desc = not node.args.get("desc")
        node.set("desc", desc)
        node.set("nulls_first", not desc)  # SQLite's own NULL order for the new direction: nothing to print

    def off_by_one(limit):
        count = int(limit.expression.this)
        return [lambda n, v=v: n.set("expression", exp.Literal.number(v)) for v in (count + 1, count - 1) if v >= 1]

    return [_edits(lambda t: list(t.find_all(exp.Ordered)), tree, lambda o: [flip]),
            _edits(limits, tree, off_by_one), _edits(limits, tree, lambda limit: [exp.Expression.pop])]


MUTATIONS: dict[str, Callable[[exp.Expression, Any], list[list[Edit]]]] = {
    family.__name__: family
    for family in (wrong_column, wrong_table, missing_join, wrong_aggregation, wrong_condition, wrong_group_by, wrong_order_limit)
}


def candidate_sqls(tree: exp.Expression, catalog, family: str, rng: random.Random, case: str, seen: set[str] | None = None):
    """The family's mutated SQL texts, lazily, in seeded order: kinds shuffled, then interleaved one
    edit of each kind at a time. Texts in ``seen`` (default: the printed gold) are skipped; it grows."""
    kinds = [list(kind) for kind in MUTATIONS[family](tree, catalog) if kind]
    for kind in kinds:
        rng.shuffle(kind)
    rng.shuffle(kinds)
    seen = {render(tree, case)} if seen is None else seen
    for position in range(max(map(len, kinds), default=0)):
        for kind in kinds:
            if position < len(kind):
                targets, index, change = kind[position]
                copy = tree.copy()
                try:
                    change(targets(copy)[index])
                    sql = render(copy, case)
                except SqlglotError:
                    continue
                if sql not in seen:
                    seen.add(sql)
                    yield sql


# --------------------------------------------------------------------------- checking and choosing


@dataclass
class Negative:
    family: str
    sql: str
    executable: bool
    error_type: str  # feedback.ERROR_TYPES
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

    mutations: tuple[str, ...] = tuple(MUTATIONS)
    prefer_executable_wrong: bool = False
    max_schema_error_fraction: float = 0.2
    max_errors_per_example: int = 2
    candidates_per_mutation: int = 4
    seed: int = 0
    timeout_sec: float = 10.0
    chosen: str = "rendered"  # rendered | gold
    schema_mode: str = "bm25_fk"
    top_k_tables: int = 6
    fk_hops: int = 1
    sample_rows: int = 0
    schema_format: str = "create_table"
    sample_values: int = 0


def example_negatives(example, config: SynthConfig, scorer, sandbox, tables_json: str | None, stats: Counter) -> tuple[str | None, list[Negative]]:
    """(chosen SQL, verified negatives) of one example; (None, []) when its gold cannot serve."""
    from ..scoring.errors import GoldResult, observe, outcome_type
    from ..sql.catalog import load_catalog

    db, gold = example.db_path, example.query
    ran = observe(sandbox, db, gold, max_rows=MAX_ROWS)
    if scorer.score(db, gold, "SELECT 1").gold_error or not ran.ok:
        stats["bad_gold"] += 1
        return None, []
    try:
        tree = sqlglot.parse_one(gold, read="sqlite")
    except (SqlglotError, RecursionError):
        stats["unparsed"] += 1
        return None, []
    case = function_case(gold)
    chosen = render(tree, case) if config.chosen == "rendered" else gold
    if not scorer.score(db, gold, chosen).match:  # the printer changed the meaning (or gold is nondeterministic)
        stats["unprintable"] += 1
        return None, []
    catalog = load_catalog(db, tables_json, example.db_id)
    gold_result = GoldResult(False, None, ran.rows, ran.row_count)
    negatives, seen = [], {render(tree, case)}  # one text is tried once, whichever family makes it
    for family in config.mutations:
        found = 0
        sqls = candidate_sqls(tree, catalog, family, _rng(config.seed, example.db_id, gold, family), case, seen)
        for sql in islice(sqls, config.candidates_per_mutation):
            stats["candidates_executed"] += 1
            verdict = scorer.score(db, gold, sql)
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


def _pair(example, prompt: list[dict[str, str]], chosen: str, negative: Negative) -> dict[str, Any]:
    from ..rollout.rewards import rule_reward

    return Pair.create(
        prompt, chosen, negative.sql,
        pair_type=SYNTHETIC_PREFIX + negative.family, source="synthetic", gold_fallback=True, mutation=negative.family,
        example_id=example.id, db_id=example.db_id, question=example.question, gold_sql=example.query,
        chosen_reward=1.0, rejected_reward=rule_reward(False, negative.executable, 1, 2), turn=1,
        chosen_executable=True, rejected_executable=negative.executable, rejected_error_type=negative.error_type,
    ).to_dict()


def synthesize(examples: list, config: SynthConfig, tables_json: str | None = None, progress: bool = True) -> tuple[list[dict], dict[str, Any]]:
    """The pairs (as dicts, in example order) and the summary of one run. An example that
    appears twice (same id) is used once, so every pair is unique and the cap holds on the output."""
    from tqdm import tqdm

    from ..prompts import build_messages
    from ..schema.select import PromptConfig, prompt_schema
    from ..scoring.scorer import Scorer
    from ..sql.sandbox import Sandbox

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
            pairs += [_pair(example, build_messages(schema.text, example.question), chosen, n) for n in negatives]
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
    d = SynthConfig()
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
    flag(parser, "schema_mode", default=d.schema_mode, help="prompt schema: full, retrieved, bm25 or bm25_fk (default: %(default)s)")
    flag(parser, "top_k_tables", type=int, default=d.top_k_tables, help="(default: %(default)s)")
    flag(parser, "fk_hops", type=int, default=d.fk_hops, help="(default: %(default)s)")
    flag(parser, "sample_rows", type=int, default=d.sample_rows, help="(default: %(default)s)")
    flag(parser, "schema_format", default=d.schema_format, help="create_table, compact or seed (default: %(default)s)")
    flag(parser, "sample_values", type=int, default=d.sample_values, help="(default: %(default)s)")
    flag(parser, "mutations", default=",".join(MUTATIONS), help="comma-separated families (default: all)")
    flag(parser, "prefer_executable_wrong", action="store_true", help="pick negatives that run (and are wrong) first")
    flag(parser, "max_schema_error_fraction", type=float, default=d.max_schema_error_fraction,
         help="at most this fraction of the pairs may have a rejected SQL that fails (default: %(default)s)")
    flag(parser, "max_errors_per_example", type=int, default=d.max_errors_per_example, help="negatives per example (default: %(default)s)")
    flag(parser, "candidates_per_mutation", type=int, default=d.candidates_per_mutation,
         help="mutations executed per family and example (default: %(default)s)")
    flag(parser, "chosen", choices=("rendered", "gold"), default=d.chosen,
         help="chosen SQL: the gold printed like the negatives, or the gold text as written (default: %(default)s)")
    flag(parser, "offset", type=int, default=0, help="skip this many examples (default: %(default)s)")
    flag(parser, "limit", type=int, help="at most this many examples after --offset (default: all)")
    flag(parser, "seed", type=int, default=d.seed, help="(default: %(default)s)")
    flag(parser, "timeout_sec", type=float, default=d.timeout_sec, help="seconds per query (default: %(default)s)")
    flag(parser, "eval_dataset", help="leave out examples that overlap this evaluation set (id, question or database)")
    flag(parser, "eval_split", default="dev", help="split of a Spider-layout --eval_dataset (default: %(default)s)")
    flag(parser, "eval_same_db_split", help="another split of --eval_dataset asked of the training databases "
         "(e.g. test_same_db): guarded by example and question, not by database")
    flag(parser, "eval_db_root", help="database folder of --eval_dataset (default: next to it)")
    flag(parser, "no_progress", action="store_true", help="no progress bar on stderr")
    return parser


def _written_by_synth(folder: Path) -> bool:
    """A folder `pairs synth --output_dir` wrote before folders carried the fileio marker."""
    return {p.name for p in folder.iterdir()} <= {"dpo_pairs.jsonl", "synthetic_error_sql.jsonl", "summary.json"}


def negative_rows(pairs: list[dict]) -> list[dict[str, Any]]:
    """One line per synthetic negative, as the reference project's synthetic_error_sql.jsonl."""
    return [{"example_id": p["meta"]["example_id"], "db_id": p["meta"]["db_id"], "question": p["meta"]["question"],
             "gold_sql": p["meta"]["gold_sql"], "error_sql": p["meta"]["rejected_sql"],
             "mutation": p["meta"]["mutation"], "executable": p["meta"]["rejected_executable"],
             "error_type": p["meta"]["rejected_error_type"]} for p in pairs]


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops pairs synth") -> int:
    from ..core.fileio import write_jsonl
    from ..data.guard import exclude_leaks, load_eval_split
    from ..data.load import load_examples
    from ..rollout.config import default_tables_json
    from ..schema.select import PromptConfig

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
    config = SynthConfig(**{f.name: getattr(args, f.name) for f in fields(SynthConfig)})
    PromptConfig.of(config).check()
    # Evaluation overlap is left out before --offset/--limit, exactly as `rollout` does, so a
    # pipeline's rollout and synth stages pick the same TRAIN_LIMIT examples.
    eval_split = load_eval_split(args.eval_dataset, args.eval_db_root, args.eval_split, args.eval_same_db_split) if args.eval_dataset else None
    examples = exclude_leaks(load_examples(args.dataset_path, args.db_root, args.split), eval_split, "pairs synth")
    end = None if args.limit is None else args.offset + args.limit
    if examples and not examples[args.offset:end]:  # (all of them left out by --eval_dataset stays an empty output)
        raise UserError(f"no examples to use: --offset {args.offset} and --limit {args.limit} select none of the "
                        f"{len(examples)} examples of {args.dataset_path}")
    examples = examples[args.offset:end]
    tables_json = args.tables_json or default_tables_json(args.dataset_path)
    pairs, summary = synthesize(examples, config, tables_json, progress=not args.no_progress)
    if args.output_dir:
        from ..core.fileio import atomic_folder, write_json

        with atomic_folder(args.output_dir, _written_by_synth) as staged:
            staged.mkdir()
            write_jsonl(staged / "dpo_pairs.jsonl", pairs)
            write_jsonl(staged / "synthetic_error_sql.jsonl", negative_rows(pairs))
            write_json(staged / "summary.json", summary)
    else:
        write_jsonl(args.out, pairs)
    print(json.dumps({"out": args.out or args.output_dir, **summary}))
    if not pairs:
        print("pairs synth: note: no pairs: no mutation of these gold queries ran to a different result", file=sys.stderr)
    return 0
