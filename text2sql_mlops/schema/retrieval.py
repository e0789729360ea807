"""Schema retrieval: which tables of a database a prompt shows for one question.

Modes are registered by name in ``MODES`` and all share one signature, so a
prompt builder or the ``schema-recall`` stage picks a mode from its config
without knowing how it works:

- ``full``: every table.
- ``retrieved``: tables sharing words with the question (token overlap).
- ``bm25``: BM25 over one document per table (table name, column names and
  the natural-language names from Spider's tables.json).
- ``bm25_fk``: ``bm25``, then the tables linked to the selection by a foreign
  key, repeated ``fk_hops`` times, so join tables the question never names
  (``singer_in_concert``) come along with the tables it does name.

Ties are broken by table order in the catalog, so every mode is deterministic.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from rank_bm25 import BM25Okapi

if TYPE_CHECKING:
    from ..sql.catalog import Catalog, Table

DEFAULT_TOP_K = 6
DEFAULT_FK_HOPS = 1

# Words that carry no schema meaning; without this list "what", "the" or "of"
# would match columns such as ``What_Happened`` or ``Type_of_Thing``.
_STOPWORDS = frozenset(
    """a about after all also an and any are as at be before between by can did do does
    each for from give had has have how i in into is it its list me more most my no not
    of on or other our out over per show than that the their them then there these they
    this those to under was we were what when where which who whose why will with would
    you your""".split()
)

# One word piece: an acronym before a capitalised word (XMLHttp -> XML, Http),
# a capitalised or lowercase word, a remaining all-caps run, or a digit run.
_WORD_PIECE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def identifier_tokens(text: str) -> list[str]:
    """Lowercased word pieces of a name or a sentence, plurals folded.

    Splits on anything that is not a letter or digit (``_``, spaces), on
    camelCase and on digit runs: ``pitStops`` -> ``pit stop``,
    ``Perpetrator_ID`` -> ``perpetrator id``. Plurals are folded to the
    singular so that "singers" in a question meets the table ``singer``.
    """
    return [_singular(word) for word in _words(text)]


def question_tokens(question: str) -> list[str]:
    """The question's word pieces without stop words, in order, repeats kept (BM25 counts them)."""
    return [_singular(word) for word in _words(question) if word not in _STOPWORDS]


def _words(text: str) -> list[str]:
    return [piece.lower() for piece in _WORD_PIECE.findall(text)]


def _singular(word: str) -> str:
    # A crude English plural fold, applied to questions and names alike, so
    # its mistakes ("status" -> "statu") cancel out; good enough for matching.
    if len(word) <= 3 or word.endswith("ss"):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def table_document(table: Table) -> list[str]:
    """The words describing a table: its name, its columns' names, and their natural names."""
    names = [table.name, table.natural_name]
    for column in table.columns:
        names += [column.name, column.natural_name]
    return [token for name in names if name for token in identifier_tokens(name)]


def _ranked(names: tuple[str, ...], scores) -> list[str]:
    """Names by score, highest first; equal scores keep catalog order."""
    order = sorted(range(len(names)), key=lambda i: (-scores[i], i))
    return [names[i] for i in order]


def _full(catalog: Catalog, question: str, top_k: int, fk_hops: int) -> list[str]:
    return list(catalog.table_names)


def _retrieved(catalog: Catalog, question: str, top_k: int, fk_hops: int) -> list[str]:
    """Up to ``top_k`` tables that share at least one word with the question.

    The score is the number of distinct question words found among the table's
    words. When no table shares a word, the first ``top_k`` tables are shown:
    an empty schema would leave the model nothing to write SQL against.
    """
    words = set(question_tokens(question))
    scores = [len(words & set(document)) for document in _documents(catalog)]
    ranked = _ranked(catalog.table_names, scores)
    matched = sum(1 for score in scores if score > 0)
    return ranked[: min(top_k, matched) if matched else top_k]


def _bm25(catalog: Catalog, question: str, top_k: int, fk_hops: int) -> list[str]:
    scores = _bm25_index(catalog).get_scores(question_tokens(question))
    return _ranked(catalog.table_names, scores)[:top_k]


def _bm25_fk(catalog: Catalog, question: str, top_k: int, fk_hops: int) -> list[str]:
    return expand_foreign_keys(catalog, _bm25(catalog, question, top_k, fk_hops), fk_hops)


def expand_foreign_keys(catalog: Catalog, tables: list[str], hops: int) -> list[str]:
    """``tables`` plus every table within ``hops`` foreign-key links of them.

    Links count in both directions (a table that references a selected table,
    and a table a selected table references). Added tables follow the selected
    ones, hop by hop, each hop in catalog order.
    """
    selected = [catalog.table(name).name for name in tables]
    frontier = set(selected)
    for _ in range(hops):
        linked = set().union(*(catalog.linked_tables(name) for name in frontier))
        frontier = {name for name in linked if name not in selected}
        if not frontier:
            break
        selected += [name for name in catalog.table_names if name in frontier]
    return selected


@functools.lru_cache(maxsize=1024)
def _documents(catalog: Catalog) -> tuple[list[str], ...]:
    return tuple(table_document(table) for table in catalog.tables)


@functools.lru_cache(maxsize=1024)
def _bm25_index(catalog: Catalog) -> BM25Okapi:
    # Built once per database: catalogs are cached per file, so every question
    # on the same database reuses the same index.
    return BM25Okapi(list(_documents(catalog)))


RetrievalMode = Callable[["Catalog", str, int, int], list[str]]

MODES: dict[str, RetrievalMode] = {
    "full": _full,
    "retrieved": _retrieved,
    "bm25": _bm25,
    "bm25_fk": _bm25_fk,
}


def select_tables(
    catalog: Catalog,
    question: str,
    mode: str,
    top_k: int = DEFAULT_TOP_K,
    fk_hops: int = DEFAULT_FK_HOPS,
) -> list[str]:
    """The names of the tables to show for ``question``, most relevant first.

    ``top_k`` caps the tables a ranking mode picks (``full`` ignores it);
    ``fk_hops`` is used by ``bm25_fk`` only, whose result can exceed ``top_k``.
    """
    if mode not in MODES:
        raise ValueError(f"unknown retrieval mode {mode!r}; choose one of: {', '.join(MODES)}")
    if top_k < 1 or fk_hops < 0:
        raise ValueError(f"top_k must be >= 1 and fk_hops >= 0, got top_k={top_k}, fk_hops={fk_hops}")
    if not catalog.tables:
        return []
    return MODES[mode](catalog, question, top_k, fk_hops)
