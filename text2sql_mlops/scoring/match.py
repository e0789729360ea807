"""Execution accuracy (EX) with the same verdicts as the official Spider evaluator.

The reference is test-suite-sql-eval (``exec_eval.py: eval_exec_match`` and the
file handling of ``evaluation.py``). A prediction matches when, on every
``.sqlite`` file of the database folder, its result equals the gold result:

- same number of rows and columns, and some permutation of the predicted
  columns makes the rows equal, as lists when the gold SQL contains "order by"
  (anywhere, a subquery included) and as bags otherwise; values compare with
  Python ``==`` (1 == 1.0, '1' != 1, None == None); two empty results match;
- and the quick rejection the official code runs first must pass too: the rows,
  each with its values sorted by ``str(value) + str(type(value))``, must be the
  same (as a list, or as a set when order does not matter). The permutation
  rule does not imply it: ``(1, 1.5)`` and ``(1.0, 1.5)`` sort differently, so
  the official verdict is "no match", and so is ours.

Both SQL texts are prepared as the official code does: '> =', '< =', '! =' are
closed up; unless ``keep_distinct``, only the first statement is kept and
every sqlparse token equal to DISTINCT is dropped (also in ``COUNT(DISTINCT
x)``, and the column name of ``T1.distinct``; quoted text is one token and
stays); ``YEAR(CURDATE())`` becomes 2020 when executed. An empty prediction
and a prediction that fails score 0. The official code crashes on a failing
gold query; here the example scores 0 with ``gold_error`` set.

The scorer that runs both queries is ``scorer.py``; this module only prepares SQL
and compares results.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence

from ..sql.text import split_first_statement

# ---------------------------------------------------------------------------
# Preparing SQL as the official evaluator does before it executes anything

_SPACED_OPERATORS = (("> =", ">="), ("< =", "<="), ("! =", "!="))
_CURRENT_YEAR = re.compile(r"YEAR\s*\(\s*CURDATE\s*\(\s*\)\s*\)\s*", re.IGNORECASE)


def strip_distinct(sql: str) -> str:
    """The first statement of ``sql`` with every token equal to DISTINCT (any case) dropped.

    Token-level, like the official ``remove_distinct`` (sqlparse tokens, joined
    back unchanged otherwise); "" when ``sql`` holds no statement at all. The
    statements are split without sqlparse's grouping step: grouping only nests
    tokens, it never changes them (checked on every Spider train gold query),
    and skipping it makes this about four times faster.
    """
    lowered = sql.lower()
    if sql.strip() and ";" not in sql and "go" not in lowered and "distinct" not in lowered:
        # Only ";" and the keyword GO end a statement for sqlparse, and its lexer
        # is lossless, so the text would come back unchanged: skip the lexer.
        return sql

    from sqlparse.engine import FilterStack

    for statement in FilterStack().run(sql):
        return "".join(token.value for token in statement.flatten() if token.value.lower() != "distinct")
    return ""


def prepare_sql(sql: str, keep_distinct: bool = False) -> str:
    """The SQL text the official evaluator compares and (see ``executable_sql``) runs."""
    for spaced, closed in _SPACED_OPERATORS:
        sql = sql.replace(spaced, closed)
    return sql if keep_distinct else strip_distinct(sql)


def executable_sql(prepared: str) -> str:
    """What is sent to SQLite: MySQL's ``YEAR(CURDATE())`` pinned to 2020, as officially."""
    return _CURRENT_YEAR.sub("2020", prepared)


def sqlite3_statement(sql: str) -> tuple[str, str | None]:
    """What ``sqlite3.Cursor.execute(sql)`` runs, as (statement, error).

    The official evaluator runs SQL with Python's sqlite3, which skips leading
    blanks, comments and empty statements (``;``), runs nothing when that is
    all there is, and refuses a second statement, even an empty one, after the
    first (``SELECT 1;;``). The Sandbox is stricter about the first two and
    laxer about the third, so the text is settled here and the Sandbox only
    ever gets one statement. ("", None) means no rows and no error.
    """
    start = _skip_blanks(sql, 0, semicolons=True)
    if start == len(sql):
        return "", None
    statement, rest = split_first_statement(sql[start:])
    if _skip_blanks(rest, 0, semicolons=False) != len(rest):
        return "", "You can only execute one statement at a time."
    return statement, None


