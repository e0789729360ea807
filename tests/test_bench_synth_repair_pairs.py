"""bench/synth_repair_pairs.py: repair-turn DPO pairs whose rejected answer repeats the failing query."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from text2sql_mlops.core.records import read_pairs
from text2sql_mlops.prompts import extract_sql, format_answer
from text2sql_mlops.scoring.errors import unresolved_name
from text2sql_mlops.sql.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]


def test_pairs_repeat_the_failing_query_of_a_real_repair_chat_and_choose_the_gold(demo_dataset, tmp_path):
    out = tmp_path / "synth_repair.jsonl"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "synth_repair_pairs.py"), "--dataset", str(demo_dataset),
                           "--params", str(ROOT / "params.yaml"), "--questions", "12", "--out", str(out)],
                          capture_output=True, text=True, check=True, cwd=tmp_path)
    report = json.loads(done.stdout)
    pairs = read_pairs(out)
    assert report["questions"] == 12 and len(pairs) == report["pairs"] >= 8
    train = {e["question"]: e for e in json.loads((demo_dataset / "train_spider.json").read_text())}
    with Sandbox() as sandbox:
        for pair in pairs:
            system, question, failed, feedback = pair.prompt
            assert [m["role"] for m in pair.prompt] == ["system", "user", "assistant", "user"]
            assert pair.meta["turn"] == 2 and pair.meta["pair_type"].startswith("synthetic_repair_")
            gold = train[pair.meta["question"]]  # training questions only
            assert pair.chosen == format_answer(gold["query"]) and pair.meta["gold_fallback"]
            # rejected is the repair turn's copy: exactly the failing answer the chat shows
            assert pair.rejected == failed["content"]
            result = sandbox.execute(demo_dataset / "database" / gold["db_id"] / f"{gold['db_id']}.sqlite",
                                     extract_sql(pair.rejected))
            assert not result.ok and unresolved_name(result.error) is not None
            assert feedback["content"].startswith(f"The query failed with an error: {result.error}")
    again = tmp_path / "again.jsonl"
    subprocess.run([sys.executable, str(ROOT / "bench" / "synth_repair_pairs.py"), "--dataset", str(demo_dataset),
                    "--params", str(ROOT / "params.yaml"), "--questions", "12", "--out", str(again)], check=True,
                   capture_output=True, cwd=tmp_path)
    assert again.read_bytes() == out.read_bytes()  # seeded: the same pairs on rerun
