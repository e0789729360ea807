"""Agreement of our execution-accuracy verdicts with the official Spider evaluator, case by case.

    python bench/official_agreement.py --official PATH/TO/test-suite-sql-eval [--spider ../shared/spider-train]
        [--limit N] [--out agreement.json]

For every gold query of the split that runs, it builds predictions that probe the
evaluator's rules (deterministic, seeded): the gold itself; DISTINCT added and removed;
ORDER BY direction flipped; LIMIT changed and dropped; the select list reversed; the
comparison spacing the official code repairs (``> =``); a trailing semicolon and a second
statement; lower-cased keywords; two other gold queries of the same database; and the
synthetic mutations ``pairs synth`` makes (wrong column, table, join, aggregation,
condition, GROUP BY, ORDER BY/LIMIT). Each (gold, prediction) is judged by
``exec_eval.eval_exec_match`` of the official checkout (``--official``: its folder is put
on ``sys.path``; it needs sqlparse and tqdm) and by ``Scorer(matcher="official")``, and
every disagreement is listed (a prediction that runs longer than 60 s is the one known kind: the
official code declares a 60 s timeout it cannot enforce and runs it to the end; ours stops it
and scores 0). The official code opens databases read-write, so it runs on a temporary copy of
the database folder.

Prints one line per 10,000 cases and a JSON summary (``--out`` writes it too).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import sqlglot
from sqlglot import exp

from text2sql_mlops.pairs.mutations import MUTATIONS, candidate_sqls
from text2sql_mlops.scoring.scorer import Scorer, verdict_database
from text2sql_mlops.sql.catalog import load_catalog


def variants(gold: str, others: list[str], catalog, rng: random.Random) -> list[str]:
    """Predictions for one gold query: rule probes first, then mutations; no repeats."""
    out = [gold, gold.rstrip().rstrip(";") + ";", gold.rstrip().rstrip(";") + "; SELECT 1",
           re.sub(r"(?i)\bselect\b", "SELECT DISTINCT", gold, count=1), re.sub(r"(?i)\bdistinct\b", "", gold),
           gold.replace(">=", "> =").replace("<=", "< ="), re.sub(r"(?i)\b(select|from|where|order by|group by)\b", lambda m: m[0].lower(), gold)]
    if re.search(r"(?i)\bdesc\b", gold):
        out.append(re.sub(r"(?i)\bdesc\b", "ASC", gold))
    elif re.search(r"(?i)order by", gold):
        out.append(re.sub(r"(?i)(order by\s+[^\s,]+)", r"\1 DESC", gold, count=1))
    if match := re.search(r"(?i)\blimit\s+(\d+)", gold):
        out += [gold[:match.start()] + f"LIMIT {int(match[1]) + 1}" + gold[match.end():], gold[:match.start()] + gold[match.end():]]
    try:
        tree = sqlglot.parse_one(gold, read="sqlite")
    except sqlglot.errors.SqlglotError:
        tree = None
    if isinstance(tree, exp.Select) and len(tree.expressions) > 1:
        reversed_tree = tree.copy()
        reversed_tree.set("expressions", list(reversed(reversed_tree.expressions)))
        out.append(reversed_tree.sql(dialect="sqlite"))
    out += rng.sample(others, min(2, len(others)))
    if tree is not None:
        for family in MUTATIONS:
            for index, sql in enumerate(candidate_sqls(tree, catalog, family, rng, "upper")):
                if index == 2:
                    break
                out.append(sql)
    return list(dict.fromkeys(sql for sql in out if sql.strip()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="checkout of test-suite-sql-eval (exec_eval.py, parse.py)")
    parser.add_argument("--spider", type=Path, default=Path("../shared/spider-train"), help="Spider-layout folder")
    parser.add_argument("--split", default="train_spider.json")
    parser.add_argument("--limit", type=int, help="first N gold queries only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not (args.official / "exec_eval.py").is_file():
        sys.exit(f"error: {args.official} has no exec_eval.py; give a checkout of test-suite-sql-eval")
    sys.path.insert(0, str(args.official.resolve()))
    import exec_eval  # noqa: PLC0415 - the official code, from the user's checkout

    random.seed(args.seed)  # the official permutation search samples rows
    rng = random.Random(args.seed)
    examples = json.loads((args.spider / args.split).read_text())[: args.limit]
    started, cases, disagreements, skipped, by_db = time.perf_counter(), 0, [], 0, {}
    for example in examples:
        by_db.setdefault(example["db_id"], []).append(example["query"])
    with tempfile.TemporaryDirectory(prefix="agreement-") as scratch, Scorer(matcher="official") as scorer:
        databases = Path(scratch) / "database"
        shutil.copytree(args.spider / "database", databases)
        for number, example in enumerate(examples, 1):
            db_id, gold = example["db_id"], example["query"]
            db = databases / db_id / f"{db_id}.sqlite"
            if scorer.score(verdict_database(str(db), db_id), gold, "SELECT 1").gold_error:
                skipped += 1  # the official code stops on a failing gold
                continue
            others = [sql for sql in by_db[db_id] if sql != gold]
            for prediction in variants(gold, others, load_catalog(str(db)), rng):
                verdict = scorer.score(verdict_database(str(db), db_id), gold, prediction)
                ours = verdict.match
                official = bool(exec_eval.eval_exec_match(str(db), prediction, gold, plug_value=False, keep_distinct=False,
                                                          progress_bar_for_each_datapoint=False))
                cases += 1
                if ours != official:
                    disagreements.append({"db_id": db_id, "gold": gold, "prediction": prediction, "ours": ours, "official": official,
                                          "our_error": verdict.pred_error})
                if cases % 10_000 == 0:
                    print(f"{cases} cases, {len(disagreements)} disagreements, {number}/{len(examples)} gold, "
                          f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    summary = {"gold_queries": len(examples) - skipped, "failing_gold_skipped": skipped, "cases": cases,
               "disagreements": len(disagreements),
               # The official code declares a 60 s timeout that asyncio cannot enforce on sqlite3's
               # synchronous call, so it runs a slow prediction to the end; ours stops it at 60 s.
               "disagreements_where_ours_timed_out": sum(str(d["our_error"]).startswith("timeout") for d in disagreements),
               "first_disagreements": disagreements[:20],
               "wall_s": round(time.perf_counter() - started, 1), "date": time.strftime("%Y-%m-%d"), "seed": args.seed}
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    sys.exit(1 if summary["disagreements"] > summary["disagreements_where_ours_timed_out"] else 0)


if __name__ == "__main__":
    main()
