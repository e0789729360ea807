"""The one place chat messages are built — for inference, repair, and training alike.

A model is trained on exactly the messages it sees at inference, and asked to
answer in exactly the format its training targets use: one SQLite query in a
```sql fenced block (``format_answer``). ``extract_sql`` reads that format back,
tolerating the chatter small models add around it.

Repair is a multi-turn chat: the first user turn holds schema and question, each
assistant turn a previous answer (re-written with ``format_answer``, so the
history looks like what training teaches), each later user turn the execution
feedback (``feedback.py``) followed by ``REPAIR_INSTRUCTION``.

The schema part is chosen by ``prompt_schema`` from a ``PromptConfig``; the
rollout, SFT and DPO all call it, so a question always comes with the same tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

Messages = list[dict[str, str]]

SYSTEM_PROMPT = (
    "You are an expert SQLite developer. Given a database schema and a question, "
    "write one SQLite query that answers the question. "
    "Reply with the query only, inside a ```sql code block."
)
REPAIR_INSTRUCTION = "Fix the query. Reply with the corrected SQLite query only, inside a ```sql code block."


def format_answer(sql: str) -> str:
    """The exact text the model is asked to produce; training targets use it too."""
    return f"```sql\n{sql.strip().rstrip(';').strip()}\n```"


def question_message(schema: str, question: str) -> str:
    return f"Database schema:\n{schema.strip()}\n\nQuestion: {question.strip()}"


def build_messages(schema: str, question: str, history: list[tuple[str, str]] = ()) -> Messages:
    """Chat messages for one generation.

    ``history`` holds the earlier turns of a repair as (sql, feedback) pairs:
    empty for the first turn, one pair for the first repair, and so on.
    """
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": question_message(schema, question)},
    ]
    for sql, feedback in history:
        messages.append({"role": "assistant", "content": format_answer(sql)})
        messages.append({"role": "user", "content": f"{feedback.strip()}\n\n{REPAIR_INSTRUCTION}"})
    return messages


# The first fenced block (```sql, ```sqlite or a bare ```), closed or cut off by max_new_tokens.
_FENCED = re.compile(r"```[ \t]*(?:sqlite|sql)?[ \t]*\n?(.*?)(?:```|$)", re.IGNORECASE | re.DOTALL)
_SQL_START = re.compile(r"\b(SELECT|WITH)\b", re.IGNORECASE)


def extract_sql(text: str) -> str:
    """The SQL in a model answer: the first statement of the first fenced block, else of the
    text from the first SELECT/WITH on. "" when there is nothing SQL-like (scored as a failure).

    Only the first statement is kept: prose after "SELECT ...;" is not SQL, and the
    official scorer evaluates the first statement only, so executing and scoring the
    same text keeps the two verdicts consistent.
    """
    from .sql.sandbox import split_first_statement

    match = _FENCED.search(text)
    candidate = match.group(1) if match else text
    if not match:
        start = _SQL_START.search(candidate)
        candidate = candidate[start.start():] if start else ""
    first, _ = split_first_statement(candidate)
    return first.strip().rstrip(";").strip()


def answer_complete(text: str) -> bool:
    """Whether ``text`` already holds its whole answer for ``extract_sql``: its first fenced
    block is closed, so nothing generated after it can change the extracted SQL. A backend
    may stop generating there (the hf backend does): the SQL is the same, the tokens fewer."""
    match = _FENCED.search(text)
    return match is not None and len(match.group(0)) >= 6 and match.group(0).endswith("```")


@dataclass(frozen=True)
class PromptConfig:
    """How the schema part of a prompt is chosen (see ``retrieval.py``)."""

    schema_mode: str = "bm25_fk"
    top_k_tables: int = 6
    fk_hops: int = 1
    sample_rows: int = 0
    schema_format: str = "create_table"  # schema.SCHEMA_FORMATS: create_table | compact | seed
    sample_values: int = 0  # distinct values per text column shown in the schema (question's first)

    @classmethod
    def of(cls, settings: Any) -> PromptConfig:
        """The prompt settings of a command's config (rollout, synth, train sft: same field names)."""
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})

    def check(self) -> PromptConfig:
        """One-line errors, in the flags' names, for settings no prompt could use."""
        from .core.errors import UserError
        from .schema.retrieval import MODES
        from .sql.catalog import SCHEMA_FORMATS

        for name, minimum in (("top_k_tables", 1), ("fk_hops", 0), ("sample_rows", 0), ("sample_values", 0)):
            if getattr(self, name) < minimum:
                raise UserError(f"--{name} must be at least {minimum}, got {getattr(self, name)}")
        for name, choices in (("schema_mode", MODES), ("schema_format", SCHEMA_FORMATS)):
            if getattr(self, name) not in choices:
                raise UserError(f"--{name} {getattr(self, name)!r} is not one of: {', '.join(choices)}")
        return self


@dataclass(frozen=True)
class PromptSchema:
    """The tables a prompt shows (catalog spelling, catalog order) and their schema text."""

    tables: tuple[str, ...]
    text: str


def prompt_schema(
    db_path: str, question: str, config: PromptConfig, tables_json: str | None = None, db_id: str | None = None
) -> PromptSchema:
    """The tables retrieval picks for ``question`` and their schema text (catalogs are cached)."""
    from .sql.catalog import load_catalog, schema_text, select_tables

    catalog = load_catalog(db_path, tables_json, db_id)
    chosen = {catalog.table(name).name for name in select_tables(catalog, question, config.schema_mode, top_k=config.top_k_tables, fk_hops=config.fk_hops)}
    tables = tuple(name for name in catalog.table_names if name in chosen)
    text = schema_text(catalog, tables, sample_rows=config.sample_rows, schema_format=config.schema_format,
                       sample_values=config.sample_values, question=question)
    return PromptSchema(tables=tables, text=text)
