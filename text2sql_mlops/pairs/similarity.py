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
    """Levenshtein distance between two token sequences (insert, delete, substitute: 1 each).

    The shared start and end are cut first (a repair changes a few tokens); what is left is
    computed a row at a time, in numpy when it is long: a pair of 100 KB model SQL took
    almost 8 minutes in pure Python, which one hostile pair made the dashboard's cost.
    """
    start = 0
    while start < len(a) and start < len(b) and a[start] == b[start]:
        start += 1
    end = 0
    while end < len(a) - start and end < len(b) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    a, b = a[start:len(a) - end], b[start:len(b) - end]
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    if len(a) > 64 and len(a) * len(b) > 4096:  # numpy pays per row: long rows, few of them
        return _edit_distance_rows(b, a)
    previous = list(range(len(b) + 1))
    for i, token_a in enumerate(a, start=1):
        current = [i]
        for j, token_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (token_a != token_b)))
        previous = current
    return previous[-1]


def _edit_distance_rows(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """The same recurrence, one row per token of ``a`` (give the shorter sequence), each row
    over ``b`` in numpy: substitutions and deletions elementwise, then the chain of insertions
    along the row as a running minimum (row[j] = min over k <= j of candidate[k] + j - k)."""
    import numpy as np

    ids: dict[str, int] = {}
    codes_b = np.array([ids.setdefault(token, len(ids)) for token in b], dtype=np.int64)
    columns = np.arange(len(b) + 1, dtype=np.int64)
    previous = columns.copy()
    candidate = np.empty(len(b) + 1, dtype=np.int64)
    for i, token in enumerate(a, start=1):
        code = ids.get(token, -1)
        candidate[0] = i
        np.minimum(previous[:-1] + (codes_b != code), previous[1:] + 1, out=candidate[1:])
        previous = np.minimum.accumulate(candidate - columns) + columns
    return int(previous[-1])


def edit_distance_ratio(sql_a: str, sql_b: str) -> float:
    a, b = sql_tokens(sql_a), sql_tokens(sql_b)
    longest = max(len(a), len(b))
    return edit_distance(a, b) / longest if longest else 0.0
