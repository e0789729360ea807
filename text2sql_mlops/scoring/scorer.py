"""``text2sql-mlops score``: execution accuracy (EX) of a prediction file, the official evaluator's way.

    text2sql-mlops score --gold dev_gold.sql --pred pred.sql --db database

``Scorer`` runs gold and prediction on every ``.sqlite`` file of the database folder and
judges them with ``match.py`` (the official Spider semantics, or the seed project's
matcher); the files are read as the official ``evaluation.py`` reads them and the table
is its execution table, overall and by Spider hardness (``hardness.py``).

Gold results are cached per (database file, prepared gold SQL), and one
Sandbox (one connection per database) serves every query.
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.cliutil import ArgParser, flag
from ..core.errors import UserError
from ..core.fileio import check_outputs, output_file, write_jsonl
from ..data.load import check_db_id
from ..sql.database import check_database
from ..sql.sandbox import CLI_HEAP_LIMIT, Sandbox, limit_sqlite_heap
from .hardness import hardness
from .match import KEEPS_DISTINCT, MATCHERS, executable_sql, order_matters, prepare_sql, sqlite3_statement

# The official evaluator's TIMEOUT; its own limit can never fire (a blocking call
# inside asyncio.wait_for), so ours is only a guard against runaway predictions.
DEFAULT_TIMEOUT = 60.0
# The official evaluator reads any value and any result. The sandbox's caps stop bombs in
# model SQL (an 8 MiB value, a 64 MiB result); a verdict needs what real databases hold: a
# 9 MiB document cell or a 400,000-row gold result failed as a bad gold. Still bounded.
SCORING_VALUE_BYTES = 256 * 2**20
SCORING_RESULT_BYTES = 1024 * 2**20
GOLD_CACHE_BYTES = 1024 * 2**20  # Python memory of the gold rows kept at once, whatever their number of queries
LEVELS = ("easy", "medium", "hard", "extra")

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
    name contains ".sqlite" (the official test, so test-suite variants all count), except a
    WAL database's -wal and -shm companions and a rollback journal, which are no databases."""
    path = Path(db)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if ".sqlite" in p.name and p.is_file()
                      and not p.name.endswith(("-wal", "-shm", "-journal")))
    return [path]


def verdict_database(db_path: str, db_id: str) -> str:
    """What a verdict on one example covers. The official evaluator is handed
    ``database/<db_id>/<db_id>.sqlite`` and runs every ``.sqlite`` file of its folder, so
    test-suite variants beside it count: the folder, when the file sits in one named after its
    database; in a flat layout (``<root>/<db_id>.sqlite``), whose folder holds the other
    databases, the file alone."""
    path = Path(db_path)
    return str(path.parent) if path.parent.name == db_id else db_path


def _rows_bytes(rows: list[tuple] | None) -> int:
    """Python's memory for ``rows`` (as the sandbox counts a result): a few rows of large
    documents weigh what they hold, not what they number."""
    return sum(sys.getsizeof(row) + sum(map(sys.getsizeof, row)) for row in rows or ())


