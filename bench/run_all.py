"""`make bench`: run every benchmark whose inputs are present, and say why others are skipped.

Benchmarks measure; tests check. Each script also runs on its own with --help.
Inputs: ../shared/spider-train (the project's machines), a prepared model folder
(`text2sql-mlops model prepare`), and for the scorer comparison a checkout of
the official Spider evaluator named by OFFICIAL_EVAL=/path/to/test-suite-sql-eval.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SPIDER = REPO.parent / "shared" / "spider-train"
MODEL = REPO / "models" / "smollm2-135m-instruct"
DEMO = REPO / "data" / "demo"
BASE_EVAL = REPO / "outputs" / "eval" / "base" / "dev"


def plan() -> list[tuple[str, list[str] | None, str]]:
    """(name, argv or None when skipped, reason)."""
    official = os.environ.get("OFFICIAL_EVAL")
    have_spider = (SPIDER / "train_spider.json").is_file()
    return [
        ("sandbox", ["bench_sandbox.py"] if have_spider else None, f"needs {SPIDER}"),
        ("scoring", ["bench_scoring.py", "--official", official] if have_spider and official else None,
         "needs OFFICIAL_EVAL=<checkout of the official evaluator> and the Spider train split"),
        ("generation", ["bench_generation.py", "--model", str(MODEL)] if have_spider and MODEL.is_dir() else None,
         f"needs {MODEL} (`text2sql-mlops model prepare`) and the Spider train split"),
        ("training", ["bench_training.py", "--model", str(MODEL)] if MODEL.is_dir() else None,
         f"needs {MODEL} (`text2sql-mlops model prepare`)"),
        ("recipe", ["bench_recipe.py", "--model", str(MODEL), "--dataset", str(DEMO)] if MODEL.is_dir() and DEMO.is_dir() else None,
         f"needs {MODEL} and {DEMO} (`dvc pull data.dvc`)"),
        ("prefix sharing", ["bench_prefix_sharing.py", "--model", str(MODEL), "--dataset", str(DEMO)]
         if MODEL.is_dir() and DEMO.is_dir() else None, f"needs {MODEL} and {DEMO} (`dvc pull data.dvc`)"),
        ("prompt tokens", ["prompt_tokens.py", "--model", str(MODEL), "--dataset", str(DEMO), "--split", "train",
                           *(["--dataset", str(SPIDER), "--split", "train", "--limit", "1000"] if have_spider else [])]
         if MODEL.is_dir() and DEMO.is_dir() else None, f"needs {MODEL} and {DEMO}"),
        ("repair prefill", ["bench_repair_prefill.py", "--run", str(BASE_EVAL), "--model", str(MODEL), "--repeats", "1"]
         if MODEL.is_dir() and (BASE_EVAL / "trajectories.jsonl").is_file() else None,
         f"needs {MODEL} and a finished `make repro` ({BASE_EVAL})"),
    ]
    # Longer measurement scripts, run by hand (they take tens of minutes on 2 cores):
    #   python bench/official_agreement.py --official $OFFICIAL_EVAL   our verdicts vs exec_eval, case by case
    #   bash bench/smollm2_rollouts.sh   SmolLM2 one-shot and 3-turn repair on 200 Spider train questions
    #   bash bench/pairs_spider.sh       the preference data engine on 1000 Spider train questions
    #   bash bench/train_spider.sh       SFT -> DPO of SmolLM2, EX before/after on held-out databases
    #   python bench/heldout_databases.py --work /tmp/heldout
    #                                    the post-SFT recipe (DPO, repair SFT) chosen on held-out training databases


def main() -> int:
    failed = 0
    for name, argv, reason in plan():
        if argv is None:
            print(f"== {name}: skipped ({reason})", flush=True)
            continue
        print(f"== {name}: {' '.join(argv)}", flush=True)
        failed += subprocess.call([sys.executable, str(BENCH / argv[0]), *argv[1:]], cwd=REPO) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
