"""``text2sql-mlops pairs``: the preference data engine.

    pairs mine   trajectories -> natural DPO pairs        (mine.py)
    pairs synth  gold SQL -> execution-checked hard negatives (synth.py)
    pairs merge  several pair files -> one filtered, balanced set (merge.py)
    pairs report pair files -> the pair-quality dashboard (report.py)

Each file holds ``core/records.py``'s ``Pair`` records as JSONL. Mining and merging take
``--eval-dataset`` and refuse pairs from the evaluation set (``data/guard.py``).
"""

from __future__ import annotations

from ..core.cliutil import run_action

ACTIONS = {
    "mine": ("text2sql_mlops.pairs.mine", "mine natural pairs from rollout trajectories"),
    "synth": ("text2sql_mlops.pairs.synth", "synthetic hard negatives from gold SQL, each checked by execution"),
    "merge": ("text2sql_mlops.pairs.merge", "merge, filter, balance and deduplicate pair files"),
    "report": ("text2sql_mlops.pairs.report", "pair-quality dashboard (JSON, Markdown, HTML with plots)"),
}


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops pairs") -> int:
    return run_action(ACTIONS, argv, prog)
