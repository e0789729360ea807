"""Split the Spider train split by database: the last N databases (by name) are held out.

    python bench/spider_holdout.py SPIDER_TRAIN_DIR OUT_DIR [--databases 20] [--eval_limit N] [--layout]

Writes OUT_DIR/train.json (questions on the other databases) and OUT_DIR/heldout.json (the
held-out databases' questions, the first --eval_limit of them): a stand-in for Spider dev,
which is not available here, so that nothing is tuned on evaluation data.

With --layout, OUT_DIR is a Spider-layout folder instead (train_spider.json, dev.json =
the held-out questions, tables.json, database/ linked to the original): what
`text2sql-mlops data import-spider` gives for the official release, so the
smollm2-spider profile runs on it unchanged (`data.root: OUT_DIR`).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spider", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--databases", type=int, default=20, help="how many databases to hold out (default: 20)")
    parser.add_argument("--eval_limit", type=int, help="keep only the first N held-out questions")
    parser.add_argument("--layout", action="store_true", help="write a Spider-layout folder (dev.json = held out)")
    args = parser.parse_args()
    examples = json.loads((args.spider / "train_spider.json").read_text())
    held_out = set(sorted({e["db_id"] for e in examples})[-args.databases:])
    train = [e for e in examples if e["db_id"] not in held_out]
    evaluation = [e for e in examples if e["db_id"] in held_out][:args.eval_limit]
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.layout:
        (args.out / "train.json").write_text(json.dumps(train))
        (args.out / "heldout.json").write_text(json.dumps(evaluation))
        return
    (args.out / "train_spider.json").write_text(json.dumps(train))
    (args.out / "dev.json").write_text(json.dumps(evaluation))
    (args.out / "tables.json").write_text((args.spider / "tables.json").read_text())
    link = args.out / "database"
    if not link.exists():
        os.symlink((args.spider / "database").resolve(), link)
    print(f"{args.out}: {len(train)} train questions on {len({e['db_id'] for e in train})} databases, "
          f"{len(evaluation)} dev questions on {len({e['db_id'] for e in evaluation})} held-out databases")


if __name__ == "__main__":
    main()
