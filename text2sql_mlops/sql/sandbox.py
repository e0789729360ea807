"""Read-only execution of model-written SQL against a SQLite file, with a real timeout.

Model-written SQL is hostile input. Every layer below stops a class of attack
on its own, so a gap in one is covered by another:

1. The connection: URI ``mode=ro`` (never creates or writes the file),
   ``PRAGMA query_only``, ``temp_store=MEMORY`` (sorts and temporary tables
   never touch the disk), ``SQLITE_LIMIT_ATTACHED=0``; extension loading is
   never enabled.
2. An authorizer that allows reading and nothing else: SELECT, READ, RECURSIVE,
   functions (except ``load_extension`` and ``fts3_tokenizer``) and a few
   schema-reading PRAGMAs. It denies ATTACH (which is how ``VACUUM INTO``
   writes its copy), transactions, and every write or schema change,
   including TEMP objects that ``mode=ro`` alone would allow.
3. Size limits (``conn.setlimit``) so ``randomblob``/``zeroblob``/``printf``
   bombs fail at once; a cap on the compiled program that grows only with the
   length of the SQL text, so long literal lists run but short SQL cannot
   expand into a huge program; and a cap on the rows and bytes fetched into
   Python, counted row by row as they arrive.
4. Exactly one statement per call, and it must start like a read (SELECT,
   WITH, VALUES, EXPLAIN, PRAGMA). A second statement is an error, never
   silently dropped. The statement reaches SQLite character for character;
   only blank text around it (``;;``, a trailing comment) is left out.
5. A deadline. A progress handler stops long scans. ``conn.interrupt()`` is
   called at the deadline. SQLite cannot stop one long function call (e.g.
   ``instr`` on megabyte strings), so queries run in a worker thread, and a
   worker still busy ``GRACE_S`` after the deadline is abandoned. The caller
   always has an answer within ``timeout + GRACE_S``.

Memory: the limits above bound every value and the fetched result. What they
do not bound is SQLite's own working memory: a huge ``ORDER BY`` sorts in RAM
(``temp_store=MEMORY``), and an abandoned worker keeps running, and
allocating, until SQLite returns (an exponential CTE grows while it is being
compiled). ``limit_sqlite_heap`` caps all of it, but the cap applies to the
whole process, so only processes that exist to run untrusted SQL should call
it. The ``exec`` command does.

JSON encoding (``ExecResult.to_json``): integers and finite floats are numbers.
+inf, -inf and NaN become the strings ``"Infinity"``, ``"-Infinity"`` and
``"NaN"``. A blob becomes ``{"$blob_hex": "<lower-case hex>"}``. TEXT is
decoded as UTF-8 with the ``text_errors`` handler. The default ``"ignore"`` is
what the official Spider evaluator does, so the JSON is always valid.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import sqlite3
import sys
import threading
import time
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from types import EllipsisType

from ..core.cliutil import ArgParser, flag
from ..core.errors import UserError
from .database import database_uri, shadow_tables
from .text import first_statement_bounds, is_blank, leading_keyword

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_ROWS = 10_000
GRACE_S = 0.3  # how long after the deadline a worker may take before it is abandoned
PROGRESS_EVERY_OPS = 1_000  # VM instructions between deadline checks (overhead within noise)
MAX_SQL_BYTES = 2 * 2**20  # 1 MB of SQL still runs; anything larger is refused before SQLite parses it
MAX_ARG_BYTES = 128 * 2**10  # Linux's MAX_ARG_STRLEN: the longest SQL `exec --sql` can be given as an argument
MAX_RESULT_BYTES = 64 * 2**20  # Python's size of the fetched rows (sys.getsizeof) before the query fails
MAX_VALUE_BYTES = 8 * 2**20  # SQLITE_LIMIT_LENGTH: any string, blob or row; bombs fail with "too big"
CLI_HEAP_LIMIT = 256 * 2**20  # SQLite's heap cap in the `exec` process; legitimate queries use a few MB

# SQLITE_LIMIT_VDBE_OP, the size of one compiled program, is set per statement:
# VDBE_OPS_BASE plus VDBE_OPS_PER_SQL_CHAR for each character of its text, at
# most MAX_VDBE_OPS. A literal list compiles to three instructions per item,
# so a flat 25,000 refused an honest IN list of 20,000 integers (108 KB of SQL,
# 60,020 instructions) with "out of memory". Short SQL keeps the old cap, so SQL
# that grows as it compiles (a subquery, CTE or view substituted many times
# over) fails as early as before; padding it buys at most MAX_VDBE_OPS.
VDBE_OPS_BASE = 25_000  # gold max: 255
# The densest list, "1,1,1,...", takes 1.5 instructions per character. SQLite
# grows a program by doubling its array and refuses a doubling past the limit
# (a limit of 25,000 refuses instruction 21,505), so allow twice that.
VDBE_OPS_PER_SQL_CHAR = 3
MAX_VDBE_OPS = VDBE_OPS_BASE + VDBE_OPS_PER_SQL_CHAR * MAX_ARG_BYTES  # every list that fits in an argument runs
STATEMENT_CACHE = 64  # prepared statements kept per connection, each of at most MAX_VDBE_OPS instructions

# Per-connection limits, lowered only where the default lets hostile SQL cost
# time or memory. Real text-to-SQL needs far less: the largest row in the
# Spider databases is 240 bytes, and no gold query compiles to more than a
# few hundred VM instructions.
LIMITS = {
    sqlite3.SQLITE_LIMIT_LENGTH: MAX_VALUE_BYTES,  # a Sandbox's max_value_bytes replaces it
    sqlite3.SQLITE_LIMIT_SQL_LENGTH: MAX_SQL_BYTES,
    sqlite3.SQLITE_LIMIT_VDBE_OP: VDBE_OPS_BASE,  # caps one prepared statement's memory; see _vdbe_op_limit
    sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH: 10_000,  # LIKE/GLOB cost grows with pattern x text
    sqlite3.SQLITE_LIMIT_ATTACHED: 0,  # a second line of defence behind the authorizer
    sqlite3.SQLITE_LIMIT_WORKER_THREADS: 0,  # sorts stay on the worker thread we can abandon
}

# PRAGMAs that only describe the schema; any argument is a table or index name.
READ_PRAGMAS = frozenset(
    {"table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list",
     "data_version"}  # a read-only counter, which FTS5 reads whenever a query opens its table
)
# load_extension runs native code; fts3_tokenizer (compiled in on Debian) both
# leaks and accepts raw function pointers.
DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer"})
# The first use of an eponymous virtual table (json_each, pragma_table_info,
# dbstat, ...) on a connection asks to UPDATE these schema-table columns while
# SQLite declares the table. Nothing is written. A real UPDATE of the schema
# table is refused by SQLite before the authorizer is asked, and query_only and
# mode=ro would stop it anyway.
_VTAB_DECLARE_COLUMNS = frozenset({"type", "name", "tbl_name", "rootpage", "sql"})
_ALLOWED_ACTIONS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE})
_SHADOW_WRITES = frozenset({sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE})


_ACTION_NAMES = {  # for error messages; SQLITE_OK/DENY share values with actions, so list them
    getattr(sqlite3, f"SQLITE_{name}"): name
    for name in (
        "CREATE_INDEX", "CREATE_TABLE", "CREATE_TEMP_INDEX", "CREATE_TEMP_TABLE", "CREATE_TEMP_TRIGGER",
        "CREATE_TEMP_VIEW", "CREATE_TRIGGER", "CREATE_VIEW", "DELETE", "DROP_INDEX", "DROP_TABLE",
        "DROP_TEMP_INDEX", "DROP_TEMP_TABLE", "DROP_TEMP_TRIGGER", "DROP_TEMP_VIEW", "DROP_TRIGGER",
        "DROP_VIEW", "INSERT", "PRAGMA", "TRANSACTION", "UPDATE", "ATTACH", "DETACH", "ALTER_TABLE",
        "REINDEX", "ANALYZE", "CREATE_VTABLE", "DROP_VTABLE", "FUNCTION", "SAVEPOINT",
    )
}
TEXT_ERROR_HANDLERS = ("ignore", "replace", "backslashreplace", "strict")


@dataclass(frozen=True)
class ExecResult:
    """The outcome of one query. ``rows`` hold raw sqlite3 values (int, float, str, bytes, None)."""

    ok: bool
    rows: list[tuple]
    error: str | None
    elapsed_ms: float
    truncated: bool
    columns: list[str] | None = None

    def to_json(self) -> dict:
        """A dict that ``json.dumps(..., allow_nan=False)`` accepts; see the module docstring."""
        return {
            "ok": self.ok,
            "rows": [[_json_value(value) for value in row] for row in self.rows],
            "error": self.error,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "truncated": self.truncated,
            "columns": self.columns,
        }


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, bytes):
        return {"$blob_hex": value.hex()}
    return value


# --- one statement per call --------------------------------------------------

# What a read-only statement can start with. The authorizer is what enforces
# read-only; this check exists because a write that finds nothing to change
# (DROP TABLE IF EXISTS nosuch) never reaches the authorizer, and it gives
# the clearest error message.
READ_KEYWORDS = frozenset({"SELECT", "WITH", "VALUES", "PRAGMA"})


def _check_sql(sql: str) -> tuple[str | None, str | None]:
    """(statement to run, None), or (None, why the text is refused) before SQLite sees it."""
    if not isinstance(sql, str):
        return None, f"rejected: SQL must be text, got {type(sql).__name__}"
    try:
        size = len(sql.encode("utf-8"))
    except UnicodeEncodeError as exc:
        return None, f"rejected: SQL is not valid UTF-8 (undecodable byte at character {exc.start})"
    if size > MAX_SQL_BYTES:
        return None, f"rejected: SQL is {size:,} bytes; the limit is {MAX_SQL_BYTES:,}"
    nul = sql.find("\x00")
    if nul >= 0:
        # SQLite would stop reading at the NUL and silently ignore what follows.
        return None, f"rejected: SQL contains a NUL character at character {nul}"
    begin, end = first_statement_bounds(sql)
    if is_blank(sql, begin, end):
        return None, "rejected: no SQL statement to run (the text is empty or only comments)"
    if not is_blank(sql, end, len(sql)):
        return None, (
            f"rejected: only one SQL statement is allowed per call; another statement "
            f"follows the first at character {end}"
        )
    statement = sql[begin:end]
    keyword = leading_keyword(statement)
    if keyword not in READ_KEYWORDS:
        return None, (
            f"rejected: only read-only queries can run here (SELECT, WITH, VALUES, EXPLAIN or "
            f"a schema PRAGMA); this statement starts with {keyword!r}"
        )
    return statement, None


# --- the connection and its worker ----------------------------------------------

_TIMED_OUT = "timeout"  # a worker's error for a query stopped at its deadline; execute() words it


class _Runner:
    """One read-only connection and the daemon thread that runs every query on it.

    A caller has a runner to itself between acquiring and releasing it, so the
    connection needs no lock. A runner stuck past its deadline is abandoned
    (never reused). Its thread closes the connection once SQLite returns.
    """

    def __init__(self, uri: str, text_errors: str, max_value_bytes: int = MAX_VALUE_BYTES,
                 max_result_bytes: int = MAX_RESULT_BYTES):
        # Opened in the caller's thread, so an unopenable file is reported at once.
        conn = sqlite3.connect(
            uri, uri=True, timeout=1.0, isolation_level=None, check_same_thread=False,
            cached_statements=STATEMENT_CACHE,
        )
        try:
            conn.execute("PRAGMA query_only = ON")
            conn.execute("PRAGMA temp_store = MEMORY")
            for limit, value in LIMITS.items():
                conn.setlimit(limit, value)
            conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max_value_bytes)
        except sqlite3.Error:
            conn.close()
            raise
        if text_errors != "strict":
            conn.text_factory = lambda raw: raw.decode("utf-8", text_errors)
        self._shadow_tables = frozenset(name.lower() for name in shadow_tables(conn))
        self._max_result_bytes = max_result_bytes
        conn.set_authorizer(self._authorize)
        conn.set_progress_handler(self._past_deadline, PROGRESS_EVERY_OPS)
        self._conn = conn
        self._deadline = math.inf
        self._denied: str | None = None
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._results: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="sql-sandbox", daemon=True)
        self._thread.start()

    # Callbacks, called by SQLite in the worker thread.
    def _past_deadline(self) -> bool:
        return time.monotonic() > self._deadline

    def _authorize(self, action, arg1, arg2, db_name, source) -> int:
        if action in _ALLOWED_ACTIONS:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() not in DENIED_FUNCTIONS:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in READ_PRAGMAS:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_UPDATE and arg1 == "sqlite_master" and arg2 in _VTAB_DECLARE_COLUMNS:
            return sqlite3.SQLITE_OK
        if action in _SHADOW_WRITES and (arg1 or "").lower() in self._shadow_tables:
            # An R*Tree or FTS5 table prepares its own writes to its shadow tables when a query
            # opens it; none runs (a SELECT writes nothing, and the file is open read-only).
            return sqlite3.SQLITE_OK
        if self._denied is None:
            what = " ".join(str(arg) for arg in (arg1, arg2) if arg)
            self._denied = f"{_ACTION_NAMES.get(action, action)} {what}".strip()
        return sqlite3.SQLITE_DENY

    # The worker thread.
    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            self._results.put(self._run(*job))
        self._conn.close()

    def _run(self, sql: str, deadline: float, max_rows: int | None):
        """(rows, columns, truncated, error). Never raises: the caller is waiting."""
        self._deadline, self._denied = deadline, None
        cursor = self._conn.cursor()
        try:
            self._conn.setlimit(sqlite3.SQLITE_LIMIT_VDBE_OP, _vdbe_op_limit(sql))
            cursor.execute(sql)
            columns = [column[0] for column in cursor.description or ()]
            rows, truncated = _fetch(cursor, max_rows, self._max_result_bytes)
            return rows, columns, truncated, None
        except _ResultTooLarge:
            return [], None, False, (
                f"result too large: the rows fetched exceed {self._max_result_bytes // 2**20} MiB; "
                "add a LIMIT or aggregate"
            )
        except Exception as exc:  # noqa: BLE001 - every failure becomes an error result
            return [], None, False, self._describe(exc)
        finally:
            self._deadline = math.inf
            try:
                cursor.close()
            except sqlite3.Error:
                pass

    def _describe(self, exc: Exception) -> str:
        message = str(exc)
        if self._denied is not None:
            return f"rejected: the sandbox is read-only and does not allow {self._denied}"
        if message == "interrupted" and time.monotonic() > self._deadline:
            return _TIMED_OUT
        if "one statement at a time" in message:
            return "rejected: only one SQL statement is allowed per call"
        if isinstance(exc, MemoryError) or message == "out of memory":
            return "out of memory: the query needs more memory or a longer program than the sandbox allows"
        return message if isinstance(exc, (sqlite3.Error, sqlite3.Warning)) else f"{type(exc).__name__}: {message}"

    # Used by the caller's thread.
    def submit(self, sql: str, deadline: float, max_rows: int | None) -> None:
        self._jobs.put((sql, deadline, max_rows))

    def wait(self, seconds: float):
        try:
            return self._results.get(timeout=min(max(seconds, 0.0), threading.TIMEOUT_MAX))
        except queue.Empty:
            return None

    def interrupt(self) -> None:
        self._conn.interrupt()

    def stop(self) -> None:
        """Close the connection once the current query (if any) returns; never blocks."""
        self._jobs.put(None)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class _ResultTooLarge(Exception):
    pass


def _vdbe_op_limit(sql: str) -> int:
    """SQLITE_LIMIT_VDBE_OP for one statement: a long text may compile to a long program."""
    return min(MAX_VDBE_OPS, VDBE_OPS_BASE + VDBE_OPS_PER_SQL_CHAR * len(sql))


def _fetch(cursor: sqlite3.Cursor, max_rows: int | None, max_bytes: int = MAX_RESULT_BYTES) -> tuple[list[tuple], bool]:
    """Fetch up to ``max_rows`` rows (all when None), plus one to learn whether more exist.

    Raises _ResultTooLarge as soon as the rows kept pass ``max_bytes``, so
    Python never holds more than that plus one row. Counting a batch of 512 rows
    after fetching it let 512 values of 5 MB (2.5 GB) arrive before the check.
    One row is bounded by SQLite's heap where ``limit_sqlite_heap`` is set: its
    values are all in SQLite's memory while Python copies them. The look-ahead
    row is not counted: it is dropped, and a result that fits stays a result.
    """
    rows: list[tuple] = []
    size = 0
    fetch, sizeof = cursor.fetchone, sys.getsizeof
    while max_rows is None or len(rows) < max_rows:
        row = fetch()
        if row is None:
            return rows, False
        # Python's real cost of the row and its values: a str of non-ASCII text
        # takes up to 4 bytes a character, where len() would count one.
        size += sizeof(row) + sum(map(sizeof, row))
        if size > max_bytes:
            raise _ResultTooLarge
        rows.append(row)
    return rows, fetch() is not None


# --- the public entry points ----------------------------------------------------


class Sandbox:
    """Runs one read-only statement at a time against SQLite files, reusing a connection per file.

    Args:
        timeout: seconds a query may run (default 10). The call returns within
            ``timeout + GRACE_S`` whatever the SQL.
        max_rows: rows returned before ``truncated`` is set (default 10,000).
            None returns every row, up to ``MAX_RESULT_BYTES``.
        text_errors: how invalid UTF-8 in TEXT values is decoded (``"ignore"``,
            as the official Spider evaluator does; ``"replace"``,
            ``"backslashreplace"``; ``"strict"`` makes such a query fail).
        max_value_bytes, max_result_bytes: the longest value SQLite may build and the most
            Python memory the rows of one result may take. The defaults stop bombs in model
            SQL; the scorer raises both, since a verdict must see what a database holds.

    Safe to share between threads: each concurrent call gets its own connection.
    """

    def __init__(self, timeout: float = DEFAULT_TIMEOUT_S, max_rows: int | None = DEFAULT_MAX_ROWS,
                 text_errors: str = "ignore", max_value_bytes: int = MAX_VALUE_BYTES, max_result_bytes: int = MAX_RESULT_BYTES):
        if text_errors not in TEXT_ERROR_HANDLERS:
            raise ValueError(f"text_errors must be one of {TEXT_ERROR_HANDLERS}, got {text_errors!r}")
        self.timeout = _check_timeout(timeout)
        self.max_rows = _check_max_rows(max_rows)
        self.text_errors = text_errors
        self._caps = (max_value_bytes, max_result_bytes)
        self._lock = threading.Lock()
        self._uris: dict[str, str] = {}  # absolute path -> URI
        self._idle: dict[str, list[_Runner]] = {}  # URI -> runners not in use
        # Idle workers hold no reference to the Sandbox, so stop them when it is collected.
        self._finalizer = weakref.finalize(self, _stop_all, self._idle)

    def execute(self, db_path: str | os.PathLike, sql: str, *, timeout: float | None = None,
                max_rows: int | None | EllipsisType = ...) -> ExecResult:
        """Run one statement. ``timeout`` None and ``max_rows`` ``...`` use the Sandbox's defaults.

        Raises UserError when the database file does not exist. Every other problem
        (refused SQL, SQL errors, timeout) is an ``ExecResult`` with ``ok=False``.
        """
        start = time.monotonic()
        timeout = self.timeout if timeout is None else _check_timeout(timeout)
        max_rows = self.max_rows if max_rows is ... else _check_max_rows(max_rows)
        uri = self._uri(db_path)
        statement, problem = _check_sql(sql)
        if problem is not None:
            return _result(start, error=problem)
        try:
            runner = self._acquire(uri)
        except sqlite3.Error as exc:
            return _result(start, error=f"cannot open the database: {exc}")
        runner.submit(statement, start + timeout, max_rows)
        outcome = runner.wait(start + timeout - time.monotonic())
        if outcome is None:
            runner.interrupt()  # stops the VM at once unless it is inside one long function call
            outcome = runner.wait(GRACE_S)
        if outcome is None:
            runner.stop()  # abandoned: its thread closes the connection whenever SQLite returns
            outcome = [], None, False, _TIMED_OUT
        else:
            self._release(uri, runner)
        rows, columns, truncated, error = outcome
        if error == _TIMED_OUT:
            error = f"timeout: the query ran longer than {timeout:g} s"
        return _result(start, rows=rows, columns=columns, truncated=truncated, error=error)

    def close(self) -> None:
        """Close every idle connection. The Sandbox stays usable and reopens as needed."""
        with self._lock:
            runners = [runner for pool in self._idle.values() for runner in pool]
            self._idle.clear()
        for runner in runners:
            runner.stop()
        for runner in runners:
            runner.join(1.0)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _uri(self, db_path: str | os.PathLike) -> str:
        path = os.fspath(db_path)
        if not os.path.isfile(path):
            raise UserError(f"database not found: {path}")
        key = os.path.abspath(path)
        uri = self._uris.get(key)
        if uri is None:
            try:
                uri = self._uris[key] = database_uri(Path(key).resolve())
            except OSError as exc:
                raise UserError(f"cannot read database {path}: {exc.strerror}") from None
        return uri

    def _acquire(self, uri: str) -> _Runner:
        with self._lock:
            pool = self._idle.get(uri)
            if pool:
                return pool.pop()
        return _Runner(uri, self.text_errors, *self._caps)

    def _release(self, uri: str, runner: _Runner) -> None:
        with self._lock:
            self._idle.setdefault(uri, []).append(runner)


def _stop_all(idle: dict[str, list[_Runner]]) -> None:
    for pool in idle.values():
        for runner in pool:
            runner.stop()


def _result(start: float, *, rows=None, columns=None, truncated=False, error=None) -> ExecResult:
    return ExecResult(
        ok=error is None, rows=rows if error is None else [], error=error,
        elapsed_ms=(time.monotonic() - start) * 1000, truncated=truncated,
        columns=columns if error is None else None,
    )


def _check_timeout(timeout: float) -> float:
    if not (isinstance(timeout, (int, float)) and 0 < timeout < math.inf):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def _check_max_rows(max_rows: int | None) -> int | None:
    if max_rows is not None and (not isinstance(max_rows, int) or max_rows < 0):
        raise ValueError(f"max_rows must be a non-negative integer or None, got {max_rows!r}")
    return max_rows


def execute_readonly(db_path: str | os.PathLike, sql: str, *, timeout: float = DEFAULT_TIMEOUT_S,
                     max_rows: int | None = DEFAULT_MAX_ROWS) -> ExecResult:
    """Run one statement with a throw-away Sandbox. Use a Sandbox to run many."""
    with Sandbox(timeout=timeout, max_rows=max_rows) as sandbox:
        return sandbox.execute(db_path, sql)


def limit_sqlite_heap(max_bytes: int) -> None:
    """Cap all SQLite memory in this process (``PRAGMA hard_heap_limit``).

    Process-wide, and it can only be lowered: call it only in processes whose
    SQLite use is running untrusted SQL, such as the ``exec`` command.
    """
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(f"PRAGMA hard_heap_limit = {int(max_bytes)}")
    finally:
        conn.close()


# --- the `exec` command ------------------------------------------------------------


def make_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = ArgParser(
        prog=prog,
        description="Run one SQL query read-only and print one JSON object "
        '{"ok", "rows", "error", "elapsed_ms", "truncated", "columns"}. Exits 0 whether or not '
        "the query succeeded; 2 for bad usage or a missing database. Blobs are printed as "
        '{"$blob_hex": "..."} and infinite floats as "Infinity"/"-Infinity".',
    )
    flag(parser, "db", required=True, help="SQLite database file (never modified)")
    flag(parser, "sql", required=True, help="the query; '-' reads it as UTF-8 bytes from standard input")
    flag(parser, "timeout", type=float, default=DEFAULT_TIMEOUT_S,
         help=f"seconds before the query is stopped (default {DEFAULT_TIMEOUT_S:g})")
    flag(parser, "max_rows", type=int, default=DEFAULT_MAX_ROWS,
         help=f"rows printed before 'truncated' is set; 0 for no cap (default {DEFAULT_MAX_ROWS})")
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # argparse takes a value that starts with "-" and holds no space for an
    # option, and SQL can look like that ("--comment\nSELECT\t1"). Glue it on.
    if "--sql" in argv[:-1]:
        i = argv.index("--sql")
        argv[i:i + 2] = [f"--sql={argv[i + 1]}"]
    args = make_parser(prog).parse_args(argv)
    if not 0 < args.timeout < math.inf:
        raise UserError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    if args.max_rows < 0:
        raise UserError(f"--max-rows must be 0 (no cap) or a positive number, got {args.max_rows}")
    if not os.path.isfile(args.db):
        raise UserError(f"database not found: {args.db}")
    start = time.monotonic()
    sql, result = args.sql, None
    if sql == "-":
        raw = sys.stdin.buffer.read(MAX_SQL_BYTES + 1)  # one byte over the limit is enough to refuse it
        try:
            sql = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            result = _result(start, error=f"rejected: SQL is not valid UTF-8 (invalid byte at offset {exc.start})")
        if len(raw) > MAX_SQL_BYTES:
            result = _result(start, error=f"rejected: SQL is more than {MAX_SQL_BYTES:,} bytes")
    if result is None:
        limit_sqlite_heap(CLI_HEAP_LIMIT)
        with Sandbox(timeout=args.timeout, max_rows=args.max_rows or None) as sandbox:
            result = sandbox.execute(args.db, sql)
    _write_json(result, sys.stdout.buffer)
    sys.stdout.flush()
    return 0


# ensure_ascii=False keeps text readable.
_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False)
_JSON_ROW_AT_ONCE = 2**20  # rows smaller than this (sys.getsizeof) are encoded in one call


def _write_json(result: ExecResult, out) -> None:
    """Write ``result.to_json()`` as one line, the same bytes ``json.dumps`` gives, a row at a time.

    Encoding the whole result at once holds it several times over: a blob doubles
    as hex and a control character takes six (``\\u0001``), and the text is
    then copied again as UTF-8. 56 MB of such rows, well within
    MAX_RESULT_BYTES, took the `exec` process past 1 GiB. A row at a time (a
    value at a time for wide rows), the output adds one value's JSON at most.
    """
    def write(text: str) -> None:
        # "replace" can only meet a lone surrogate, which sits inside a JSON
        # string, so the output stays valid JSON.
        out.write(text.encode("utf-8", "replace"))

    fields = replace(result, rows=[]).to_json()  # "ok" and "rows" come first, as in to_json
    write('{"ok": ' + _JSON.encode(fields.pop("ok")) + ', "rows": [')
    del fields["rows"]
    for i, row in enumerate(result.rows):
        if i:
            write(", ")
        if sum(map(sys.getsizeof, row)) < _JSON_ROW_AT_ONCE:
            write(_JSON.encode([_json_value(value) for value in row]))
        else:
            write("[")
            for j, value in enumerate(row):
                write((", " if j else "") + _JSON.encode(_json_value(value)))
            write("]")
    write("], " + _JSON.encode(fields)[1:] + "\n")