def _skip_blanks(sql: str, i: int, semicolons: bool) -> int:
    """Index of the first character at or after ``i`` that is not whitespace or a comment
    (nor ``;`` when ``semicolons``), by the rules of Python's sqlite3 module."""
    while i < len(sql):
        if sql[i] in " \t\f\n\r" or (semicolons and sql[i] == ";"):
            i += 1
        elif sql.startswith("--", i):
            newline = sql.find("\n", i)
            i = len(sql) if newline < 0 else newline + 1
        elif sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            i = len(sql) if close < 0 else close + 2
        else:
            break
    return i


def order_matters(prepared_gold: str) -> bool:
    """Rows are compared in order iff the gold text contains "order by" (one space, any case)."""
    return "order by" in prepared_gold.lower()


# ---------------------------------------------------------------------------
# Comparing two results

Rows = Sequence[Sequence[object]]


def official_match(gold_rows: Rows, pred_rows: Rows, order_matters: bool) -> bool:
    """The official ``result_eq`` verdict: equal up to a column permutation (see module doc)."""
    gold = [tuple(row) for row in gold_rows]
    pred = [tuple(row) for row in pred_rows]
    if not gold and not pred:
        return True
    if len(gold) != len(pred) or len(gold[0]) != len(pred[0]):
        return False
    if order_matters:
        # Row lists are equal iff every column is equal as a whole: match whole columns.
        equal = Counter(zip(*gold)) == Counter(zip(*pred))
    else:
        equal = _bag_permutation_exists(gold, pred)
    # The official code runs the sorted-rows check first; both must pass, so the
    # (slower) check runs last. With one column it is implied by equality.
    return equal and (len(gold[0]) == 1 or _same_sorted_rows(gold, pred, order_matters))


def _official_sort_key(value: object) -> str:
    return str(value) + str(type(value))


def _same_sorted_rows(gold: list[tuple], pred: list[tuple], order_matters: bool) -> bool:
    """The official quick rejection: rows with their values sorted by str + type name."""
    gold_sorted = [tuple(sorted(row, key=_official_sort_key)) for row in gold]
    pred_sorted = [tuple(sorted(row, key=_official_sort_key)) for row in pred]
    if order_matters:
        return gold_sorted == pred_sorted
    return set(gold_sorted) == set(pred_sorted)


def _bag_permutation_exists(gold: list[tuple], pred: list[tuple]) -> bool:
    """Whether some order of the predicted columns gives the gold bag of rows.

    Backtracking over gold columns; a predicted column is a candidate only when
    its multiset of values equals the gold column's, identical predicted
    columns are tried once, and each prefix of the assignment must already give
    equal bags of projected rows.
    """
    width = len(gold[0])
    gold_columns = list(zip(*gold))
    pred_columns = list(zip(*pred))
    column_bags = [Counter(column) for column in pred_columns]
    groups: dict[tuple, list[int]] = {}
    for index, column in enumerate(pred_columns):
        groups.setdefault(column, []).append(index)
    representatives = [indices[0] for indices in groups.values()]
    remaining = {indices[0]: len(indices) for indices in groups.values()}

    def extend(chosen: list[int]) -> bool:
        depth = len(chosen)
        if depth == width:
            return True
        gold_bag = Counter(gold_columns[depth])
        for candidate in representatives:
            if not remaining[candidate] or column_bags[candidate] != gold_bag:
                continue
            prefix = chosen + [candidate]
            if depth and Counter(zip(*(pred_columns[i] for i in prefix))) != Counter(zip(*gold_columns[: depth + 1])):
                continue
            remaining[candidate] -= 1
            found = extend(prefix)
            remaining[candidate] += 1
            if found:
                return True
        return False

    return extend([])


def seed_match(gold_rows: Rows, pred_rows: Rows, order_matters: bool = False) -> bool:
    """The seed project's matcher: rows sorted (ORDER BY ignored), floats rounded to
    6 places, strings stripped, then equal as lists (so column order matters)."""
    return _seed_normal_form(gold_rows) == _seed_normal_form(pred_rows)


def _seed_normal_form(rows: Rows) -> list[tuple]:
    def value(v: object) -> object:
        if isinstance(v, float):
            return round(v, 6)
        return v.strip() if isinstance(v, str) else v

    def sort_key(row: tuple) -> tuple:  # a total order over mixed SQLite types
        return tuple((0, 0) if v is None else (1, v) if isinstance(v, (int, float)) else (2, str(v)) for v in row)

    return sorted((tuple(value(v) for v in row) for row in rows), key=sort_key)


MATCHERS: dict[str, Callable[[Rows, Rows, bool], bool]] = {"official": official_match, "seed": seed_match}
KEEPS_DISTINCT = {"official": False, "seed": True}  # whether the matcher's project ran DISTINCT as written
