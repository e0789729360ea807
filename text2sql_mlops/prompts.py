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

Two prompt styles (``schema.select.PROMPT_STYLES``; ``PromptConfig.prompt_style`` picks one for every
command, so rollouts, pairs and training always agree):

- ``chat`` (the default): the layout above, answers in a ```sql block.
- ``seed``: the reference project's layout, to reproduce a model trained there or A/B
  the two: one user message per generation, a plain ``SQL:`` answer, and a repair is
  again one message (rules, schema, question, the previous SQL and its feedback), not a
  chat history. The Column-Minimal rule moves in front of the schema. The wording is
  ours; the layout is the reference's.
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
# The last line of Column-Minimal feedback (rollout/feedback.py); the seed style moves it before the schema.
COLUMN_MINIMAL_RULE = ("Column-Minimal Repair: change as little as possible. Take each column from a table that has it, "
                       "keep only the tables the question needs, and drop a join that is not needed instead of renaming aliases.")

SEED_TASK = "You are a SQLite expert. Write one SQLite query that answers the question, using only the tables and columns of the schema."
SEED_REPAIR_TASK = "You are a SQLite expert. The previous SQLite query for this question is wrong. Write a corrected query."


def _plain(sql: str) -> str:
    return sql.strip().rstrip(";").strip()


def format_answer(sql: str, style: str = "chat") -> str:
    """The exact text the model is asked to produce; training targets use it too."""
    return _plain(sql) if style == "seed" else f"```sql\n{_plain(sql)}\n```"


def question_message(schema: str, question: str) -> str:
    return f"Database schema:\n{schema.strip()}\n\nQuestion: {question.strip()}"


def build_messages(schema: str, question: str, history: list[tuple[str, str]] = (), style: str = "chat") -> Messages:
    """Chat messages for one generation.

    ``history`` holds the earlier turns of a repair as (sql, feedback) pairs:
    empty for the first turn, one pair for the first repair, and so on.
    """
    if style == "seed":
        return [{"role": "user", "content": seed_message(schema, question, history[-1] if history else None)}]
    if style != "chat":
        raise ValueError(f"unknown prompt style {style!r}; use chat or seed")  # schema.select.PROMPT_STYLES
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": question_message(schema, question)},
    ]
    for sql, feedback in history:
        messages.append({"role": "assistant", "content": format_answer(sql)})
        messages.append({"role": "user", "content": f"{feedback.strip()}\n\n{REPAIR_INSTRUCTION}"})
    return messages


def seed_message(schema: str, question: str, last: tuple[str, str] | None) -> str:
    """The seed style's one message: the task, then (for a repair) its rules, the schema, the
    question, (for a repair) the previous SQL and its feedback, and ``SQL:`` to answer after."""
    if last is None:
        return f"{SEED_TASK}\n\nSchema:\n{schema.strip()}\n\nQuestion: {question.strip()}\nSQL:"
    sql, feedback = last
    lines = [line for line in feedback.strip().splitlines() if line.strip() != COLUMN_MINIMAL_RULE]
    rules = f"\n{COLUMN_MINIMAL_RULE}" if len(lines) < len(feedback.strip().splitlines()) else ""
    return (f"{SEED_REPAIR_TASK}{rules}\n\nSchema:\n{schema.strip()}\n\nQuestion: {question.strip()}\n\n"
            f"Previous SQL:\n{_plain(sql)}\n\nFeedback:\n" + "\n".join(lines) + "\nSQL:")


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