class Scorer:
    """Scores predictions with the official semantics; holds the Sandbox and the gold cache.

    ``score(db, gold_sql, pred_sql)`` takes a database file, or a folder whose
    ``.sqlite`` files must all agree (as the CLI passes ``DB_ROOT/<db_id>``).
    Safe to share between threads.
    """

    def __init__(
        self,
        matcher: str = "official",
        keep_distinct: bool | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        gold_cache_size: int = 4096,
    ):
        if matcher not in MATCHERS:
            raise ValueError(f"unknown matcher {matcher!r}; choose one of: {', '.join(MATCHERS)}")
        self.matcher = MATCHERS[matcher]
        # The official evaluator removes DISTINCT before running both queries; the seed project
        # ran them as written. Each matcher keeps its own rule unless told otherwise.
        self.keep_distinct = KEEPS_DISTINCT[matcher] if keep_distinct is None else keep_distinct
        self.timeout = timeout
        self._sandbox = Sandbox(timeout=timeout, max_rows=None, max_value_bytes=SCORING_VALUE_BYTES,
                                max_result_bytes=SCORING_RESULT_BYTES)
        self._cached_bytes = 0
        self._files: dict[str, list[Path]] = {}  # db argument -> its SQLite files, listed once
        self._gold_cache: OrderedDict[tuple[str, str], tuple[list[tuple] | None, str | None]] = OrderedDict()
        self._gold_cache_size = gold_cache_size
        self._lock = threading.Lock()  # score() may be called from several threads (rollout/loop.py)

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
        with self._lock:
            if key in self._gold_cache:
                self._gold_cache.move_to_end(key)
                return self._gold_cache[key]
        entry = self._run(path, gold)  # outside the lock: threads score in parallel (a key may run twice)
        size = _rows_bytes(entry[0])
        with self._lock:
            if key not in self._gold_cache:
                self._gold_cache[key] = entry
                self._cached_bytes += size
            while len(self._gold_cache) > self._gold_cache_size or (self._cached_bytes > GOLD_CACHE_BYTES and len(self._gold_cache) > 1):
                _, (rows, _) = self._gold_cache.popitem(last=False)
                self._cached_bytes -= _rows_bytes(rows)
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
    lineno, first = examples[0]
    if "\t" not in first:  # dev.json given for dev_gold.sql: say so, not that the line counts differ
        raise UserError(f"{gold_path}:{lineno}: expected 'SQL<TAB>db_id' (the official gold file, e.g. dev_gold.sql), "
                        f"got {first[:80]!r}")
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
        # The db_id is the last field: a gold file written from a dataset's JSON keeps the tabs
        # some queries hold (Spider train has 11), which a split on every tab refused.
        gold_sql, tab, db_id = line.rpartition("\t")
        if not tab or not gold_sql.strip() or not db_id:
            raise UserError(f"{gold_path}:{lineno}: expected 'SQL<TAB>db_id', got {line[:80]!r}")
        check_db_id(db_id, f"{gold_path}:{lineno}")
        pred_sql = pred.split("\t")[0].replace(" value ", " 1 ")
        pairs.append(GoldPrediction(index, db_id, gold_sql, pred_sql))
    return pairs


def _lines(path: str | Path) -> list[str]:
    try:
        # Line iteration, as the official readlines(): only newlines split, not the
        # other characters str.splitlines() treats as line breaks. utf-8-sig: an editor's
        # byte-order mark is not part of the first query (its hardness could not be parsed).
        with open(path, encoding="utf-8-sig") as handle:
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
    (``sql.database.check_database``: a corrupt file would otherwise score its examples 0 as bad gold)."""
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
    parser = ArgParser(
        prog=prog,
        description="Execution accuracy (EX) with the official Spider evaluator's verdicts, overall and by hardness.",
    )
    flag(parser, "gold", required=True, help="gold file, one 'SQL<TAB>db_id' a line (official format)")
    flag(parser, "pred", required=True, help="predictions, one SQL a line, in the gold's order")
    # --db, as the official evaluator spells it; --db_root as the other commands do.
    flag(parser, "db", "--db_root", "--db-root", required=True, help="database root: DB/<db_id>/*.sqlite (every .sqlite file counts)")
    flag(parser, "per_example", metavar="OUT.jsonl", type=output_file, help="write one JSON object per example, in order")
    flag(parser, "keep_distinct", action="store_true", default=None,
         help="keep DISTINCT (default: removed for the official matcher, kept for seed, as each project did)")
    flag(parser, "timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
         help=f"seconds per query before a prediction counts as failed (default {DEFAULT_TIMEOUT:g})")
    flag(parser, "matcher", choices=sorted(MATCHERS), default="official",
         help="official (default) or the seed project's matcher, for comparison")
    flag(parser, "no_progress", action="store_true", help="no progress bar on stderr")
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = make_parser(prog).parse_args(argv)
    if not 0 < args.timeout < math.inf:
        raise UserError(f"--timeout must be a positive, finite number of seconds, got {args.timeout:g}")
    if not Path(args.db).is_dir():
        raise UserError(f"database root {args.db} is not a folder; point --db at the folder holding <db_id>/ folders")
    check_outputs((("--per_example", args.per_example),), (args.gold, args.pred, args.db))
    pairs = read_gold_and_predictions(args.gold, args.pred)
    check_databases(pairs, args.db)
    keep_distinct = KEEPS_DISTINCT[args.matcher] if args.keep_distinct is None else args.keep_distinct
    print(f"score: gold={args.gold} pred={args.pred} db={args.db} matcher={args.matcher} "
          f"keep_distinct={keep_distinct} timeout={args.timeout:g}", file=sys.stderr)

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
        write_jsonl(args.per_example, records)
    return 0
