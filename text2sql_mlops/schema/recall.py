"""``text2sql-mlops schema-recall``: how many gold tables a retrieval mode puts in front of the model.

    text2sql-mlops schema-recall --dataset train_spider.json --db-root database \\
        --tables tables.json --mode bm25_fk --top-k 6 --fk-hops 1

Retrieval modes are ``retrieval.py``'s; gold tables are the catalog tables the gold
query reads (``sql/shape.py: gold_tables``). ``--trajectories`` measures the schemas a
finished rollout actually showed instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..core.cliutil import ArgParser, flag
from ..core.errors import UserError
from ..core.fileio import check_outputs, output_file, write_json, write_jsonl
from ..core.records import Example, read_trajectories
from ..data.load import default_tables_json, load_examples
from ..sql.catalog import load_catalog
from ..sql.shape import gold_tables
from .retrieval import DEFAULT_FK_HOPS, DEFAULT_TOP_K, MODES, select_tables

# --------------------------------------------------------------------------- schema-recall stage


def recall_report(rows: list[tuple[set[str], list[str]]]) -> dict[str, Any]:
    """The recall numbers of (gold tables, selected tables) per example.

    ``recall_micro`` is found gold tables / all gold tables; ``recall_macro``
    averages each example's recall; ``full_recall`` is the share of examples
    whose every gold table was selected, ``any_recall`` of those with at least
    one. Examples whose gold SQL names no catalog table (it does not parse, or
    names a table the file lacks) are counted in ``examples_without_gold_tables``
    and left out of the averages.
    """
    scored = [(gold, set(selected)) for gold, selected in rows if gold]
    found = [len(gold & selected) for gold, selected in scored]
    gold_total = sum(len(gold) for gold, _ in scored)
    n = len(scored)
    return {
        "examples": len(rows),
        "examples_without_gold_tables": len(rows) - n,
        "gold_tables": gold_total,
        "recall_micro": sum(found) / gold_total if gold_total else 0.0,
        "recall_macro": sum(f / len(gold) for f, (gold, _) in zip(found, scored)) / n if n else 0.0,
        "full_recall": sum(f == len(gold) for f, (gold, _) in zip(found, scored)) / n if n else 0.0,
        "any_recall": sum(f > 0 for f in found) / n if n else 0.0,
        "avg_tables_selected": sum(len(selected) for _, selected in rows) / len(rows) if rows else 0.0,
    }


def missed_tables(example_id: str, db_id: str, gold_sql: str, gold: set[str], selected: list[str]) -> dict[str, Any]:
    """One per-example row: the gold query and tables, the selected tables and the gold tables missed."""
    return {"id": example_id, "db_id": db_id, "gold_sql": gold_sql, "gold_tables": sorted(gold), "selected": list(selected),
            "missed": sorted(gold - set(selected))}


def schema_recall(
    examples: list[Example],
    mode: str,
    top_k: int = DEFAULT_TOP_K,
    fk_hops: int = DEFAULT_FK_HOPS,
    tables_json: str | os.PathLike | None = None,
    progress: bool = False,
    per_example: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """How many gold tables ``mode`` selects, over ``examples`` (``recall_report``); with
    ``per_example``, a ``missed_tables`` row per example is appended to it."""
    rows = []
    for example in tqdm(examples, desc=f"schema-recall {mode}", file=sys.stderr, disable=not progress):
        catalog = load_catalog(example.db_path, tables_json, example.db_id)
        selected = select_tables(catalog, example.question, mode, top_k, fk_hops)
        gold = gold_tables(example.query, catalog)
        rows.append((gold, list(selected)))
        if per_example is not None:
            per_example.append({**missed_tables(example.id, example.db_id, example.query, gold, selected), "mode": mode})
    return {"mode": mode, "top_k": top_k, "fk_hops": fk_hops, **recall_report(rows)}


def trajectory_recall(folder: str | os.PathLike, per_example: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Gold-table recall of the schemas a finished rollout or eval actually showed the model:
    each trajectory's ``schema_tables`` against its gold query, on the run's own databases."""
    folder = Path(folder)
    try:
        run = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        trajectories = read_trajectories(folder / "trajectories.jsonl")
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{folder}: not a finished rollout or eval folder ({exc}); give the folder holding "
                        "run.json and trajectories.jsonl") from None
    examples = {e.id: e for e in load_examples(run["dataset_path"], run.get("db_root"), run.get("split", "train"))}
    tables_json = run.get("tables_json")
    rows = []
    for trajectory in trajectories:
        example = examples.get(trajectory.id)
        if example is None:
            raise UserError(f"{folder}/trajectories.jsonl: example {trajectory.id!r} is not in "
                            f"{run['dataset_path']} ({run.get('split')}); was the dataset changed after the run?")
        gold = gold_tables(trajectory.gold, load_catalog(example.db_path, tables_json, example.db_id))
        rows.append((gold, list(trajectory.schema_tables)))
        if per_example is not None:
            per_example.append(missed_tables(trajectory.id, trajectory.db_id, trajectory.gold, gold, trajectory.schema_tables))
    return {"trajectories": str(folder), "mode": run.get("schema_mode"), "top_k": run.get("top_k_tables"),
            "fk_hops": run.get("fk_hops"), **recall_report(rows)}


