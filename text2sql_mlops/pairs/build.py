"""Pair records made from SQL: mined and synthetic pairs (``build_pair``), and the reference
project's ``dpo_pairs.json`` converted (``read_reference_pairs``).

A pair's answers are written in the exact format the model is asked to produce
(``prompts.format_answer``), and read back with ``prompts.extract_sql``, so training and
inference agree; the record itself and its one check are ``core/records.py``.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..core.records import SYNTHETIC_PREFIX, Pair, finite_number, nonempty_str, pair_id, read_pairs
from ..prompts import extract_sql, format_answer


def build_pair(prompt: list[dict[str, str]], chosen_sql: str, rejected_sql: str, style: str = "chat", **meta: Any) -> Pair:
    """A pair from two SQL strings; fills the answer texts (in the prompt's ``style``), chosen/rejected
    SQL, margin and id. ``meta`` gives the other keys of ``records.PAIR_META_CHECKS``, in the order they are written."""
    chosen, rejected = format_answer(chosen_sql, style), format_answer(rejected_sql, style)
    meta = {"chosen_sql": chosen_sql, "rejected_sql": rejected_sql, **meta}
    meta["reward_margin"] = round(meta["chosen_reward"] - meta["rejected_reward"], 10)
    return Pair(id=pair_id(prompt, chosen, rejected), prompt=prompt, chosen=chosen, rejected=rejected, meta=meta)


# The reference project's dpo_pairs.json: a JSON list of {prompt, chosen, rejected, ...} with a
# plain-string prompt. Fields our records need that such a record may lack, and what they get.
REFERENCE_PAIR_DEFAULTS: dict[str, Any] = {
    "pair_type": "reference_pair", "chosen_reward": 1.0, "rejected_reward": 0.0, "turn": 1,
    "chosen_executable": True, "rejected_executable": False, "rejected_error_type": None,
    "example_id": "", "db_id": "", "question": "", "gold_sql": "",
}
_REFERENCE_ALIASES = {"example_id": ("example_id", "id", "qid"), "gold_sql": ("gold_sql", "gold", "query"),
                      "db_id": ("db_id",), "question": ("question",)}


def pair_from_reference(record: Any, where: str) -> tuple[Pair, list[str]]:
    """One reference ``dpo_pairs.json`` record as a ``Pair``, and the meta fields it lacked
    (filled from ``REFERENCE_PAIR_DEFAULTS``). The prompt string becomes one user message and the
    answers stay exactly as written (they are the reference model's training targets)."""
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a pair object, got {type(record).__name__}")
    for key in ("prompt", "chosen", "rejected"):
        if not nonempty_str(record.get(key)):
            raise UserError(f"{where}: a reference pair needs a non-empty string {key!r}; dpo_pairs.json records hold "
                            "prompt, chosen and rejected texts")
    meta: dict[str, Any] = {}
    missing = []
    for key, default in REFERENCE_PAIR_DEFAULTS.items():
        found = next((record[name] for name in _REFERENCE_ALIASES.get(key, (key,)) if record.get(name) is not None), None)
        if found is None and not (key == "rejected_error_type" and key in record):  # null there: the rejected side is correct
            missing.append(key)
            found = default
        meta[key] = str(found) if key in _REFERENCE_ALIASES else found
    source = record.get("source")
    meta["source"] = source if source in ("natural", "synthetic") else (
        "synthetic" if str(meta["pair_type"]).startswith(SYNTHETIC_PREFIX) else "natural")
    meta["gold_fallback"] = bool(record.get("gold_fallback", meta["source"] == "synthetic"))
    # read off the pair type when the record does not say: assumed too
    missing += [key for key, given in (("source", source in ("natural", "synthetic")),
                                        ("gold_fallback", "gold_fallback" in record)) if not given]
    meta["chosen_sql"], meta["rejected_sql"] = extract_sql(record["chosen"]), extract_sql(record["rejected"])
    margin = meta["chosen_reward"] - meta["rejected_reward"] if all(
        finite_number(meta[k]) for k in ("chosen_reward", "rejected_reward")) else math.nan
    meta["reward_margin"] = round(margin, 10)
    meta["converted_from"] = "reference dpo_pairs.json"
    meta["assumed"] = missing
    prompt = [{"role": "user", "content": record["prompt"]}]
    converted = {"id": pair_id(prompt, record["chosen"], record["rejected"]), "prompt": prompt,
                 "chosen": record["chosen"], "rejected": record["rejected"], "meta": meta}
    return Pair.from_dict(converted, where), missing


def read_reference_pairs(path: str | os.PathLike) -> tuple[list[Pair], Counter]:
    """Every record of a reference ``dpo_pairs.json`` (a JSON list) as a ``Pair``, and how many
    records lacked each field."""
    try:
        records = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: invalid JSON ({exc.msg}, line {exc.lineno}); a reference dpo_pairs.json is one JSON list") from None
    if not isinstance(records, list):
        raise UserError(f"{path}: expected a JSON list of pairs, got {type(records).__name__}")
    converted, lacked = [], Counter()
    for index, record in enumerate(records):
        pair, missing = pair_from_reference(record, f"{path}[{index}]")
        converted.append(pair)
        lacked.update(missing)
    return converted, lacked


def read_pair_file(path: str, command: str) -> list[Pair]:
    """Every pair of a pair file (``records.read_pairs``), or of a JSON list, the reference
    project's ``dpo_pairs.json``: converted, with a note on stderr of the fields it lacked."""
    if Path(path).is_file():
        with open(path, encoding="utf-8", errors="replace") as handle:
            first = handle.read(4096).lstrip()[:1]
    if not Path(path).is_file() or first != "[":
        return read_pairs(path)
    pairs, lacked = read_reference_pairs(path)
    filled = ", ".join(f"{key}={REFERENCE_PAIR_DEFAULTS[key]!r} ({count})" if key in REFERENCE_PAIR_DEFAULTS
                       else f"{key} from the pair type ({count})" for key, count in lacked.items())
    print(f"{command}: note: {path}: {len(pairs)} reference pairs converted (prompt string -> one user message)"
          + (f"; fields missing, filled with: {filled} (listed in meta.assumed)" if filled else ""), file=sys.stderr)
    return pairs
