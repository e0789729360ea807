"""Measure the read-only sandbox: overhead on ordinary queries, and the worst case on hostile ones.

    python bench/bench_sandbox.py [--spider ../shared/spider-train] [-n 1000] [--timeout 0.5]

1. Overhead. Runs the first N Spider train gold queries, then one trivial query N
   times on one database, twice each: with plain ``sqlite3`` (one read-only
   connection per database, kept open) and through ``Sandbox.execute``. Prints
   ms/query for both and the difference.
2. Hostile corpus. Runs every case of ``tests/test_sandbox.py`` through
   ``text2sql-mlops exec`` in a fresh process and prints the slowest answer
   (time past the timeout) and the largest peak memory.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import sqlite3  # noqa: E402

from text2sql_mlops.sql.sandbox import Sandbox  # noqa: E402


def time_plain(queries: list[tuple[str, Path]]) -> float:
    conns: dict[Path, sqlite3.Connection] = {}
    start = time.perf_counter()
    for sql, db in queries:
        conn = conns.get(db)
        if conn is None:
            conn = conns[db] = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
            conn.text_factory = lambda b: b.decode(errors="ignore")
        try:
            conn.execute(sql).fetchall()
        except sqlite3.Error:
            pass
    seconds = time.perf_counter() - start
    for conn in conns.values():
        conn.close()
    return seconds


def time_sandbox(queries: list[tuple[str, Path]]) -> float:
    with Sandbox(max_rows=None) as sandbox:
        start = time.perf_counter()
        for sql, db in queries:
            sandbox.execute(db, sql)
        return time.perf_counter() - start


def overhead(spider: Path, n: int) -> None:
    gold = [line.split("\t") for line in (spider / "train_gold.sql").read_text().splitlines()[:n]]
    workloads = {
        f"first {len(gold)} gold queries": [(sql, spider / "database" / db / f"{db}.sqlite") for sql, db in gold],
        f"'SELECT count(*) FROM aircraft' x {n}": [
            ("SELECT count(*) FROM aircraft", spider / "database" / "aircraft" / "aircraft.sqlite")
        ] * n,
    }
    for name, queries in workloads.items():
        time_plain(queries[:50]), time_sandbox(queries[:50])  # warm the file cache
        plain, sandboxed = time_plain(queries), time_sandbox(queries)
        per = 1000 / len(queries)
        print(f"{name}: sqlite3 {plain * per:.3f} ms/query, sandbox {sandboxed * per:.3f} ms/query, "
              f"overhead {(sandboxed - plain) * per:.3f} ms/query")


def hostile(timeout: float) -> None:
    from test_sandbox import CASES, MAX_ROWS, Target, _build_db, run_exec

    with tempfile.TemporaryDirectory() as root:
        folders = [Path(root) / name for name in ("db", "watch", "cwd", "tmp")]
        for folder in folders:
            folder.mkdir()
        target = Target(folders[0] / "hostile.sqlite", *folders[1:])
        _build_db(target.db)
        slowest, largest = (0.0, ""), (0, "")
        for case in CASES:
            run = run_exec(
                "--db", str(target.db), "--sql", "-", "--timeout", str(timeout), "--max-rows", str(MAX_ROWS),
                stdin=target.fill(case["sql"]).encode("utf-8"), cwd=target.cwd, tmp=target.tmp,
            )
            slowest = max(slowest, (run.seconds, case["id"]))
            largest = max(largest, (run.peak_bytes, case["id"]))
    print(f"hostile corpus, {len(CASES)} cases through `exec` with --timeout {timeout:g}: "
          f"slowest answer {slowest[0]:.2f} s ({slowest[0] - timeout:+.2f} s past the timeout, {slowest[1]}), "
          f"largest peak memory {largest[0] / 2**20:.0f} MiB ({largest[1]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spider", type=Path, default=REPO.parent / "shared" / "spider-train")
    parser.add_argument("-n", type=int, default=1000, help="queries per overhead workload")
    parser.add_argument("--timeout", type=float, default=0.5, help="timeout for the hostile corpus")
    args = parser.parse_args()
    overhead(args.spider, args.n)
    hostile(args.timeout)


if __name__ == "__main__":
    main()
