"""Training rows from trajectories and pairs, in exactly the tokens inference uses.

SFT targets are execution-verified SQL only:

* every candidate with ``correct: true``, with the prompt of the turn it answered:
  first-turn prompts and repair prompts (history + feedback) alike, so the model
  also learns to repair;
* the gold SQL of each trajectory whose gold runs (``gold_error`` null), with the
  first-turn prompt;
* with ``--pairs``, the chosen answer of each pair with its prompt;

deduplicated on (prompt, answer), first occurrence kept. DPO rows are the pairs.

Text is rendered by the functions inference uses (``generation/chat.py``): the
prompt by ``render_prompt`` (the chat template up to the assistant's turn), the
answer by ``render_completion`` (``format_answer`` text + EOS). Tokens come from
``encode`` on the prompt and the answer separately: the prompt ids are the ids the
hf generator feeds the model, and the answer ids are the tokens it must generate
after them. TRL gets these ids, not text: its text path tokenizes with the
tokenizer's special tokens on (a second BOS after the template's own on
Llama-3-style tokenizers) and re-cuts prompt and answer where their joint
tokenization diverges. No torch here.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from ..core.records import Pair, Trajectory
from ..generation.chat import encode, render_completion, render_prompt
from ..prompts import build_messages, format_answer
from ..schema.select import prompt_schema
from ..sql.sandbox import Sandbox

Messages = list[dict[str, str]]


def dataset_targets(examples: list, prompt_config, tables_json: str | None) -> tuple[list[tuple[Messages, str]], int]:
    """(first-turn prompt, gold answer) of every example whose gold SQL runs, built by the same
    functions as a rollout's first turn; and how many were left out because their gold fails."""
    targets, bad_gold = [], 0
    with Sandbox() as sandbox:
        for example in examples:
            if not example.query.strip() or sandbox.execute(example.db_path, example.query).error is not None:
                bad_gold += 1  # a failing gold is no target (the rollout marks it gold_error)
                continue
            schema = prompt_schema(example.db_path, example.question, prompt_config, tables_json, example.db_id)
            style = prompt_config.prompt_style
            targets.append((build_messages(schema.text, example.question, style=style), format_answer(example.query, style)))
    return targets, bad_gold


def sft_targets(trajectories: list[Trajectory], pairs: list[Pair], gold: list[tuple[Messages, str]] = (),
                repairs: list[tuple[Messages, str]] = ()) -> tuple[list[tuple[Messages, str]], dict[str, int]]:
    """(prompt messages, answer text) of every SFT target, and how many came from where."""
    targets: list[tuple[Messages, str]] = []
    seen: set[tuple[str, str]] = set()
    counts: Counter[str] = Counter()

    def add(messages: Messages, answer: str, source: str) -> None:
        key = (json.dumps(messages, ensure_ascii=False, sort_keys=True), answer)
        if key in seen:
            counts["duplicates_removed"] += 1
            return
        seen.add(key)
        targets.append((messages, answer))
        counts[source] += 1

    for trajectory in trajectories:
        for turn in trajectory.turns:
            for candidate in turn.candidates:
                if candidate.correct and candidate.sql.strip():
                    add(turn.messages, format_answer(candidate.sql, trajectory.prompt_style), "correct_candidates")
        if trajectory.gold_error is None and trajectory.gold.strip():
            add(trajectory.first.messages, format_answer(trajectory.gold, trajectory.prompt_style), "gold")
    for pair in pairs:
        add(pair.prompt, pair.chosen, "pair_chosen")
    for messages, answer in gold:
        add(messages, answer, "dataset_gold")
    for messages, answer in repairs:
        add(messages, answer, "dataset_repair")
    keys = ("correct_candidates", "gold", "pair_chosen", "dataset_gold", "dataset_repair", "duplicates_removed")
    return targets, {key: counts[key] for key in keys}


def prompt_ids(tokenizer: Any, messages: Messages) -> list[int]:
    """The prompt tokens, as the hf generator computes them."""
    return encode(tokenizer, render_prompt(tokenizer, messages))


def answer_ids(tokenizer: Any, answer: str) -> list[int]:
    """The answer tokens the model must generate after the prompt, EOS included."""
    return encode(tokenizer, render_completion(tokenizer, answer))


def sft_rows(tokenizer: Any, targets: list[tuple[Messages, str]], max_length: int) -> tuple[list[dict], int]:
    """TRL's pre-tokenized prompt-completion rows (``input_ids``, ``completion_mask``) and how
    many targets were left out for being longer than ``max_length``."""
    rows, too_long = [], 0
    for messages, answer in targets:
        prompt, completion = prompt_ids(tokenizer, messages), answer_ids(tokenizer, answer)
        if len(prompt) + len(completion) > max_length:
            too_long += 1
            continue
        rows.append({"input_ids": prompt + completion, "completion_mask": [0] * len(prompt) + [1] * len(completion)})
    return rows, too_long


def dpo_rows(tokenizer: Any, pairs: list[Pair], max_length: int, max_prompt_length: int | None = None) -> tuple[list[dict], int]:
    """TRL's tokenized preference rows (``prompt_ids``, ``chosen_ids``, ``rejected_ids``) and how
    many pairs were left out because prompt + the longer answer exceeds ``max_length``."""
    rows, too_long = [], 0
    for pair in pairs:
        prompt = prompt_ids(tokenizer, pair.prompt)
        chosen, rejected = answer_ids(tokenizer, pair.chosen), answer_ids(tokenizer, pair.rejected)
        if len(prompt) + max(len(chosen), len(rejected)) > max_length or (max_prompt_length and len(prompt) > max_prompt_length):
            too_long += 1
            continue
        rows.append({"prompt_ids": prompt, "chosen_ids": chosen, "rejected_ids": rejected})
    return rows, too_long
