"""Time `text2sql-mlops score` against the official Spider evaluator on the same files.

    python bench/bench_scoring.py --official PATH/TO/test-suite-sql-eval [--spider ../shared/spider-train] [-n 1034]

Takes the first N Spider train questions whose gold SQL runs, makes one
prediction per question (a deterministic mix of the gold itself and perturbed
gold: DISTINCT added, ORDER BY or LIMIT dropped, another question's gold on the
same database, a second statement, broken SQL), writes both files in the
official format and runs each evaluator once on them as a separate process
(start-up included). The official one runs as ``python evaluation.py --etype
exec`` inside PATH with ``--official-python`` (its dependencies, nltk and
sqlparse, must be importable there). Prints both times, the ratio and both EX
values, which must be equal.
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from text2sql_mlops.scoring.scorer import Scorer  # noqa: E402


def perturb(gold: str, other: str, kind: int) -> str:
    """One prediction: the gold itself half of the time, otherwise one perturbation."""
    variants = [
        gold,
        gold,
        gold,
        re.sub(r"(?i)\bselect\b", "SELECT DISTINCT", gold, count=1),
        re.sub(r"(?i)\s+order\s+by\s+.*?(?=\s+limit\b|$)", "", gold),
        re.sub(r"(?i)\s+limit\s+\d+", "", gold),
        other,
        gold + "; SELECT 1",
        gold[: len(gold) // 2],
        gold.lower(),
    ]
    return variants[kind % len(variants)]


def make_files(spider: Path, n: int, out: Path) -> tuple[Path, Path]:
    lines = [line.split("\t") for line in (spider / "train_gold.sql").read_text().splitlines()]
    by_db: dict[str, list[str]] = {}
    for sql, db_id in lines:
        by_db.setdefault(db_id, []).append(sql)
    rng = random.Random(0)
    chosen = []
    with Scorer() as scorer:  # keep only gold SQL that runs: the official evaluator stops on the others
        for sql, db_id in lines:
            if len(chosen) == n:
                break
            if scorer.score(spider / "database" / db_id, sql, sql).gold_error is None:
                chosen.append((sql, db_id))
    gold_file, pred_file = out / "gold.sql", out / "pred.sql"
    gold_file.write_text("".join(f"{sql}\t{db_id}\n" for sql, db_id in chosen))
    pred_file.write_text("".join(
        perturb(sql, rng.choice(by_db[db_id]), rng.randrange(1000)) + "\n" for sql, db_id in chosen
    ))
    return gold_file, pred_file


def timed(command: list[str], cwd: Path | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def ex_all(table: str) -> float:
    """The "all" column of the execution row of either evaluator's table."""
    row = next(line for line in table.splitlines() if line.startswith("execution"))
    return float(row.split()[5])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", type=Path, required=True, help="checkout of test-suite-sql-eval")
    parser.add_argument("--official-python", default=sys.executable, help="python that runs the official evaluator")
    parser.add_argument("--spider", type=Path, default=REPO.parent / "shared" / "spider-train")
    parser.add_argument("-n", type=int, default=1034, help="number of predictions (default 1034)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        gold, pred = make_files(args.spider, args.n, Path(tmp))
        db = args.spider / "database"
        for path in db.glob("*/*.sqlite"):  # warm the page cache so neither run pays for the first read
            path.read_bytes()
        ours_s, ours_out = timed([sys.executable, "-m", "text2sql_mlops.cli", "score", "--gold", str(gold),
                                  "--pred", str(pred), "--db", str(db), "--no-progress"], cwd=REPO)
        official_s, official_out = timed([args.official_python, "evaluation.py", "--gold", str(gold),
                                          "--pred", str(pred), "--db", str(db), "--etype", "exec"], cwd=args.official)
    print(f"predictions: {args.n}")
    print(f"official evaluator: {official_s:7.2f} s   EX {ex_all(official_out):.3f}")
    print(f"text2sql-mlops:     {ours_s:7.2f} s   EX {ex_all(ours_out):.3f}")
    print(f"speed-up: {official_s / ours_s:.1f}x")
    if ex_all(official_out) != ex_all(ours_out):
        sys.exit("EX differs between the two evaluators")


if __name__ == "__main__":
    main()
