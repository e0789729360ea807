"""The one place chat messages are built — for inference, repair, and training alike.

A model is trained on exactly the messages it sees at inference, and asked to
answer in exactly the format its training targets use: one SQLite query in a
```sql fenced block (``format_answer``). ``extract_sql`` reads that format back,
tolerating the chatter small models add around it.

Repair is a multi-turn chat: the first user turn holds schema and question, each
assistant turn a previous answer (re-written with ``format_answer``, so the
history looks like what training teaches), each later user turn the execution
feedback (``rollout/feedback.py``) followed by ``REPAIR_INSTRUCTION``.

The schema text comes from ``schema/select.py`` (``prompt_schema``): the rollout,
SFT and DPO all call it, so a question always comes with the same tables.
"""

from __future__ import annotations

import re

from .sql.text import split_first_statement

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
