"""Split the Spider train split by database: the last N databases (by name) are held out.

    python bench/spider_holdout.py SPIDER_TRAIN_DIR OUT_DIR [--databases 20] [--eval_limit N]

Writes OUT_DIR/train.json (questions on the other databases) and OUT_DIR/heldout.json (the
held-out databases' questions, the first --eval_limit of them): a stand-in for Spider dev,
which is not available here, so that nothing is tuned on evaluation data.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spider", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--databases", type=int, default=20, help="how many databases to hold out (default: 20)")
    parser.add_argument("--eval_limit", type=int, help="keep only the first N held-out questions")
    args = parser.parse_args()
    examples = json.loads((args.spider / "train_spider.json").read_text())
    held_out = set(sorted({e["db_id"] for e in examples})[-args.databases:])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "train.json").write_text(json.dumps([e for e in examples if e["db_id"] not in held_out]))
    (args.out / "heldout.json").write_text(json.dumps([e for e in examples if e["db_id"] in held_out][:args.eval_limit]))


if __name__ == "__main__":
    main()
