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

Gold results are cached per (database file, prepared gold SQL), and one
Sandbox (one connection per database) serves every query.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import UserError
from ..core.fileio import output_file
from ..data.load import check_db_id
from ..sql.database import check_database

# The official evaluator's TIMEOUT; its own limit can never fire (a blocking call
# inside asyncio.wait_for), so ours is only a guard against runaway predictions.
DEFAULT_TIMEOUT = 60.0
LEVELS = ("easy", "medium", "hard", "extra")

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
    from ..sql.text import split_first_statement

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

# ---------------------------------------------------------------------------
# Scoring one prediction against one gold query on a database


@dataclass(frozen=True)
class MatchResult:
    """The verdict for one (gold, prediction) pair."""

    match: bool
    pred_error: str | None = None  # the prediction is empty or failed on some database file
    gold_error: str | None = None  # the gold query failed (the official evaluator would crash)
    order_matters: bool = False


def database_files(db: str | Path) -> list[Path]:
    """The SQLite files a verdict covers: a file alone, or every file of a folder whose
    name contains ".sqlite" (the official test, so test-suite variants all count)."""
    path = Path(db)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if ".sqlite" in p.name and p.is_file())
    return [path]


class Scorer:
    """Scores predictions with the official semantics; holds the Sandbox and the gold cache.

    ``score(db, gold_sql, pred_sql)`` takes a database file, or a folder whose
    ``.sqlite`` files must all agree (as the CLI passes ``DB_ROOT/<db_id>``).
    """

    def __init__(
        self,
        matcher: str = "official",
        keep_distinct: bool | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        gold_cache_size: int = 4096,
    ):
        from ..sql.sandbox import Sandbox

        if matcher not in MATCHERS:
            raise ValueError(f"unknown matcher {matcher!r}; choose one of: {', '.join(MATCHERS)}")
        self.matcher = MATCHERS[matcher]
        # The official evaluator removes DISTINCT before running both queries; the seed project
        # ran them as written. Each matcher keeps its own rule unless told otherwise.
        self.keep_distinct = KEEPS_DISTINCT[matcher] if keep_distinct is None else keep_distinct
        self.timeout = timeout
        self._sandbox = Sandbox(timeout=timeout, max_rows=None)
        self._files: dict[str, list[Path]] = {}  # db argument -> its SQLite files, listed once
        self._gold_cache: OrderedDict[tuple[str, str], tuple[list[tuple] | None, str | None]] = OrderedDict()
        self._gold_cache_size = gold_cache_size

    def score(self, db: str | Path, gold_sql: str, pred_sql: str) -> MatchResult:
        gold = prepare_sql(gold_sql, self.keep_distinct)
        ordered = order_matters(gold)
        if not pred_sql.strip():
            return MatchResult(False, pred_error="empty prediction", order_matters=ordered)
        pred = prepare_sql(pred_sql, self.keep_distinct)
        files = self._files.get(str(db))
        if files is None:
            files = self._files[str(db)] = database_files(db)
        if not files:
            return MatchResult(False, gold_error=f"no .sqlite file in {db}", order_matters=ordered)
        for path in files:
            gold_rows, gold_error = self._gold_result(path, gold)
            if gold_error is not None:
                return MatchResult(False, gold_error=f"{path.name}: {gold_error}", order_matters=ordered)
            pred_rows, pred_error = self._run(path, pred)
            if pred_error is not None:
                return MatchResult(False, pred_error=pred_error, order_matters=ordered)
            if not self.matcher(gold_rows, pred_rows, ordered):
                return MatchResult(False, order_matters=ordered)
        return MatchResult(True, order_matters=ordered)

    def _gold_result(self, path: Path, gold: str) -> tuple[list[tuple] | None, str | None]:
        key = (str(path), gold)
        if key in self._gold_cache:
            self._gold_cache.move_to_end(key)
            return self._gold_cache[key]
        entry = self._gold_cache[key] = self._run(path, gold)
        if len(self._gold_cache) > self._gold_cache_size:
            self._gold_cache.popitem(last=False)
        return entry

    def _run(self, path: Path, prepared: str) -> tuple[list[tuple] | None, str | None]:
        """(rows, None) or (None, error) for prepared SQL, as the official evaluator runs it."""
        statement, error = sqlite3_statement(executable_sql(prepared))
        if error is not None:
            return None, error
        if not statement:
            return [], None
        result = self._sandbox.execute(path, statement, timeout=self.timeout, max_rows=None)
        return ([tuple(row) for row in result.rows], None) if result.ok else (None, result.error)

    def close(self) -> None:
        self._sandbox.close()

    def __enter__(self) -> Scorer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


