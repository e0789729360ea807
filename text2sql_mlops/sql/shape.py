"""How a query uses its tables, read with sqlglot: aliases, the tables behind them, and
joins a repair could drop, and the catalog tables it reads (``gold_tables``). Feedback
(``rollout/feedback.py``) explains errors with it; ``schema-recall`` scores retrieval against the gold tables.

Names are kept as the query writes them; lookups against the catalog are
case-insensitive, as SQLite's are. A query sqlglot cannot parse has no shape (None).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import traverse_scope

from .catalog import Catalog


@dataclass(frozen=True)
class QueryShape:
    """The tables a query reads, as sqlglot sees them (names as written)."""

    bindings: dict[str, tuple[str, ...]]  # lower-cased alias or table name -> the table(s) it stands for
    spelled: dict[str, str]  # lower-cased alias -> alias as written
    tables: tuple[str, ...]  # tables read, in the order the query names them
    join_only: tuple[str, ...]  # aliases of tables used only in their own join condition


def query_shape(sql: str, catalog: Catalog) -> QueryShape | None:
    """Alias bindings, tables and join-only tables of every scope, in the order the query
    writes them; None when sqlglot cannot parse it."""
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
        scopes = list(traverse_scope(tree))
    except (SqlglotError, RecursionError):  # model SQL can be anything, nested 10,000 deep included
        return None
    position = {id(node): index for index, node in enumerate(tree.find_all(exp.Table, bfs=False))}
    sources = sorted(
        ((position.get(id(source), -1), alias, source.name) for scope in scopes
         for alias, source in scope.sources.items() if isinstance(source, exp.Table)),
    )
    bindings: dict[str, list[str]] = {}
    spelled: dict[str, str] = {}
    for _, alias, table in sources:
        bound = bindings.setdefault(alias.lower(), [])
        bound += [table] if table not in bound else []
        spelled.setdefault(alias.lower(), alias)
    tables = tuple(dict.fromkeys(table for _, _, table in sources))
    join_only = tuple(dict.fromkeys(alias for scope in reversed(scopes) for alias in _join_only(scope, catalog)))
    return QueryShape({k: tuple(v) for k, v in bindings.items()}, spelled, tables, join_only)


def _join_only(scope, catalog: Catalog) -> list[str]:
    """Aliases of a SELECT's joined tables that a repair could drop: no column of theirs
    appears outside join conditions, and they do not bridge two other tables."""
    select = scope.expression
    sources = {alias: source for alias, source in scope.sources.items() if isinstance(source, exp.Table)}
    if not isinstance(select, exp.Select) or not select.args.get("joins") or len(sources) < 2:
        return []
    if any(isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star)) for e in select.expressions):
        return []  # SELECT * / t.* reads every table
    partners: dict[str, set[str]] = {}  # alias -> the other aliases its join conditions compare it with
    for join in select.args["joins"]:
        linked = {column.table.lower() for column in join.find_all(exp.Column) if column.table}
        for alias in linked:
            partners.setdefault(alias, set()).update(linked - {alias})
    used: set[str] = set()
    for column in select.find_all(exp.Column):
        owner = column.find_ancestor(exp.Join, exp.Select)
        if isinstance(owner, exp.Join) and owner.parent is select:
            continue  # a join condition of this SELECT
        if column.table:
            used.add(column.table.lower())
        else:
            used |= {alias.lower() for alias, source in sources.items() if has_column(catalog, source.name, column.name) is not False}
    return [alias for alias in sources if alias.lower() not in used and len(partners.get(alias.lower(), ())) <= 1]


def has_column(catalog: Catalog, table: str, column: str) -> bool | None:
    """Whether ``table`` has ``column`` (case-insensitive); None when the table is unknown."""
    if catalog.resolve(table) is None:
        return None
    return any(c.name.lower() == column.lower() for c in catalog.table(table).columns)


def column_owners(catalog: Catalog, column: str) -> list[str]:
    """The tables of the database that have ``column``, in catalog order."""
    return [table.name for table in catalog.tables if has_column(catalog, table.name, column)]


def gold_tables(sql: str, catalog: Catalog) -> set[str]:
    """The catalog tables that ``sql`` reads, spelled as in the catalog.

    Walks every scope sqlglot finds (subqueries, CTEs, set operations), so a
    CTE name is never taken for a table, yet a table that a CTE of the same
    name reads is. Aliases need no resolving: a source's table name is kept
    apart from its alias. Names the catalog lacks are dropped; SQL that does
    not parse gives the empty set.
    """
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
        names = {source.name for scope in traverse_scope(tree) for source in scope.sources.values() if isinstance(source, exp.Table)}
    except SqlglotError:
        return set()
    return {resolved for name in names if (resolved := catalog.resolve(name))}
