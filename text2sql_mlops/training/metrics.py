"""The training log: one metrics.jsonl row and one console line per logging step."""

from __future__ import annotations

import math
import sys
import time

from transformers import TrainerCallback

from ..core.errors import UserError

# Shown on the console when present (SFT: loss and token accuracy; DPO adds the rewards).
CONSOLE = (("loss", "loss {:.4f}"), ("mean_token_accuracy", "token_acc {:.3f}"), ("rewards/accuracies", "reward_acc {:.3f}"),
           ("rewards/margins", "margin {:.4f}"), ("learning_rate", "lr {:.2e}"))


class MetricsLog(TrainerCallback):
    """Collects every log of the main process with its step, epoch and steps/s since the
    previous log; the last step is always logged, so the final loss is never lost."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.rows: list[dict] = []
        self._last = (0, time.perf_counter())

    def on_train_begin(self, args, state, control, **kwargs):
        self._last = (state.global_step, time.perf_counter())

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            control.should_log = True

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "train_runtime" in logs:  # the run's closing totals
            return
        now = time.perf_counter()
        steps, since = state.global_step - self._last[0], now - self._last[1]
        self._last = (state.global_step, now)
        row = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4)}
        row.update({key: value for key, value in logs.items() if isinstance(value, (int, float))})
        row["steps_per_s"] = round(steps / since, 4) if since > 0 else None
        self.rows.append(row)
        shown = [fmt.format(row[key]) for key, fmt in CONSOLE if row.get(key) is not None]
        print(f"train {self.method}: step {state.global_step}/{state.max_steps} epoch {row['epoch']:.2f} "
              + " ".join(shown) + f" {row['steps_per_s'] or 0:.3f} steps/s", file=sys.stderr, flush=True)
        diverged = [key for key in ("loss", "grad_norm") if isinstance(row.get(key), float) and not math.isfinite(row[key])]
        if diverged:
            # The weights are NaN/inf from here on: the adapter would evaluate as garbage, and its
            # metrics.jsonl held NaN, which no JSON reader but Python's takes (`track` refuses it).
            raise UserError(f"train {self.method}: {diverged[0]} is {row[diverged[0]]} at step {state.global_step} (learning rate "
                            f"{row.get('learning_rate', args.learning_rate):.2e}): the training diverged; lower --learning_rate "
                            "or add warm-up (--warmup_steps); nothing was written")
