"""``text2sql-mlops train``: LoRA post-training with TRL.

    train sft  verified-correct SQL of trajectories (+ chosen answers of pairs) -> adapter  (sft.py)
    train dpo  preference pairs -> adapter, from the base model or an SFT adapter   (dpo.py)

Shared: settings and flags (config.py), the rows and their tokens, identical to
inference's (datasets.py), precision per device (device.py), a batch's shared prompt
prefix read once (prefixes.py), model loading, TRL arguments and the atomic output
folder (common.py), the log (metrics.py).

Both take ``--eval_dataset`` and refuse training records from the evaluation set
(``data/guard.py``). Several GPUs: ``accelerate launch --config_file
configs/accelerate_ddp.yaml -m text2sql_mlops.cli train sft ...``.
"""

from __future__ import annotations

from ..core.cliutil import run_action

ACTIONS = {
    "sft": ("text2sql_mlops.training.sft", "LoRA SFT on verified-correct SQL (first-turn and repair prompts) and gold"),
    "dpo": ("text2sql_mlops.training.dpo", "LoRA DPO on preference pairs, optionally continuing an SFT adapter"),
}


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops train") -> int:
    return run_action(ACTIONS, argv, prog)
