"""Execution feedback for repair turns: what the model is told about its last query.

Two independent choices shape the text.

Feedback mode: which facts the text may use (``FEEDBACK_MODES``).

  ==============  ==========================================================  ===========
  error_only      the SQLite error; of a query that ran, only that it ran      gold-free
  online_visible  the error, or the query's own result: row count, first       gold-free
                  rows, warnings (empty result, cartesian or looped full
                  scans in EXPLAIN QUERY PLAN)
  result_status   the error, or whether the result matches the gold result,    uses gold
                  and (column detail) both row counts
  oracle_rows     result_status plus (column detail) the first gold rows       uses gold
                  next to the query's own
  ==============  ==========================================================  ===========

A gold-free mode is never handed the gold result (``build_feedback`` drops it), so
its text cannot leak it, whatever a section function does.

Detail level: how much analysis is added (``DETAIL_LEVELS``), each a tuple of
section functions run in order, so a level is one line of data:

- ``basic``: the status line: the SQLite error, or the result status of the mode.
- ``column``: + for a name SQLite cannot resolve, the invalid identifier, what its
  alias stands for, the tables that really have the missing column (for a name no
  table has, the columns its words name: ``creation_year`` -> ``artwork.yr_created``),
  and the columns of the query's tables (aliases and columns are read with sqlglot,
  ``sql/shape.py``);
  + the result details the mode allows (row counts, first rows, warnings).
- ``minimal``: column + the Column-Minimal Repair instruction: take columns from
  the tables that have them and drop joins that are not needed instead of
  patching aliases, naming the tables the query joins only for their join condition.

The facts are ``scoring/errors.py``'s: what a query's run showed (``Execution``, from
``observe``, which runs it once and keeps what any mode may need; the guard signals of
``online_guarded`` repair come from it too) and the gold result (``GoldResult``). This
module only words them.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

import sqlglot
from sqlglot import exp

from ..prompts import COLUMN_MINIMAL_RULE
from ..scoring.errors import Execution, GoldResult, unresolved_name
from ..sql.catalog import Catalog
from ..sql.shape import QueryShape, column_owners, has_column, query_shape

CELL_CHARS = 40


@dataclass(frozen=True)
class Diagnosis:
    """Everything one feedback text may draw on."""

    sql: str
    execution: Execution
    catalog: Catalog
    gold: GoldResult | None = None

    @functools.cached_property
    def shape(self) -> QueryShape | None:
        """The query's tables and aliases, parsed once for all sections."""
        return query_shape(self.sql, self.catalog)


# --------------------------------------------------------------------------- sections


def _status(d: Diagnosis, mode: FeedbackMode) -> list[str]:
    if not d.sql:
        return ["The answer contained no SQL query: reply with one SQLite query inside a ```sql code block."]
    if not d.execution.ok:
        return [f"The query failed with an error: {d.execution.error}"]
    return [mode.status(d)]


def _identifier(d: Diagnosis, mode: FeedbackMode) -> list[str]:
    unresolved = unresolved_name(d.execution.error)
    if unresolved is None:
        return []
    kind, name = unresolved
    shape = d.shape
    if kind == "table":
        lines = [f"Invalid identifier: there is no table {name}.{_similar(name, d.catalog.table_names)}",
                 f"Tables of the database: {', '.join(d.catalog.table_names)}."]
    elif kind == "ambiguous":
        having = [_alias_label(shape, table) for table in (shape.tables if shape else ()) if has_column(d.catalog, table, name)]
        lines = [f"Ambiguous identifier: {name} is a column of several tables of the query"
                 + (f" ({', '.join(having)})" if having else "") + "; qualify it with the alias of the table you mean."]
    else:
        lines = _missing_column(name, shape, d.catalog)
    if shape:
        lines += _aliases_and_columns(shape, d.catalog)
    return lines


def _missing_column(name: str, shape: QueryShape | None, catalog: Catalog) -> list[str]:
    qualifier, _, column = name.rpartition(".")
    bound = shape.bindings.get(qualifier.lower(), ()) if shape and qualifier else ()
    if qualifier and not bound:
        why = f"{qualifier} is not a table or alias of the query."
    elif qualifier:
        stands = " / ".join(bound)
        why = f"{stands} has no column {column}." if stands.lower() == qualifier.lower() else f"{qualifier} stands for {stands}, which has no column {column}."
    else:
        why = ""
    owners = column_owners(catalog, column)
    if owners:
        where = f"Tables that have a column {column}: {', '.join(_alias_label(shape, table) for table in owners)}."
    else:
        every = sorted({c.name for table in catalog.tables for c in table.columns})
        parts = _name_parts(column, catalog)
        where = f"No table of the database has a column {column}." + (
            f" Columns its parts name: {', '.join(parts)}." if parts else _similar(column, every))
    return [f"Invalid identifier: {name}. {why}".strip(), where]


