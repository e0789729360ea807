"""Chat messages, the answer format and reading SQL back out of model text."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CONCERT_SQL, make_db

from text2sql_mlops.core.errors import UserError
from text2sql_mlops.prompts import (
    COLUMN_MINIMAL_RULE,
    REPAIR_INSTRUCTION,
    SEED_REPAIR_TASK,
    SEED_TASK,
    SYSTEM_PROMPT,
    build_messages,
    extract_sql,
    format_answer,
)
from text2sql_mlops.schema.render import schema_text
from text2sql_mlops.schema.retrieval import select_tables
from text2sql_mlops.schema.select import PROMPT_STYLES, PromptConfig, prompt_schema
from text2sql_mlops.sql.catalog import load_catalog


def test_first_turn_is_system_then_schema_and_question():
    messages = build_messages("CREATE TABLE t (a INT);", "How many rows?")
    assert messages == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "Database schema:\nCREATE TABLE t (a INT);\n\nQuestion: How many rows?"},
    ]


def test_repair_turns_alternate_answer_and_feedback():
    history = [("SELECT b FROM t;", "no such column: b"), ("SELECT a FROM t", "The query ran.")]
    messages = build_messages("CREATE TABLE t (a INT);", "q?", history)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[2]["content"] == "```sql\nSELECT b FROM t\n```"
    assert messages[3]["content"] == f"no such column: b\n\n{REPAIR_INSTRUCTION}"
    assert messages[:2] == build_messages("CREATE TABLE t (a INT);", "q?")  # earlier turns never change


def test_format_answer_is_what_extract_sql_reads_back():
    sql = "SELECT name FROM singer WHERE country = 'a;b'"
    assert format_answer(sql + " ;") == f"```sql\n{sql}\n```"
    assert extract_sql(format_answer(sql)) == sql


def test_seed_style_first_turn_is_one_message_answered_after_sql():
    messages = build_messages("Table t: a INT", "How many rows?", style="seed")
    assert messages == [{"role": "user", "content": f"{SEED_TASK}\n\nSchema:\nTable t: a INT\n\nQuestion: How many rows?\nSQL:"}]
    assert format_answer("SELECT count(*) FROM t ;", "seed") == "SELECT count(*) FROM t"
    assert extract_sql(format_answer("SELECT count(*) FROM t", "seed")) == "SELECT count(*) FROM t"


def test_seed_style_repair_is_one_message_with_the_rule_before_the_schema():
    feedback = f"SQLite error: no such column: b\n{COLUMN_MINIMAL_RULE}"
    history = [("SELECT x FROM t", "SQLite error: no such column: x"), ("SELECT b FROM t;", feedback)]
    [message] = build_messages("Table t: a INT", "q?", history, style="seed")
    assert message == {"role": "user", "content": (
        f"{SEED_REPAIR_TASK}\n{COLUMN_MINIMAL_RULE}\n\nSchema:\nTable t: a INT\n\nQuestion: q?\n\n"
        "Previous SQL:\nSELECT b FROM t\n\nFeedback:\nSQLite error: no such column: b\nSQL:")}  # the last attempt only
    [basic] = build_messages("Table t: a INT", "q?", [("SELECT b FROM t", "SQLite error: no such column: b")], style="seed")
    assert COLUMN_MINIMAL_RULE not in basic["content"]  # basic feedback: no rule to move
    with pytest.raises(ValueError, match="unknown prompt style 'seeds'"):
        build_messages("Table t: a INT", "q?", style="seeds")
    assert all(build_messages("Table t: a INT", "q?", style=style) for style in PROMPT_STYLES)  # config and prompts agree
    with pytest.raises(UserError, match="--prompt_style 'seeds' is not one of: chat, seed"):
        PromptConfig(prompt_style="seeds").check()


@pytest.mark.parametrize(
    ("text", "sql"),
    [
        ("```sql\nSELECT 1\n```", "SELECT 1"),
        ("Here you go:\n```SQLite\nSELECT a FROM t;\n```\nThis selects a.", "SELECT a FROM t"),
        ("```\nSELECT a FROM t\n```", "SELECT a FROM t"),
        ("```sql\nSELECT a FROM t WHERE b = 'x", "SELECT a FROM t WHERE b = 'x"),  # cut off by max_new_tokens
        ("The answer is SELECT a FROM t; it returns a.", "SELECT a FROM t"),  # prose after the statement
        ("```sql\nSELECT 'a;b' FROM t; SELECT 2\n```", "SELECT 'a;b' FROM t"),  # only the first statement
        ("with x as (select 1) select * from x", "with x as (select 1) select * from x"),
        ("I don't know.", ""),
        ("", ""),
    ],
)
def test_extract_sql(text: str, sql: str):
    assert extract_sql(text) == sql


def test_prompt_schema_lists_the_tables_it_shows(tmp_path: Path):
    db = make_db(tmp_path / "concert_singer.sqlite", CONCERT_SQL)
    catalog = load_catalog(db)
    question = "Which singers performed in concerts in 2014?"
    chosen = prompt_schema(str(db), question, PromptConfig(schema_mode="bm25", top_k_tables=2))
    assert set(chosen.tables) == set(select_tables(catalog, question, "bm25", top_k=2, fk_hops=1)) and len(chosen.tables) == 2
    assert chosen.text == schema_text(catalog, chosen.tables)
    everything = prompt_schema(str(db), "anything", PromptConfig(schema_mode="full"))
    assert everything.tables == ("singer", "concert", "singer_in_concert")  # catalog order


@pytest.mark.parametrize("text", [
    "```sql\nSELECT name FROM airport WHERE country = 'Mexico'\n```\n\nThis query selects the names.\n```sql\nSELECT 2\n```",
    "Here it is:\n```\nSELECT 1;\nDROP TABLE t\n``` and more",
    "```sqlite SELECT a FROM t``````",
    "SELECT a FROM t WHERE b = '`' -- no fence at all",
    "```sql\nSELECT a FROM t",
])
def test_generation_may_stop_once_the_answer_block_closes(text):
    """answer_complete marks the first prefix after which the extracted SQL cannot change:
    the hf backend stops there instead of generating chatter."""
    from text2sql_mlops.prompts import answer_complete

    complete = [end for end in range(len(text) + 1) if answer_complete(text[:end])]
    for end in complete:
        assert extract_sql(text[:end]) == extract_sql(text)
    if text.count("```") >= 2:
        first_close = text.index("```", text.index("```") + 3) + 3
        assert complete and complete[0] == first_close
    else:
        assert not complete
