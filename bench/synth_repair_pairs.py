"""Synthetic repair-turn DPO pairs: does DPO against copying the failed query teach the repair turn?

    python bench/synth_repair_pairs.py --dataset /tmp/heldout/data --questions 160 --out synth_repair.jsonl

The SFT model answers Column-Minimal feedback by repeating its failed query verbatim (35 of
81 repair turns on the held-out databases, README). A DPO pair whose two answers share a
prefix trains only where they part (the shared tokens' log-ratios cancel in the margin), so
a pair "gold vs. the failed query again" on the repair turn pushes exactly at the edit the
feedback asks for. Each pair here is built from one training question, evenly spaced over
the split: its gold query with one schema mistake (``training/repair_examples.failing_query``:
an invented ``<table>_<column>`` name, a column of a table the query does not join, a join
dropped while its columns stay), rejected by SQLite with an unresolved name; the prompt is
the repair chat a rollout builds for it (the first-turn prompt, that query as the answer, its
strict CM feedback); chosen is the gold, rejected the failing query repeated. Gold-derived:
targets, never predictions. ``heldout_databases.py`` trains DPO on them (its variants
``spread_synth_repair`` and ``synth_repair_only``).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import yaml

from text2sql_mlops.core.errors import UserError
from text2sql_mlops.core.fileio import write_jsonl
from text2sql_mlops.data.load import load_examples
from text2sql_mlops.pairs.build import build_pair
from text2sql_mlops.schema.select import PromptConfig
from text2sql_mlops.scoring.errors import classify_error, observe
from text2sql_mlops.sql.catalog import load_catalog
from text2sql_mlops.sql.sandbox import Sandbox
from text2sql_mlops.training.repair_examples import failing_query, repair_chat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="a Spider-layout folder; its train split is used")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="the schema and eval sections used")
    parser.add_argument("--questions", type=int, default=160, help="training questions, evenly spaced over the split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if not args.params.is_file():
        parser.error(f"--params {args.params}: no such file; run from the project folder or give --params")
    params = yaml.safe_load(args.params.read_text())
    config = PromptConfig(**{**{"sample_rows": 0}, **params["schema"]}).check()
    detail = params["eval"]["feedback_detail"]
    tables = args.dataset / "tables.json"
    examples = load_examples(args.dataset, None, "train")
    picked = [examples[(k * len(examples)) // args.questions] for k in range(min(args.questions, len(examples)))]
    pairs, counts = [], {}
    with Sandbox() as sandbox:
        for example in picked:
            rng = random.Random(f"{args.seed}\x1frepairpair\x1f{example.id}")
            gold = observe(sandbox, example.db_path, example.query)
            if not gold.ok:
                continue
            catalog = load_catalog(example.db_path, tables, example.db_id)
            found = failing_query(example, catalog, sandbox, rng)
            if found is None:
                continue
            family, sql = found
            prompt, execution = repair_chat(example, sql, catalog, gold, sandbox, config, tables, detail, "error_only")
            pair = build_pair(prompt, example.query, sql, config.prompt_style, pair_type=f"synthetic_repair_{family}",
                              source="synthetic", gold_fallback=True, example_id=example.id, db_id=example.db_id,
                              question=example.question, gold_sql=example.query, chosen_reward=1.0, rejected_reward=-0.2,
                              turn=2, chosen_executable=True, rejected_executable=False,
                              rejected_error_type=classify_error(execution.error))
            pairs.append(pair.to_dict())
            counts[family] = counts.get(family, 0) + 1
    write_jsonl(args.out, pairs)
    print(json.dumps({"questions": len(picked), "pairs": len(pairs), "families": counts}))


if __name__ == "__main__":
    try:
        main()
    except UserError as exc:
        raise SystemExit(f"synth_repair_pairs: {exc}") from None