def _aliases_and_columns(shape: QueryShape, catalog: Catalog) -> list[str]:
    lines = []
    aliases = [f"{shape.spelled[alias]} = {' / '.join(tables)}" for alias, tables in shape.bindings.items()
               if [alias] != [table.lower() for table in tables]]
    if aliases:
        lines.append(f"Aliases in the query: {', '.join(aliases)}.")
    known = [catalog.table(table) for table in shape.tables if catalog.resolve(table)]
    if known:
        lines.append("Columns of the query's tables:")
        lines += [f"- {table.name}: {', '.join(c.name for c in table.columns)}" for table in known]
    return lines


def _alias_label(shape: QueryShape | None, table: str) -> str:
    """``table``, with the aliases the query gives it: ``singer (T1 in the query)``."""
    aliases = [shape.spelled[a] for a, bound in shape.bindings.items() if table in bound and a != table.lower()] if shape else []
    return f"{table} ({', '.join(aliases)} in the query)" if aliases else table


def _name_parts(name: str, catalog: Catalog, limit: int = 3) -> list[str]:
    """``table.column`` pairs that the words of an invented column name point at: a model that
    writes ``airline_name``, ``creation_year``, ``ShipFee`` or ``temperature`` means
    ``airline.name``, ``artwork.yr_created``, ``orders.shipping_fee`` or ``reading.temp_c``.
    A column qualifies when each word of one name matches a word of the other (``_same_word``:
    equal, one word's plural, a shared stem of 4 letters, or an abbreviation); a column of a
    table that one of the words names ranks first, then those matching more words."""
    words = _words(name)
    if not words:
        return []
    ranked = []
    for table in catalog.tables:
        table_named = any(_same_word(word, table_word) for word in words for table_word in _words(table.name))
        for column in table.columns:
            column_words = _words(column.name)
            if column.name.lower() == name.lower() or not column_words:
                continue
            named = [any(_same_word(w, c) for c in column_words) for w in words]
            naming = [any(_same_word(c, w) for w in words) for c in column_words]
            if all(named) or all(naming):
                matched = sum(named) + sum(naming)
                ranked.append((not table_named, -matched, table.name, column.name))
    ranked.sort(key=lambda hit: hit[:2])
    return [f"{table}.{column}" for *_, table, column in ranked[:limit]]


def _words(name: str) -> list[str]:
    """The lower-case words of an identifier: ``ShipFee`` and ``ship_fee`` give ship, fee."""
    return [word.lower() for word in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)]


def _same_word(a: str, b: str) -> bool:
    """Whether two identifier words name the same thing: equal, or one the other's plural; a
    shared stem of at least 4 letters (temp / temperature, creation / created); or an
    abbreviation of 2-3 letters, the long word's first letter and then some of its letters in
    order (yr / year, qty / quantity)."""
    a, b = (word[:-1] if len(word) > 3 and word.endswith("s") else word for word in (a, b))
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    if len(short) >= 4:
        return _shared_prefix(a, b) >= max(4, len(short) - 3)
    letters = iter(long[1:])
    return len(short) >= 2 and short[0] == long[0] and all(letter in letters for letter in short[1:])


