"""``text2sql-mlops data``: import the Spider dataset, validate a dataset, build the demo dataset.

    text2sql-mlops data import-spider spider.zip --dest data/spider
    text2sql-mlops data validate data/spider --split dev --out metrics/data_dev.json
    text2sql-mlops data demo --out data/demo
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

from ..core.cliutil import ArgParser, flag
from ..core.fileio import check_outputs, output_file, output_folder_type, write_json
from ..core.records import Example
from .demo.build import build_demo, built_here
from .load import SPLIT_FILES, default_tables_json, load_examples
from .spider import import_spider, imported_here, read_tables_json


def make_parser(prog: str = "text2sql-mlops data") -> argparse.ArgumentParser:
    parser = ArgParser(prog=prog, description="Import, validate and generate datasets.")
    sub = parser.add_subparsers(dest="action", required=True)

    imp = sub.add_parser("import-spider", help="validate a Spider folder or zip and place it under data/spider/")
    imp.add_argument("path", help="Spider folder or spider.zip")
    flag(imp, "dest", "--out", default="data/spider", type=output_folder_type(imported_here),
         help="where to place it (default: data/spider)")
    flag(imp, "force", action="store_true", help="replace an earlier import at --dest (never a folder of yours)")

    val = sub.add_parser("validate", help="load a dataset, resolve every database, print a summary (optionally as JSON)")
    val.add_argument("dataset", help="JSON list, JSONL or Spider-layout folder")
    flag(val, "db_root", help="folder holding <db_id>/<db_id>.sqlite")
    flag(val, "split", default="train", choices=sorted(SPLIT_FILES), help="split of a Spider-layout folder")
    flag(val, "out", type=output_file, help="write the summary as JSON here")

    demo = sub.add_parser("demo", help="generate the embedded demo dataset (Spider layout, deterministic)")
    flag(demo, "out", default="data/demo", type=output_folder_type(built_here),
         help="output folder, replaced as a whole (default: data/demo)")
    flag(demo, "seed", type=int, default=0, help="seed of the generator (default: %(default)s)")
    return parser


def dataset_summary(examples: list[Example]) -> dict[str, Any]:
    per_db = Counter(ex.db_id for ex in examples)
    ids = [ex.id for ex in examples]
    return {
        "examples": len(examples),
        "databases": len(per_db),
        "duplicate_ids": len(ids) - len(set(ids)),
        "questions_per_db": dict(sorted(per_db.items())),
    }


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops data") -> int:
    args = make_parser(prog).parse_args(argv)
    if args.action == "import-spider":
        summary = import_spider(args.path, args.dest, force=args.force)
        print("\n".join(summary.lines()))
    elif args.action == "validate":
        check_outputs((("--out", args.out),), (args.dataset, args.db_root))
        examples = load_examples(args.dataset, args.db_root, args.split)
        tables_json = default_tables_json(args.dataset, args.split)
        if tables_json:  # the schemas every later command reads
            read_tables_json(tables_json, {ex.db_id for ex in examples})
        summary = dataset_summary(examples)
        summary["tables_json"] = tables_json
        summary["config"] = {"dataset": args.dataset, "db_root": args.db_root, "split": args.split}  # what `track` logs as params
        if args.out:
            write_json(args.out, summary)
        print(json.dumps({k: v for k, v in summary.items() if k not in ("questions_per_db", "config")}))
    elif args.action == "demo":
        summary = build_demo(args.out, seed=args.seed)
        print(json.dumps(summary, indent=2))
    return 0
