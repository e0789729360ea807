"""How far apart two SQL strings are, in SQL tokens.

``edit_distance_ratio`` = Levenshtein distance between the two token sequences /
the longer sequence's length: 0 for the same tokens, 1 when nothing lines up.
Tokens come from sqlglot's tokenizer (keywords upper-cased, identifiers as
written), so whitespace, case of keywords and quoting style do not count as edits.
Merging filters on it (``--max_sql_edit_distance_ratio``) and the dashboard reports it.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=65536)
def sql_tokens(sql: str) -> tuple[str, ...]:
    """SQL tokens of ``sql``; whitespace-split when sqlglot cannot tokenize it (broken model SQL)."""
    from sqlglot.tokens import Tokenizer, TokenType

    try:
        tokens = Tokenizer().tokenize(sql)
    except Exception:  # sqlglot raises its own TokenError and, on odd input, plain ValueErrors
        return tuple(sql.split())
    # A quoted identifier keeps its quotes: sqlglot gives "group" and a bare group (a syntax error
    # in SQLite) the same text, and a repair that only adds the quotes is a real edit.
    return tuple(f'"{tok.text}"' if tok.token_type == TokenType.IDENTIFIER
                 else tok.text if tok.token_type in (TokenType.VAR, TokenType.STRING) else tok.text.upper()
                 for tok in tokens)


def edit_distance(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """Levenshtein distance between two token sequences (insert, delete, substitute: 1 each)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, token_a in enumerate(a, start=1):
        current = [i]
        for j, token_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (token_a != token_b)))
        previous = current
    return previous[-1]


def edit_distance_ratio(sql_a: str, sql_b: str) -> float:
    a, b = sql_tokens(sql_a), sql_tokens(sql_b)
    longest = max(len(a), len(b))
    return edit_distance(a, b) / longest if longest else 0.0
