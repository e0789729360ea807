"""Seconds per TRL training step against a plain LoRA loop on the same model and batch.

    python bench/bench_training.py [--model models/smollm2-135m-instruct] [--methods sft dpo]
                                   [--batch 8] [--steps 2] [--threads N] [--out FILE]

Builds ``--batch`` short Spider-style examples (a one-table schema, a question, a short
SQL answer) and, for each method, times:

* TRL: the optimizer steps of the trainer ``train sft`` / ``train dpo`` builds (same
  settings, device defaults: fp32 and no gradient checkpointing on CPU), measured
  between the Trainer's step callbacks;
* plain: right after each TRL step, one step of a hand-written loop on the same peft
  model and the same collated batch: forward + backward + AdamW (SFT: the model's own
  loss on the answer tokens; DPO: a reference forward with the adapter disabled, a
  policy forward on chosen+rejected, the sigmoid DPO loss);

drops the first (warm-up) step of each and prints the median seconds per step and the
ratio TRL / plain (target: at most 1.5). Interleaving puts both under the same load
when other processes share the CPU; ``--threads 1`` is steadier still, and the load
average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from transformers import AutoTokenizer, PrinterCallback, TrainerCallback  # noqa: E402

from text2sql_mlops.prompts import build_messages, format_answer  # noqa: E402
from text2sql_mlops.training import dpo, sft  # noqa: E402
from text2sql_mlops.training.common import quiet_libraries  # noqa: E402
from text2sql_mlops.training.config import DPOSettings, SFTSettings  # noqa: E402
from text2sql_mlops.training.datasets import dpo_rows, sft_rows  # noqa: E402
from text2sql_mlops.training.device import resolve_runtime  # noqa: E402

SCHEMA = "CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, country TEXT, age INTEGER, is_male TEXT)"
EXAMPLES = [
    ("How many singers are there?", "SELECT count(*) FROM singer", "SELECT count(*) FROM concert"),
    ("List the names of singers from France.", "SELECT name FROM singer WHERE country = 'France'", "SELECT name FROM singer"),
    ("What is the average age of all singers?", "SELECT avg(age) FROM singer", "SELECT max(age) FROM singer"),
    ("Show the name of the oldest singer.", "SELECT name FROM singer ORDER BY age DESC LIMIT 1", "SELECT name FROM singer ORDER BY age LIMIT 1"),
    ("How many male singers are there?", "SELECT count(*) FROM singer WHERE is_male = 'T'", "SELECT count(*) FROM singer WHERE is_male = 'F'"),
    ("List all distinct countries of singers.", "SELECT DISTINCT country FROM singer", "SELECT country FROM singer"),
    ("What is the maximum age of singers from France?", "SELECT max(age) FROM singer WHERE country = 'France'", "SELECT max(age) FROM singer"),
    ("Show names of singers younger than 30.", "SELECT name FROM singer WHERE age < 30", "SELECT name FROM singer WHERE age > 30"),
]


class Interleaved(TrainerCallback):
    """Times each TRL optimizer step (between the Trainer's step callbacks), then runs and
    times one plain step right after it, so both see the same load on a shared machine."""

    def __init__(self, plain_step):
        self.plain_step = plain_step
        self.trl: list[float] = []
        self.plain: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.trl.append(time.perf_counter() - self.started)
        started = time.perf_counter()
        self.plain_step()
        self.plain.append(time.perf_counter() - started)


def plain_step(method: str, trainer, rows: list[dict], beta: float = 0.1):
    """One hand-written step on the trainer's peft model and the same (collated) batch:
    forward, backward, AdamW. SFT: the model's own loss on the answer tokens. DPO: a
    reference forward with the adapter disabled, a policy forward, the sigmoid loss."""
    model = trainer.model
    batch = {key: value.to(model.device) for key, value in trainer.data_collator(rows).items() if torch.is_tensor(value)}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    def sequence_logps(logits, ids, mask):  # sum of answer-token log-probs per row
        logps = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
        return (logps * mask[:, 1:]).sum(-1)

    def step():
        if method == "sft":
            loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
        else:
            ids, attention, answer = batch["input_ids"], batch["attention_mask"], batch["completion_mask"]
            with torch.no_grad(), model.disable_adapter():
                reference = sequence_logps(model(input_ids=ids, attention_mask=attention).logits, ids, answer)
            policy = sequence_logps(model(input_ids=ids, attention_mask=attention).logits, ids, answer)
            (policy_chosen, policy_rejected), (ref_chosen, ref_rejected) = policy.chunk(2), reference.chunk(2)
            loss = -F.logsigmoid(beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def measure(method: str, model: str, batch: int, steps: int, rows: list[dict], tokenizer, workdir: str) -> tuple[list[float], list[float]]:
    """Seconds per step of TRL and of the plain loop, the first (warm-up) step of each dropped."""
    module, settings_cls = (sft, SFTSettings) if method == "sft" else (dpo, DPOSettings)
    settings = settings_cls(model=model, out=workdir, max_steps=steps + 1, per_device_train_batch_size=batch, logging_steps=1000, max_length=1024)
    trainer = module.build_trainer(settings, rows, tokenizer, resolve_runtime(None, None), workdir)
    timer = Interleaved(plain_step(method, trainer, rows))
    trainer.add_callback(timer)
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return timer.trl[1:], timer.plain[1:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(REPO / "models" / "smollm2-135m-instruct"))
    parser.add_argument("--methods", nargs="+", default=["sft", "dpo"], choices=["sft", "dpo"])
    parser.add_argument("--batch", type=int, default=8, help="examples (SFT) or pairs (DPO) per step (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=2, help="timed steps of each, after one warm-up step (default: %(default)s)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args()
    if not (Path(args.model) / "config.json").is_file():
        sys.exit(f"error: no model at {args.model}; prepare one with `text2sql-mlops model prepare --out {args.model}`")

    if args.threads:
        torch.set_num_threads(args.threads)
    quiet_libraries()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    examples = [EXAMPLES[i % len(EXAMPLES)] for i in range(args.batch)]
    messages = [build_messages(SCHEMA, question) for question, _, _ in examples]
    data = {
        "sft": sft_rows(tokenizer, [(m, format_answer(good)) for m, (_, good, _) in zip(messages, examples)], 1024)[0],
        "dpo": dpo_rows(tokenizer, [{"prompt": m, "chosen": format_answer(good), "rejected": format_answer(bad)} for m, (_, good, bad) in zip(messages, examples)], 1024)[0],
    }
    results = {"model": args.model, "batch": args.batch, "steps": args.steps, "threads": torch.get_num_threads(),
               "device": "cuda" if torch.cuda.is_available() else "cpu", "load_average_before": os.getloadavg()}
    print(f"model {args.model}, batch {args.batch}, {args.steps} timed steps, {results['threads']} threads, "
          f"load average {results['load_average_before'][0]:.2f}", file=sys.stderr)
    for method in args.methods:
        with tempfile.TemporaryDirectory() as workdir:
            trl, plain = measure(method, args.model, args.batch, args.steps, data[method], tokenizer, workdir)
        ratio = statistics.median(trl) / statistics.median(plain)
        results[method] = {"trl_s_per_step": [round(s, 3) for s in trl], "plain_s_per_step": [round(s, 3) for s in plain], "ratio": round(ratio, 3)}
        print(f"{method}: TRL {statistics.median(trl):.2f} s/step, plain {statistics.median(plain):.2f} s/step, ratio {ratio:.2f}"
              f" (target <= 1.5)", file=sys.stderr)
    results["load_average_after"] = os.getloadavg()
    print(json.dumps(results))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
