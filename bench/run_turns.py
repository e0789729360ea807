"""What the replay benches share: which finished run and turn to replay, and its prompts.

``bench_decoding.py`` and ``bench_repair_prefill.py`` both send one turn's prompts of a
finished rollout or eval (its run.json and trajectories.jsonl) to the hf backend again.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from text2sql_mlops.core.records import read_trajectories
from text2sql_mlops.generation import GenerationRequest, SamplingParams


def add_run_arguments(parser: argparse.ArgumentParser, turn: int) -> None:
    parser.add_argument("--run", required=True, help="a finished eval or rollout folder (trajectories.jsonl, run.json)")
    parser.add_argument("--model", required=True, help="the base model folder")
    parser.add_argument("--trained_model", default=None,
                        help="the fully fine-tuned model folder the run used (e.g. outputs/train/sft), instead of --model")
    parser.add_argument("--turn", type=int, default=turn, help="which turn's prompts to replay (1-based)")
    parser.add_argument("--repeats", type=int, default=2)


def turn_requests(run: Path, turn: int) -> tuple[dict, list[GenerationRequest]]:
    """The run's settings (run.json) and the prompts of its ``turn`` (1-based), one per trajectory that reached it."""
    config = json.loads((run / "run.json").read_text())
    trajectories = read_trajectories(run / "trajectories.jsonl")
    return config, [GenerationRequest(messages=t.turns[turn - 1].messages) for t in trajectories if len(t.turns) >= turn]


def sampling_params(config: dict) -> SamplingParams:
    """The sampling settings a finished run (its run.json) generated with."""
    return SamplingParams(num_samples=int(config["num_samples"]), temperature=float(config["temperature"]),
                          top_p=float(config["top_p"]), max_new_tokens=int(config["max_new_tokens"]), seed=int(config["seed"]))
