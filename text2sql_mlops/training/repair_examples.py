"""SFT targets that teach the repair turn: a failing query, its feedback, then the gold SQL.

A model trained on first-turn prompts only has never seen a repair prompt, so at
evaluation it answers the feedback by repeating its query (measured on the demo:
CM repair fixed 1 of 47 failing dev queries). These targets show it what a repair
looks like, with the exact messages a rollout builds for its second turn
(``prompts.build_messages`` with one (sql, feedback) turn of history, the feedback
from ``rollout/feedback.py``'s ``build_feedback``) and the gold SQL as the answer.

The failing query is the gold query with one schema mistake of the kinds small
models make (measured on the SFT model's dev errors: 24 of 47 are "no such column"):

* ``invented_column``: a column renamed to ``<table>_<column>`` (``airline_name``
  for ``airline.name``), a name the database does not have;
* ``wrong_column`` and ``missing_join`` from ``pairs.synth`` (a column of a table the
  query does not join; a join dropped while its columns stay),

kept only when SQLite rejects it with an unresolved name: a repair target teaches
fixing what the strict, gold-free feedback reports. Which examples get one is
decided per example by a seeded draw, so the set is identical on rerun.
"""

from __future__ import annotations

import random
from collections import Counter

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from ..pairs.mutations import _owner, candidate_sqls, function_case, render
from ..prompts import build_messages, format_answer
from ..rollout.feedback import Diagnosis, build_feedback
from ..schema.select import prompt_schema
from ..scoring.errors import Execution, GoldResult, observe, unresolved_name
from ..sql.catalog import load_catalog
from ..sql.sandbox import Sandbox

Messages = list[dict[str, str]]
FAMILIES = ("invented_column", "wrong_column", "missing_join")
CANDIDATES_PER_FAMILY = 4


def invented_columns(tree: exp.Expression, case: str, catalog, rng: random.Random) -> list[str]:
    """The parsed gold query with one column renamed to ``<table>_<column>``, printed in the
    gold's function ``case``, for each column whose table is known and whose new name no table
    of the database has; in seeded order."""
    every = {column.name.lower() for table in catalog.tables for column in table.columns}
    columns = [(i, column) for i, column in enumerate(tree.find_all(exp.Column)) if isinstance(column.this, exp.Identifier)]
    rng.shuffle(columns)
    out = []
    for index, column in columns:
        owner = _owner(column, catalog)
        if owner is None:
            continue
        prefix = owner.lower().rstrip("s")
        invented = f"{prefix}_{column.name.lower()}"
        if column.name.lower().startswith(prefix) or invented in every:  # airline.airline_id stays
            continue
        copy = tree.copy()
        target = list(copy.find_all(exp.Column))[index]
        target.set("this", exp.to_identifier(invented))
        out.append(render(copy, case))
    return out


def failing_query(example, catalog, sandbox, rng: random.Random) -> tuple[str, str] | None:
    """(family, SQL) of a corrupted gold query that SQLite rejects with an unresolved name."""
    try:
        tree = sqlglot.parse_one(example.query, read="sqlite")
    except (SqlglotError, RecursionError):
        return None
    case = function_case(example.query)
    families = list(FAMILIES)
    rng.shuffle(families)
    for family in families:
        try:
            if family == "invented_column":
                sqls = invented_columns(tree, case, catalog, rng)[:CANDIDATES_PER_FAMILY]
            else:
                generated = candidate_sqls(tree, catalog, family, rng, case)
                sqls = [sql for _, sql in zip(range(CANDIDATES_PER_FAMILY), generated)]
        except (SqlglotError, RecursionError):
            continue
        for sql in sqls:
            result = sandbox.execute(example.db_path, sql)
            if not result.ok and unresolved_name(result.error) is not None:
                return family, sql
    return None


def repair_targets(examples: list, prompt_config, tables_json: str | None, fraction: float, feedback_detail: str,
                   feedback_mode: str, seed: int) -> tuple[list[tuple[Messages, str]], Counter]:
    """(repair-turn messages, gold answer) for a seeded ``fraction`` of ``examples`` whose gold runs;
    and counts per family (plus ``repair_no_failing_query``)."""
    targets: list[tuple[Messages, str]] = []
    counts: Counter[str] = Counter()
    with Sandbox() as sandbox:
        for example in examples:
            rng = random.Random(f"{seed}\x1frepair\x1f{example.db_id}\x1f{example.id}\x1f{example.query}")
            if rng.random() >= fraction or not example.query.strip():
                continue
            gold = observe(sandbox, example.db_path, example.query)
            if not gold.ok:
                continue
            catalog = load_catalog(example.db_path, tables_json, example.db_id)
            found = failing_query(example, catalog, sandbox, rng)
            if found is None:
                counts["repair_no_failing_query"] += 1
                continue
            family, sql = found
            messages, _ = repair_chat(example, sql, catalog, gold, sandbox, prompt_config, tables_json, feedback_detail, feedback_mode)
            targets.append((messages, format_answer(example.query, prompt_config.prompt_style)))
            counts[f"repair_{family}"] += 1
    return targets, counts


def repair_chat(example, sql: str, catalog, gold: Execution, sandbox, prompt_config, tables_json, feedback_detail: str,
                feedback_mode: str) -> tuple[Messages, Execution]:
    """The repair turn a rollout builds after ``sql`` failed on ``example``'s question (its first-turn
    prompt, ``sql`` as the answer, the feedback on it), and what running ``sql`` showed."""
    execution = observe(sandbox, example.db_path, sql)
    diagnosis = Diagnosis(sql=sql, execution=execution, catalog=catalog, gold=GoldResult.of(gold))
    feedback = build_feedback(diagnosis, feedback_detail, feedback_mode)
    schema = prompt_schema(example.db_path, example.question, prompt_config, tables_json, example.db_id)
    return build_messages(schema.text, example.question, [(sql, feedback)], prompt_config.prompt_style), execution
