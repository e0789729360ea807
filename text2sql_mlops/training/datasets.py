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

from ..errors import UserError
from ..generation.chat import encode, render_completion, render_prompt
from ..prompts import format_answer

Messages = list[dict[str, str]]


def read_pairs(paths: list[str]) -> list[dict[str, Any]]:
    """Every pair record of ``paths`` (JSONL of ``records.Pair``), checked for the fields training reads."""
    from ..fileio import read_jsonl

    from pathlib import Path

    pairs = []
    for path in paths:
        if not Path(path).is_file():
            raise UserError(f"pairs file not found: {path}")
        for lineno, record in enumerate(read_jsonl(path), start=1):
            if not (_is_chat(record.get("prompt")) and isinstance(record.get("chosen"), str) and isinstance(record.get("rejected"), str)):
                raise UserError(f"{path}: record {lineno} is not a pair (needs prompt: chat messages, chosen and rejected: text); "
                                "give a file written by `pairs mine|synth|merge`")
            pairs.append(record)
    return pairs


def _is_chat(messages: Any) -> bool:
    return isinstance(messages, list) and bool(messages) and all(isinstance(m, dict) and "role" in m and "content" in m for m in messages)


def sft_targets(trajectories: list[dict], pairs: list[dict]) -> tuple[list[tuple[Messages, str]], dict[str, int]]:
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
        for turn in trajectory["turns"]:
            for candidate in turn["candidates"]:
                if candidate.get("correct") and (candidate.get("sql") or "").strip():
                    add(turn["messages"], format_answer(candidate["sql"]), "correct_candidates")
        if trajectory.get("gold_error") is None and (trajectory.get("gold") or "").strip():
            add(trajectory["turns"][0]["messages"], format_answer(trajectory["gold"]), "gold")
    for pair in pairs:
        add(pair["prompt"], pair["chosen"], "pair_chosen")
    return targets, {key: counts[key] for key in ("correct_candidates", "gold", "pair_chosen", "duplicates_removed")}


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


def dpo_rows(tokenizer: Any, pairs: list[dict], max_length: int) -> tuple[list[dict], int]:
    """TRL's tokenized preference rows (``prompt_ids``, ``chosen_ids``, ``rejected_ids``) and how
    many pairs were left out because prompt + the longer answer exceeds ``max_length``."""
    rows, too_long = [], 0
    for pair in pairs:
        prompt = prompt_ids(tokenizer, pair["prompt"])
        chosen, rejected = answer_ids(tokenizer, pair["chosen"]), answer_ids(tokenizer, pair["rejected"])
        if len(prompt) + max(len(chosen), len(rejected)) > max_length:
            too_long += 1
            continue
        rows.append({"prompt_ids": prompt, "chosen_ids": chosen, "rejected_ids": rejected})
    return rows, too_long
