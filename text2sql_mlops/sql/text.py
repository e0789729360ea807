"""Lexing SQL text as SQLite does, without SQLite: where the first statement ends, what is blank;
and which names may be written bare (asked of an in-memory SQLite once per name).

The sandbox runs exactly one statement per call and must find it in hostile text (a
megabyte of quotes, unterminated comments, a BOM); ``extract_sql`` (prompts.py) and the
scorer (``scoring/scorer.py``: what Python's sqlite3 would run) cut model answers the same way.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sqlite3

# SQLite's tokenizer rules for what can hide a ";": quoted strings and
# identifiers (a doubled quote escapes itself), [bracketed] identifiers, and
# comments (an unterminated one runs to the end). SQLite treats a UTF-8 BOM as
# whitespace anywhere, so it must not hide a statement from us either.
# Possessive regexes scan a megabyte of hostile SQL in milliseconds.
_BLANK_ITEM = r"[ \t\n\v\f\r\ufeff]++|--[^\n]*+\n?|/\*.*?(?:\*/|\Z)"
_BLANK = re.compile(rf"(?:{_BLANK_ITEM})*+", re.DOTALL)
_BLANK_OR_SEMICOLONS = re.compile(rf"(?:{_BLANK_ITEM}|;)*+", re.DOTALL)
_EMPTY_STATEMENTS = re.compile(rf"(?:(?:{_BLANK_ITEM})*+;)*+", re.DOTALL)
_STATEMENT_BODY = re.compile(
    r"""(?:[^;'"`\[\-/]++|-(?!-)|/(?!\*)"""  # plain text, including "-" and "/" that start no comment
    r"""|'[^']*+(?:''[^']*+)*+'?|"[^"]*+(?:""[^"]*+)*+"?|`[^`]*+(?:``[^`]*+)*+`?|\[[^\]]*+\]?"""
    r"""|--[^\n]*+|/\*.*?(?:\*/|\Z))*+""",
    re.DOTALL,
)
_WORD = re.compile(r"[A-Za-z_]+")


def first_statement_bounds(sql: str) -> tuple[int, int]:
    """(begin, end) of the first statement, its ``;`` included; ``begin`` skips empty ones like ``;;``."""
    begin = _EMPTY_STATEMENTS.match(sql).end()
    end = _STATEMENT_BODY.match(sql, begin).end()
    return begin, min(end + 1, len(sql))


def is_blank(sql: str, start: int, end: int) -> bool:
    """Whether ``sql[start:end]`` holds only whitespace, comments and semicolons."""
    return _BLANK_OR_SEMICOLONS.match(sql, start, end).end() == end


def split_first_statement(sql: str) -> tuple[str, str]:
    """Split ``sql`` into its first statement (with its ``;``, if any) and the rest, both unchanged.

    Leading empty statements stay with the first one, so ``first + rest == sql``.
    """
    _, end = first_statement_bounds(sql)
    return sql[:end], sql[end:]


def leading_keyword(statement: str) -> str:
    """The statement's first word after any ``EXPLAIN [QUERY PLAN]``, upper-cased."""
    i = 0
    for _ in range(4):
        i = _BLANK.match(statement, i).end()
        word = _WORD.match(statement, i)
        if word is None:
            break
        if word.group().upper() not in {"EXPLAIN", "QUERY", "PLAN"}:
            return word.group().upper()
        i = word.end()
    return statement[i:i + 20].strip()


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@functools.lru_cache(maxsize=65536)
def bare_name_ok(name: str) -> bool:
    """Whether SQLite reads ``name`` unquoted as that table and column: a plain word that is
    no keyword SQLite refuses there (``transaction``, ``cast``) or reads as something else
    (``current_date`` is today's date, not the column). Asked of SQLite itself, whose
    keywords change between versions."""
    if not _NAME.fullmatch(name):
        return False
    quoted = '"' + name + '"'
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        try:
            rows = conn.execute(f"SELECT {name}.{name}, {name} FROM (SELECT 'v' AS {quoted}) AS {name}").fetchall()
        except sqlite3.Error:
            return False
    return rows == [("v", "v")]
