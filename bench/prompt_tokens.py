"""Tokens per first-turn prompt for each schema format, with and without sample values.

    python bench/prompt_tokens.py --model models/smollm2-135m-instruct \
        --dataset data/demo --split train --dataset ../shared/spider-train --split train --limit 1000

Prompts are built exactly as rollouts, pair mining and training build them (``prompts.prompt_schema``
+ ``build_messages`` + the model's chat template), with the pipeline's retrieval (bm25_fk, top 6,
1 hop). Prints a Markdown table and writes JSON with --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

SETTINGS = [("create_table", 0), ("compact", 0), ("seed", 0), ("create_table", 3), ("compact", 3), ("seed", 3)]


def measure(dataset: str, split: str, limit: int | None, tokenizer) -> list[dict]:
    from text2sql_mlops.data.load import default_tables_json, load_examples
    from text2sql_mlops.generation.chat import render_prompt
    from text2sql_mlops.prompts import build_messages
    from text2sql_mlops.schema.select import PromptConfig, prompt_schema

    examples = load_examples(dataset, None, split)[:limit]
    tables_json = default_tables_json(dataset)
    rows = []
    for schema_format, sample_values in SETTINGS:
        config = PromptConfig(schema_format=schema_format, sample_values=sample_values)
        started = time.perf_counter()
        counts = []
        for example in examples:
            schema = prompt_schema(example.db_path, example.question, config, tables_json, example.db_id)
            text = render_prompt(tokenizer, build_messages(schema.text, example.question))
            counts.append(len(tokenizer(text, add_special_tokens=False)["input_ids"]))
        counts.sort()
        rows.append({"dataset": f"{dataset} ({split})", "examples": len(counts), "schema_format": schema_format,
                     "sample_values": sample_values, "mean": round(statistics.fmean(counts), 1),
                     "median": statistics.median(counts), "p95": counts[int(0.95 * (len(counts) - 1))], "max": counts[-1],
                     "seconds": round(time.perf_counter() - started, 2)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model folder whose tokenizer and chat template count")
    parser.add_argument("--dataset", action="append", required=True, help="dataset (repeatable)")
    parser.add_argument("--split", action="append", help="split per --dataset (default: train)")
    parser.add_argument("--limit", type=int, help="first N examples of each dataset")
    parser.add_argument("--out", help="also write the rows as JSON here")
    args = parser.parse_args()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    splits = args.split or []
    rows = []
    for index, dataset in enumerate(args.dataset):
        rows += measure(dataset, splits[index] if index < len(splits) else "train", args.limit, tokenizer)
    print("| dataset | format | sample values | mean | median | p95 | max |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['dataset']} | {row['schema_format']} | {row['sample_values']} | {row['mean']} | {row['median']} "
              f"| {row['p95']} | {row['max']} |")
    if args.out:
        Path(args.out).write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "rows": rows}, indent=2) + "\n")
    print(f"({sum(r['seconds'] for r in rows):.1f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