# ---------------------------------------------------------------------------
# Files in the official format, the table and the CLI


@dataclass(frozen=True)
class GoldPrediction:
    """One example of the files: its 0-based position, database, gold SQL and prediction."""

    index: int
    db_id: str
    gold: str
    pred: str


def read_gold_and_predictions(gold_path: str | Path, pred_path: str | Path) -> list[GoldPrediction]:
    """Read the official evaluator's files: GOLD ``SQL<TAB>db_id`` and PRED one SQL a line.

    As ``evaluation.py`` does, each line is stripped, a prediction keeps what comes
    before its first tab, and " value " in a prediction becomes " 1 "; a blank gold
    line separates interaction sessions (SParC/CoSQL) and holds no example. A blank
    prediction line is an empty prediction. PRED lines pair with GOLD lines one to
    one, or, when PRED has no session separators, with the gold examples in order.
    """
    gold_lines = _without_trailing_blanks(_lines(gold_path))
    pred_lines = _lines(pred_path)
    examples = [(n, line) for n, line in enumerate(gold_lines, start=1) if line]
    if not examples:
        raise UserError(f"{gold_path} holds no gold examples; give the official gold file, one 'SQL<TAB>db_id' a line")
    # A final blank PRED line may be an empty prediction or just a trailing newline:
    # try the lines as they are first.
    for candidate in (pred_lines, _without_trailing_blanks(pred_lines)):
        if len(candidate) == len(gold_lines):
            preds = [candidate[n - 1] for n, _ in examples]
            break
        if len(candidate) == len(examples):
            preds = candidate
            break
    else:
        raise UserError(
            f"{gold_path} has {len(examples)} gold examples but {pred_path} has {len(pred_lines)} lines; "
            "give one prediction per gold line, in the same order"
        )
    pairs = []
    for index, ((lineno, line), pred) in enumerate(zip(examples, preds)):
        fields = line.split("\t")
        if len(fields) != 2 or not fields[1]:
            raise UserError(f"{gold_path}:{lineno}: expected 'SQL<TAB>db_id', got {len(fields)} tab-separated field(s)")
        check_db_id(fields[1], f"{gold_path}:{lineno}")
        pred_sql = pred.split("\t")[0].replace(" value ", " 1 ")
        pairs.append(GoldPrediction(index, fields[1], fields[0], pred_sql))
    return pairs


def _lines(path: str | Path) -> list[str]:
    try:
        # Line iteration, as the official readlines(): only newlines split, not the
        # other characters str.splitlines() treats as line breaks.
        with open(path, encoding="utf-8") as handle:
            return [line.strip() for line in handle]
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        data = Path(path).read_bytes()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise UserError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8") from None
        raise


def _without_trailing_blanks(lines: list[str]) -> list[str]:
    end = len(lines)
    while end and not lines[end - 1]:
        end -= 1
    return lines[:end]


def check_databases(pairs: Sequence[GoldPrediction], db_root: str | Path) -> None:
    """Every database the pairs name exists under ``db_root`` and is a readable SQLite file
    (``data.check_database``: a corrupt file would otherwise score its examples 0 as bad gold)."""
    db_ids = sorted({p.db_id for p in pairs})
    missing = [db_id for db_id in db_ids if not database_files(Path(db_root) / db_id)]
    if missing:
        raise UserError(f"no .sqlite file under {db_root}/<db_id>/ for: {', '.join(missing[:10])}"
                        f"{' ...' if len(missing) > 10 else ''}; check --db")
    for db_id in db_ids:
        for path in database_files(Path(db_root) / db_id):
            check_database(path)


