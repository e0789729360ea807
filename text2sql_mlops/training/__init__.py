"""``text2sql-mlops train``: LoRA post-training with TRL.

    train sft  verified-correct SQL of trajectories (+ chosen answers of pairs) -> adapter  (sft.py)
    train dpo  preference pairs -> adapter, from the base model or an SFT adapter   (dpo.py)

Shared: settings and flags (config.py), the rows and their tokens, identical to
inference's (datasets.py), precision per device (device.py), model loading, TRL
arguments and the atomic output folder (common.py), the log (metrics.py).

Both take ``--eval_dataset`` and refuse training records from the evaluation set
(``split_guard.py``). Several GPUs: ``accelerate launch --config_file
configs/accelerate_ddp.yaml -m text2sql_mlops.cli train sft ...``.
"""

from __future__ import annotations

import importlib
import sys

ACTIONS = {
    "sft": ("text2sql_mlops.training.sft", "LoRA SFT on verified-correct SQL (first-turn and repair prompts) and gold"),
    "dpo": ("text2sql_mlops.training.dpo", "LoRA DPO on preference pairs, optionally continuing an SFT adapter"),
}


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops train") -> int:
    from ..errors import UserError

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(f"usage: {prog} <action> [options]\n\nactions:")
        for name, (_, help_) in ACTIONS.items():
            print(f"  {name.ljust(3)}  {help_}")
        return 0
    if argv[0] not in ACTIONS:
        raise UserError(f"unknown action {argv[0]!r} for {prog}; choose one of: {', '.join(ACTIONS)}")
    module = importlib.import_module(ACTIONS[argv[0]][0])
    return int(module.main(argv[1:], prog=f"{prog} {argv[0]}") or 0)