def _shared_prefix(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def _similar(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    return f" Similar names: {', '.join(close)}." if close else ""


def _result_details(d: Diagnosis, mode: FeedbackMode) -> list[str]:
    return mode.details(d) if d.execution.ok else []


def _minimal_repair(d: Diagnosis, mode: FeedbackMode) -> list[str]:
    lines = []
    shape = d.shape
    unresolved = unresolved_name(d.execution.error)
    moved = _move_to_owner(d.sql, unresolved[1], shape, d.catalog) if shape and unresolved and unresolved[0] == "column" else None
    if moved:
        # Judge the joins as they are once the column comes from its owner: the join
        # the model added to reach the column is then the one to drop.
        line, rewritten = moved
        lines.append(line)
        shape = query_shape(rewritten, d.catalog)
    join_only = list(shape.join_only) if shape else []
    if shape and unresolved and unresolved[0] == "column" and not moved:
        # A joined table that has the missing column may be the one the fix takes it from
        # (T3.singer_id where T1 = singer and T2 = singer_in_concert both have it): never
        # advise dropping it.
        column = unresolved[1].rpartition(".")[2]
        join_only = [alias for alias in join_only if not any(has_column(d.catalog, t, column) for t in shape.bindings[alias.lower()])]
    if join_only:
        names = ", ".join(_source_label(shape, alias) for alias in join_only)
        then = "After that change, joined" if moved else "Joined"
        lines.append(f"{then} but used at most in a join condition: {names}. Drop such a join unless the question needs it to filter rows.")
    lines.append(COLUMN_MINIMAL_RULE)
    return lines


def _move_to_owner(sql: str, name: str, shape: QueryShape, catalog: Catalog) -> tuple[str, str] | None:
    """For ``T2.col`` when exactly one other table of the query has ``col``: the advice to
    take it from there, and the query rewritten that way."""
    qualifier, _, column = name.rpartition(".")
    owners = [alias for alias, tables in shape.bindings.items() if any(has_column(catalog, t, column) for t in tables)]
    if not qualifier or len(owners) != 1:
        return None
    alias = shape.spelled[owners[0]]
    tree = sqlglot.parse_one(sql, read="sqlite")
    for node in tree.find_all(exp.Column):
        if node.name.lower() == column.lower() and node.table.lower() == qualifier.lower():
            node.set("table", exp.to_identifier(alias))
    advice = f"{column} is a column of {_source_label(shape, alias)}: write {alias}.{column} instead of {name}."
    return advice, tree.sql(dialect="sqlite")


def _source_label(shape: QueryShape, alias: str) -> str:
    tables = shape.bindings[alias.lower()]
    return alias if [alias.lower()] == [t.lower() for t in tables] else f"{alias} ({' / '.join(tables)})"


# --------------------------------------------------------------------------- modes


def _ran(d: Diagnosis) -> str:
    return "The query ran without an error."


def _ran_visible(d: Diagnosis) -> str:
    return f"The query ran and returned {_count(d.execution.row_count, d.execution.truncated)}."


def _ran_against_gold(d: Diagnosis) -> str:
    if d.gold.error is not None:
        return "The query ran, but its result cannot be checked: the reference query fails."
    if d.gold.match:
        return "The query ran and its result matches the expected result."
    return "The query ran, but its result does not match the expected result."


def _no_details(d: Diagnosis) -> list[str]:
    return []


WARNINGS = {
    "empty_result": "Warning: the result is empty.",
    "cartesian": "Warning: the query plan reads a table in full for every row of another table: "
                 "a join without a usable join condition (a cartesian product).",
    "looped_full_scan": "Warning: the query plan reads a table in full for every row of the outer query (a correlated subquery).",
}


def _visible_details(d: Diagnosis) -> list[str]:
    lines = [f"First rows: {_rows(d.execution.rows)}"] if d.execution.rows else []
    return lines + [WARNINGS[signal] for signal in d.execution.signals if signal in WARNINGS]


def _row_count_details(d: Diagnosis) -> list[str]:
    gold, ran = d.gold, d.execution
    if gold.match or gold.error is not None:
        return []
    returned, expected = _count(ran.row_count, ran.truncated), _count(gold.row_count, gold.truncated)
    if ran.row_count == 0 and gold.row_count:
        return [f"It returned no rows; the expected result has {expected}."]
    if ran.truncated and gold.truncated:
        return [f"It returned {returned}, as did the expected result, but the values differ."]
    if ran.row_count != gold.row_count or ran.truncated != gold.truncated:
        return [f"It returned {returned}; the expected result has {expected}."]
    return [f"It returned {returned}, as many as expected, but the values differ."]


def _row_details(d: Diagnosis) -> list[str]:
    lines = _row_count_details(d)
    if lines and d.gold.rows:
        lines.append(f"Expected first rows: {_rows(d.gold.rows)}")
        if d.execution.rows:
            lines.append(f"Your first rows: {_rows(d.execution.rows)}")
    return lines


def _count(rows: int, truncated: bool = False) -> str:
    return f"more than {rows} rows" if truncated else f"{rows} row" + ("" if rows == 1 else "s")


def _rows(rows: tuple[tuple, ...]) -> str:
    return ", ".join("(" + ", ".join(_cell(value) for value in row) + ")" for row in rows)


def _cell(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        text = " ".join(value.split())
        return repr(text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 3] + "...")
    return repr(value)


@dataclass(frozen=True)
class FeedbackMode:
    name: str
    uses_gold: bool
    status: Callable[[Diagnosis], str]  # the status line of a query that ran
    details: Callable[[Diagnosis], list[str]]  # result details of a query that ran (column detail and up)


FEEDBACK_MODES = {
    mode.name: mode
    for mode in (
        FeedbackMode("error_only", False, _ran, _no_details),
        FeedbackMode("online_visible", False, _ran_visible, _visible_details),
        FeedbackMode("result_status", True, _ran_against_gold, _row_count_details),
        FeedbackMode("oracle_rows", True, _ran_against_gold, _row_details),
    )
}

Section = Callable[[Diagnosis, FeedbackMode], list[str]]
DETAIL_LEVELS: dict[str, tuple[Section, ...]] = {
    "basic": (_status,),
    "column": (_status, _identifier, _result_details),
    "minimal": (_status, _identifier, _result_details, _minimal_repair),
}


def build_feedback(diagnosis: Diagnosis, detail: str, mode: str) -> str:
    """The feedback text for one query, at a detail level, under a feedback mode."""
    feedback_mode = FEEDBACK_MODES[mode]
    if feedback_mode.uses_gold and diagnosis.gold is None:
        raise ValueError(f"feedback mode {mode} needs the gold result")
    if not feedback_mode.uses_gold:
        diagnosis = replace(diagnosis, gold=None)
    return "\n".join(line for section in DETAIL_LEVELS[detail] for line in section(diagnosis, feedback_mode))