def score_predictions(pairs: Sequence[GoldPrediction], db_root: str | Path, scorer: Scorer, progress: bool = True) -> list[dict]:
    """One record per pair, in order: index, db_id, hardness, match, pred_error, gold_error."""
    from tqdm import tqdm

    from .hardness import hardness

    check_databases(pairs, db_root)
    levels: dict[str, str | None] = {}
    records = []
    # disable=None: tqdm draws the bar only when stderr is a terminal
    for pair in tqdm(pairs, desc="score", unit="pred", file=sys.stderr, disable=None if progress else True):
        if pair.gold not in levels:
            try:
                levels[pair.gold] = hardness(pair.gold)
            except ValueError:
                levels[pair.gold] = None
        result = scorer.score(Path(db_root) / pair.db_id, pair.gold, pair.pred)
        records.append({
            "index": pair.index,
            "db_id": pair.db_id,
            "hardness": levels[pair.gold],
            "match": result.match,
            "pred_error": result.pred_error,
            "gold_error": result.gold_error,
        })
    return records


def ex_by_hardness(records: Sequence[dict]) -> dict[str, dict[str, float]]:
    """Count and EX for each hardness level and for "all" (examples without a level count in "all" only)."""
    summary = {}
    for level in (*LEVELS, "all"):
        chosen = [r for r in records if level == "all" or r["hardness"] == level]
        matched = sum(r["match"] for r in chosen)
        summary[level] = {"count": len(chosen), "exec": matched / len(chosen) if chosen else 0.0}
    return summary


def format_table(summary: dict[str, dict[str, float]]) -> str:
    """The official evaluator's execution table (same columns and widths)."""
    levels = (*LEVELS, "all")

    def row(name: str, cells: list, fmt: str) -> str:
        return ("{:20} " + " ".join([fmt] * len(cells))).format(name, *cells)

    return "\n".join([
        row("", list(levels), "{:20}"),
        row("count", [summary[level]["count"] for level in levels], "{:<20d}"),
        "=====================   EXECUTION ACCURACY     =====================",
        row("execution", [summary[level]["exec"] for level in levels], "{:<20.3f}"),
    ])


def make_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Execution accuracy (EX) with the official Spider evaluator's verdicts, overall and by hardness.",
    )
    parser.add_argument("--gold", required=True, help="gold file, one 'SQL<TAB>db_id' a line (official format)")
    parser.add_argument("--pred", required=True, help="predictions, one SQL a line, in the gold's order")
    parser.add_argument("--db", required=True, help="database root: DB/<db_id>/*.sqlite (every .sqlite file counts)")
    parser.add_argument("--per-example", "--per_example", dest="per_example", metavar="OUT.jsonl", type=output_file, help="write one JSON object per example, in order")
    parser.add_argument("--keep-distinct", action="store_true", default=None,
                        help="keep DISTINCT (default: removed for the official matcher, kept for seed, as each project did)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                        help=f"seconds per query before a prediction counts as failed (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--matcher", choices=sorted(MATCHERS), default="official",
                        help="official (default) or the seed project's matcher, for comparison")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = make_parser(prog).parse_args(argv)
    if not 0 < args.timeout < math.inf:
        raise UserError(f"--timeout must be a positive, finite number of seconds, got {args.timeout:g}")
    if not Path(args.db).is_dir():
        raise UserError(f"database root {args.db} is not a folder; point --db at the folder holding <db_id>/ folders")
    pairs = read_gold_and_predictions(args.gold, args.pred)
    check_databases(pairs, args.db)
    keep_distinct = KEEPS_DISTINCT[args.matcher] if args.keep_distinct is None else args.keep_distinct
    print(f"score: gold={args.gold} pred={args.pred} db={args.db} matcher={args.matcher} "
          f"keep_distinct={keep_distinct} timeout={args.timeout:g}", file=sys.stderr)
    from ..sql.sandbox import CLI_HEAP_LIMIT, limit_sqlite_heap

    # This process exists to run untrusted predictions: cap SQLite's memory for all of it,
    # so a worker abandoned at its deadline cannot keep allocating.
    limit_sqlite_heap(CLI_HEAP_LIMIT)
    with Scorer(matcher=args.matcher, keep_distinct=keep_distinct, timeout=args.timeout) as scorer:
        records = score_predictions(pairs, args.db, scorer, progress=not args.no_progress)
    print(format_table(ex_by_hardness(records)))
    failed_gold = sum(r["gold_error"] is not None for r in records)
    if failed_gold:
        print(f"note: {failed_gold} gold quer{'y' if failed_gold == 1 else 'ies'} failed to execute and scored 0 "
              "(the official evaluator stops on them)")
    if args.per_example:
        from ..core.fileio import write_jsonl

        write_jsonl(args.per_example, records)
    return 0
