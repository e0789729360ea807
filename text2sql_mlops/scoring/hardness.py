"""Spider hardness (easy / medium / hard / extra) of a gold SQL query.

The official evaluator (``evaluation.py``: ``eval_hardness`` over
``count_component1``, ``count_component2`` and ``count_others``) parses the SQL
into its own tree and counts clauses of the *outermost* query only. This module
computes the same three counts from a sqlglot tree, including the official
counting quirks that change levels:

- only the outermost SELECT counts; with ``A UNION B`` (or INTERSECT/EXCEPT) the
  outermost query is ``A`` and everything after the operator, a trailing
  ORDER BY/LIMIT included, belongs to the nested right-hand query;
- ``count_others`` counts, as "aggregations", every negated condition in WHERE
  and HAVING (``NOT IN``, ``NOT LIKE``, ``NOT BETWEEN``) and every AND/OR that
  joins HAVING conditions, but never an aggregate inside a HAVING condition;
- a select item counts as an aggregation only when the item itself is one
  (``count(*)``), not when it is inside arithmetic (``a + sum(b)``).
"""

from __future__ import annotations

from dataclasses import dataclass

LEVELS = ("easy", "medium", "hard", "extra")


@dataclass(frozen=True)
class Components:
    """The three counts ``eval_hardness`` classifies on."""

    component1: int  # WHERE, GROUP BY, ORDER BY, LIMIT, joins, ORs, LIKEs
    component2: int  # nested queries: subqueries as condition values, INTERSECT/UNION/EXCEPT
    others: int  # >1 aggregation, >1 select item, >1 WHERE condition, >1 GROUP BY column


def hardness(sql: str) -> str:
    """The Spider hardness level of ``sql``; ``ValueError`` when it cannot be parsed."""
    return classify(components(sql))


def classify(c: Components) -> str:
    """The official thresholds, as in ``eval_hardness``."""
    c1, c2, others = c.component1, c.component2, c.others
    if c1 <= 1 and others == 0 and c2 == 0:
        return "easy"
    if (others <= 2 and c1 <= 1 and c2 == 0) or (c1 <= 2 and others < 2 and c2 == 0):
        return "medium"
    if (
        (others > 2 and c1 <= 2 and c2 == 0)
        or (2 < c1 <= 3 and others <= 2 and c2 == 0)
        or (c1 <= 1 and others == 0 and c2 <= 1)
    ):
        return "hard"
    return "extra"


