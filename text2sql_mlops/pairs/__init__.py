"""``text2sql-mlops pairs``: the preference data engine.

    pairs mine   trajectories -> natural DPO pairs        (mine.py)
    pairs synth  gold SQL -> execution-checked hard negatives (synth.py)
    pairs merge  several pair files -> one filtered, balanced set (merge.py)
    pairs report pair files -> the pair-quality dashboard (report.py)

Each file holds ``records.Pair`` records as JSONL. Mining and merging take
``--eval-dataset`` and refuse pairs from the evaluation set (``split_guard.py``).
"""

from __future__ import annotations

import importlib
import sys

ACTIONS = {
    "mine": ("text2sql_mlops.pairs.mine", "mine natural pairs from rollout trajectories"),
    "synth": ("text2sql_mlops.pairs.synth", "synthetic hard negatives from gold SQL, each checked by execution"),
    "merge": ("text2sql_mlops.pairs.merge", "merge, filter, balance and deduplicate pair files"),
    "report": ("text2sql_mlops.pairs.report", "pair-quality dashboard (JSON, Markdown, HTML with plots)"),
}


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops pairs") -> int:
    from ..errors import UserError

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(f"usage: {prog} <action> [options]\n\nactions:")
        for name, (_, help_) in ACTIONS.items():
            print(f"  {name.ljust(6)}  {help_}")
        return 0
    if argv[0] not in ACTIONS:
        raise UserError(f"unknown action {argv[0]!r} for {prog}; choose one of: {', '.join(ACTIONS)}")
    module = importlib.import_module(ACTIONS[argv[0]][0])
    return int(module.main(argv[1:], prog=f"{prog} {argv[0]}") or 0)
