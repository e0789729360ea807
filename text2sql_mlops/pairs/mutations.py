"""Mutation families for synthetic hard negatives: single edits of a gold query's sqlglot tree.

Each family (``MUTATIONS``: wrong_column, wrong_table, missing_join, wrong_aggregation,
wrong_condition, wrong_group_by, wrong_order_limit) lists its edits in kinds;
``candidate_sqls`` shuffles the kinds with a seeded ``random.Random``, interleaves them
and prints each edited copy with ``render`` (SQLite with the gold's function-name case,
``!=`` and ``x NOT IN``), so chosen and rejected differ only by the mutation.
``pairs synth`` executes and keeps the ones that are real negatives; the SFT repair
examples (``training/repair_examples.py``) draw failing queries from them too.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from sqlglot import exp
from sqlglot.dialects.sqlite import SQLite
from sqlglot.errors import SqlglotError

from ..sql.shape import has_column
from ..sql.text import bare_name_ok

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


def _rename(name: str) -> Callable[[exp.Expression], Any]:
    """Change a column's or table's name to ``name``, quoted when it was or must be."""
    return lambda node: node.set("this", exp.to_identifier(name, quoted=node.this.quoted or not bare_name_ok(name)))


# --------------------------------------------------------------------------- reading the tree


def _sources(select: exp.Select) -> dict[str, str]:
    """Lower-cased alias (or name) -> table name, for the tables a SELECT reads directly."""
    from_ = select.args.get("from_")
    items = ([from_.this] if from_ else []) + [join.this for join in select.args.get("joins") or ()]
    return {item.alias_or_name.lower(): item.name for item in items if isinstance(item, exp.Table)}


def _owner(column: exp.Column, catalog) -> str | None:
    """The catalog table a column reference reads: by its qualifier, else the first table of its
    SELECT (or of an enclosing one, for correlated subqueries) that has such a column."""
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