def components(sql: str) -> Components:
    """Count the components of the outermost query of ``sql``."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError as exc:
        raise ValueError(f"cannot parse SQL for hardness: {exc}") from None

    has_set_operation = isinstance(tree, exp.SetOperation)
    while isinstance(tree, exp.SetOperation):
        tree = tree.this  # the leftmost SELECT is the official "outermost" query
    while isinstance(tree, (exp.Subquery, exp.Paren)):
        tree = tree.this
    if not isinstance(tree, exp.Select):
        raise ValueError(f"not a SELECT query: {sql[:80]!r}")

    join_conditions = [_leaves(join.args.get("on")) for join in tree.args.get("joins") or []]
    on = _Conditions([leaf for c in join_conditions for leaf in c.leaves], sum(c.ors for c in join_conditions))
    where = _leaves(_clause(tree, "where"))
    having = _leaves(_clause(tree, "having"))
    group = (tree.args.get("group") or exp.Group()).expressions
    order = (tree.args.get("order") or exp.Order()).expressions
    table_units = 1 + len(tree.args.get("joins") or []) if _from(tree) is not None else 0

    component1 = (
        bool(where.leaves) + bool(group) + bool(order) + (tree.args.get("limit") is not None)
        + max(table_units - 1, 0)
        + on.ors + where.ors + having.ors
        + sum(_is_like(leaf) for leaf in on.leaves + where.leaves + having.leaves)
    )
    component2 = has_set_operation + sum(
        _nested_values(leaf) for leaf in on.leaves + where.leaves + having.leaves
    )

    aggregations = (
        sum(_is_aggregate(_unalias(item)) for item in tree.expressions)
        + sum(_is_negated(leaf) for leaf in where.leaves)
        + sum(_is_aggregate(column) for column in group)
        + sum(_order_aggregates(item.this if isinstance(item, exp.Ordered) else item) for item in order)
        # HAVING: each joining AND/OR and each negated condition (the official quirk)
        + max(len(having.leaves) - 1, 0) + sum(_is_negated(leaf) for leaf in having.leaves)
    )
    others = (aggregations > 1) + (len(tree.expressions) > 1) + (len(where.leaves) > 1) + (len(group) > 1)
    return Components(int(component1), int(component2), int(others))


@dataclass
class _Conditions:
    leaves: list  # the condition units, in order
    ors: int  # how many OR connectors join them


def _from(select):
    return select.args.get("from_", select.args.get("from"))


def _clause(select, name: str):
    clause = select.args.get(name)
    return clause.this if clause is not None else None


def _leaves(condition) -> _Conditions:
    """The condition units of an AND/OR tree as the official parser sees them.

    The official parser reads conditions as a flat token sequence. When a
    condition's value is a column (``T2.Mar < T2.Jul``) it reads the value up to
    the next AND, comma, parenthesis or clause keyword, so any ``OR ...`` right
    after it is swallowed into that value and never counted.
    """
    units = _in_order(condition, connector=None)
    kept: list = []
    ors = 0
    swallowing = False
    for unit, connector in units:
        if swallowing and connector == "or":
            continue
        if kept:
            ors += connector == "or"
        kept.append(unit)
        swallowing = _value_is_column(unit)
    return _Conditions(kept, ors)


def _in_order(condition, connector):
    """``[(unit, connector before it)]`` left to right; the first has ``connector``."""
    from sqlglot import exp

    if condition is None:
        return []
    if isinstance(condition, exp.Paren):
        return _in_order(condition.this, connector)
    if isinstance(condition, exp.Connector):
        joined_by = "or" if isinstance(condition, exp.Or) else "and"
        return _in_order(condition.this, connector) + _in_order(condition.expression, joined_by)
    return [(condition, connector)]


def _value_is_column(unit) -> bool:
    """Whether the official parser reads this condition's (last) value as a column."""
    from sqlglot import exp

    unit = _unnegated(unit)
    value = unit.args.get("high") if isinstance(unit, exp.Between) else unit.args.get("expression")
    # "double-quoted" text is an identifier to sqlglot but a string value to the official parser
    return isinstance(value, exp.Column) and not value.this.args.get("quoted")


def _unnegated(leaf):
    from sqlglot import exp

    return leaf.this if isinstance(leaf, exp.Not) else leaf


def _is_negated(leaf) -> bool:
    from sqlglot import exp

    return isinstance(leaf, exp.Not) or bool(leaf.args.get("negate"))


def _is_like(leaf) -> bool:
    from sqlglot import exp

    return isinstance(_unnegated(leaf), exp.Like)


def _nested_values(leaf) -> int:
    """Subqueries used as the value(s) of a condition (``x IN (SELECT ...)``, ``x > (SELECT ...)``)."""
    from sqlglot import exp

    unit = _unnegated(leaf)
    values = [value for key, value in unit.args.items() if key != "this"]
    return sum(isinstance(value, (exp.Subquery, exp.Select)) for value in values)


def _unalias(expression):
    from sqlglot import exp

    return expression.this if isinstance(expression, exp.Alias) else expression


def _is_aggregate(expression) -> bool:
    from sqlglot import exp

    while isinstance(expression, exp.Paren):
        expression = expression.this
    return isinstance(expression, (exp.Count, exp.Max, exp.Min, exp.Sum, exp.Avg))


def _order_aggregates(expression) -> int:
    """An ORDER BY item is one or two column units joined by + - * /; count their aggregates."""
    from sqlglot import exp

    while isinstance(expression, exp.Paren):
        expression = expression.this
    if isinstance(expression, (exp.Add, exp.Sub, exp.Mul, exp.Div)):
        return _is_aggregate(expression.this) + _is_aggregate(expression.expression)
    return int(_is_aggregate(expression))
