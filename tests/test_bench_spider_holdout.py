"""bench/spider_holdout.py: the held-out-databases split the Spider profile runs on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "spider_holdout.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_holds_out_whole_databases_and_rewrites_only_its_own_folder(tmp_path: Path):
    """The README puts an import of the official release and this split both at data/spider: run
    over the import, the script rewrote its train_spider.json, dev.json and tables.json."""
    spider = tmp_path / "spider"
    (spider / "database").mkdir(parents=True)
    examples = [{"db_id": db, "question": f"{db} {i}?", "query": "SELECT 1"} for db in ("a", "b", "c") for i in range(2)]
    (spider / "train_spider.json").write_text(json.dumps(examples))
    (spider / "tables.json").write_text("[]")
    out = tmp_path / "split"
    for _ in range(2):  # a rerun rewrites its own folder
        done = run(str(spider), str(out), "--layout", "--databases", "1")
        assert done.returncode == 0, done.stderr
    assert [e["db_id"] for e in json.loads((out / "dev.json").read_text())] == ["c", "c"]
    assert {e["db_id"] for e in json.loads((out / "train_spider.json").read_text())} == {"a", "b"}
    assert (out / "database").is_symlink() and sorted(p.name for p in out.iterdir()) == [
        "database", "dev.json", "tables.json", "train_spider.json"]
    # an imported release (its own database folder, notes): refused, untouched
    imported = tmp_path / "imported"
    (imported / "database").mkdir(parents=True)
    (imported / "dev.json").write_text("official dev")
    done = run(str(spider), str(imported), "--layout")
    assert done.returncode == 1 and "holds files this script did not write (database)" in done.stderr, done.stderr
    assert (imported / "dev.json").read_text() == "official dev" and not (imported / "train_spider.json").exists()
