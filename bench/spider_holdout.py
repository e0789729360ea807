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
import sys
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
    own = {"train_spider.json", "dev.json", "tables.json", "database"} if args.layout else {"train.json", "heldout.json"}
    if args.out.exists():
        # Over a `data import-spider` folder (the README puts both at data/spider) this rewrote the
        # user's train_spider.json, dev.json and tables.json: only a folder of its own is rewritten.
        others = sorted(p.name for p in args.out.iterdir() if p.name not in own or (p.name == "database" and not p.is_symlink()))
        if not args.out.is_dir() or others:
            sys.exit(f"error: {args.out} holds files this script did not write ({', '.join(others[:5]) or 'a file'}); "
                     "give a new folder")
    args.out.mkdir(parents=True, exist_ok=True)

    def write(name: str, text: str) -> None:  # a temporary renamed into place: never half a file
        temporary = args.out / f".{name}.tmp"
        temporary.write_text(text)
        temporary.replace(args.out / name)

    if not args.layout:
        write("train.json", json.dumps(train))
        write("heldout.json", json.dumps(evaluation))
        return
    write("train_spider.json", json.dumps(train))
    write("dev.json", json.dumps(evaluation))
    write("tables.json", (args.spider / "tables.json").read_text())
    link = args.out / "database"
    if not link.exists():
        os.symlink((args.spider / "database").resolve(), link)
    print(f"{args.out}: {len(train)} train questions on {len({e['db_id'] for e in train})} databases, "
          f"{len(evaluation)} dev questions on {len({e['db_id'] for e in evaluation})} held-out databases")


if __name__ == "__main__":
    main()