def _at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def make_parser(prog: str = "text2sql-mlops schema-recall") -> argparse.ArgumentParser:
    # The spellings of rollout and train (--schema_mode, --top_k_tables, --tables_json, ...) and this
    # command's first ones (--mode, --top-k, --tables) name the same settings.
    parser = ArgParser(prog=prog, description="Gold-table recall of schema retrieval modes, or of the schemas a "
                       "rollout showed its model; prints one JSON object.")
    source = parser.add_mutually_exclusive_group(required=True)
    flag(source, "dataset", "--dataset_path", "--dataset-path", help="JSON list, JSONL or Spider-layout folder of examples")
    flag(source, "trajectories", help="a finished rollout or eval folder: recall of the schemas its prompts showed")
    flag(parser, "db_root", help="folder holding <db_id>/<db_id>.sqlite (default: <dataset folder>/database)")
    flag(parser, "mode", "--schema_mode", "--schema-mode", nargs="+", choices=list(MODES), default=["bm25_fk"], metavar="MODE",
         help=f"retrieval mode: {', '.join(MODES)}; several modes are compared in one report (default: %(default)s)")
    flag(parser, "top_k", "--top_k_tables", "--top-k-tables", type=_at_least(1), default=DEFAULT_TOP_K,
         help="tables a ranking mode picks (default: %(default)s)")
    flag(parser, "fk_hops", type=_at_least(0), default=DEFAULT_FK_HOPS, help="foreign-key hops for bm25_fk (default: %(default)s)")
    flag(parser, "tables", "--tables_json", "--tables-json", help="Spider tables.json: natural names and extra foreign keys")
    flag(parser, "split", default="train", help="split, when --dataset is a Spider-layout folder (default: %(default)s)")
    flag(parser, "out", type=output_file, help="also write the JSON report to this file (atomically)")
    flag(parser, "per_example", type=output_file, metavar="OUT.jsonl",
         help="one row per example (and mode): gold tables, selected tables, missed tables")
    return parser


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops schema-recall") -> int:
    args = make_parser(prog).parse_args(argv)
    check_outputs((("--out", args.out), ("--per_example", args.per_example)), (args.dataset, args.trajectories, args.db_root, args.tables))
    rows: list[dict[str, Any]] = []
    if args.trajectories:
        report = trajectory_recall(args.trajectories, rows)
        report["config"] = {"trajectories": args.trajectories}
    else:
        examples = load_examples(args.dataset, args.db_root, args.split)
        # tables.json beside the dataset, as rollout, eval, pairs synth and train read it: recall
        # then describes the schemas those commands show.
        args.tables = args.tables or default_tables_json(args.dataset, args.split)
        # A bar only where a run takes long enough to wonder about it.
        reports = {mode: schema_recall(examples, mode, args.top_k, args.fk_hops, args.tables, progress=len(examples) >= 500,
                                       per_example=rows) for mode in dict.fromkeys(args.mode)}
        # One mode: its flat report (the pipeline's metrics file); several: side by side.
        report = next(iter(reports.values())) if len(reports) == 1 else {"modes": reports}
        report["dataset"] = str(args.dataset)
        report["tables_json"] = args.tables
        report["config"] = {"dataset": str(args.dataset), "split": args.split, "db_root": args.db_root, "tables_json": args.tables,
                            "mode": " ".join(reports), "top_k": args.top_k, "fk_hops": args.fk_hops}
    if args.out:
        write_json(args.out, report)
    if args.per_example:
        write_jsonl(args.per_example, rows)
    print(json.dumps(report, indent=2))
    return 0
