"""Database catalogs, schema text for prompts, gold tables, and the ``schema-recall`` stage.

A ``Catalog`` is what one SQLite file declares (tables, columns, declared
types, primary and foreign keys), optionally enriched by Spider's tables.json:
natural-language names ("student name" for ``Sname``) and foreign keys that
Spider declares but the file lacks. Catalogs are cached per file and
modification time, and the file is only ever opened read-only.

``schema-recall`` measures how many gold tables a retrieval mode (see
``retrieval.py``) puts in front of the model:

    text2sql-mlops schema-recall --dataset train_spider.json --db-root database \\
        --tables tables.json --mode bm25_fk --top-k 6 --fk-hops 1
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import re
import sqlite3
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import traverse_scope
from tqdm import tqdm

from ..core.errors import UserError
from ..core.fileio import output_file, write_json
from ..core.records import Example
from ..data.load import check_database, load_examples
from ..schema.retrieval import DEFAULT_FK_HOPS, DEFAULT_TOP_K, MODES, select_tables
from .sandbox import database_uri

# --------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class Column:
    name: str
    type: str = ""  # declared type as written ("VARCHAR(20)"); "" when none is declared
    natural_name: str = ""  # tables.json ``column_names`` entry; "" without tables.json


@dataclass(frozen=True)
class ForeignKey:
    """``columns`` of the owning table reference ``ref_columns`` of ``ref_table``."""

    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    natural_name: str = ""  # tables.json ``table_names`` entry


@dataclass(frozen=True)
class Catalog:
    """The tables of one database, in the order SQLite created them."""

    db_id: str
    db_path: str
    tables: tuple[Table, ...]

    @functools.cached_property
    def table_names(self) -> tuple[str, ...]:
        return tuple(table.name for table in self.tables)

    @functools.cached_property
    def _by_lower_name(self) -> dict[str, Table]:
        return {table.name.lower(): table for table in self.tables}

    def resolve(self, name: str) -> str | None:
        """The catalog's spelling of table ``name`` (matched case-insensitively), or None."""
        table = self._by_lower_name.get(name.lower())
        return table.name if table else None

    def table(self, name: str) -> Table:
        """The table called ``name``, matched case-insensitively; KeyError when absent."""
        try:
            return self._by_lower_name[name.lower()]
        except KeyError:
            raise KeyError(f"no table {name!r} in database {self.db_id!r}") from None

    def linked_tables(self, name: str) -> frozenset[str]:
        """Tables joined to ``name`` by a foreign key, in either direction."""
        return self._links[self.table(name).name]

    @functools.cached_property
    def _links(self) -> dict[str, frozenset[str]]:
        links: dict[str, set[str]] = {name: set() for name in self.table_names}
        for table in self.tables:
            for key in table.foreign_keys:
                target = self.resolve(key.ref_table)
                if target and target != table.name:
                    links[table.name].add(target)
                    links[target].add(table.name)
        return {name: frozenset(linked) for name, linked in links.items()}


def load_catalog(db_path: str | os.PathLike, tables_json: str | os.PathLike | None = None, db_id: str | None = None) -> Catalog:
    """The catalog of the SQLite file ``db_path``, enriched by ``tables_json`` when given.

    ``db_id`` (default: the file name without extension, as in Spider's
    ``database/<db_id>/<db_id>.sqlite``) picks the tables.json entry; a
    database that tables.json does not list is used as SQLite declares it.
    """
    path = Path(db_path).resolve()
    if not path.is_file():
        raise UserError(f"database not found: {path}; check --db-root or the example's db_path")
    spider_key = None
    if tables_json is not None:
        tables_path = Path(tables_json).resolve()
        if not tables_path.is_file():
            raise UserError(f"tables.json not found: {tables_path}")
        spider_key = (str(tables_path), tables_path.stat().st_mtime_ns)
    return _cached_catalog(str(path), path.stat().st_mtime_ns, db_id or path.stem, spider_key)


@functools.lru_cache(maxsize=1024)
def _cached_catalog(path: str, mtime_ns: int, db_id: str, spider_key: tuple[str, int] | None) -> Catalog:
    # mtime_ns is only part of the key: a database rebuilt in place is read again.
    check_database(path)  # an empty file would otherwise read as a database without tables
    tables = _read_sqlite(path)
    entry = _spider_entries(*spider_key).get(db_id) if spider_key else None
    if entry:
        try:
            tables = _with_spider_entry(tables, entry)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise UserError(f"{spider_key[0]}: the entry of {db_id!r} is not in Spider's tables.json format ({exc!r})") from None
    return Catalog(db_id=db_id, db_path=path, tables=tuple(tables))


def connect_read_only(db_path: str | os.PathLike) -> sqlite3.Connection:
    # The sandbox's URI: mode=ro, percent-encoded path, and immutable for a
    # WAL file, which mode=ro alone would give -wal and -shm companions.
    return sqlite3.connect(database_uri(Path(db_path).resolve()), uri=True)


def _read_sqlite(path: str) -> list[Table]:
    try:
        with contextlib.closing(connect_read_only(path)) as conn:
            names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite^_%' ESCAPE '^' ORDER BY rowid")]
            tables = [_read_table(conn, name) for name in names]
    except sqlite3.DatabaseError as exc:
        raise UserError(f"cannot read database {path}: {exc}") from None
    return _resolve_references(tables)


def _read_table(conn: sqlite3.Connection, name: str) -> Table:
    info = conn.execute("SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid", (name,)).fetchall()
    primary_key = tuple(column for column, _, position in sorted(info, key=lambda row: row[2]) if position)
    # One row per column pair; rows sharing an id form one (composite) key.
    # SQLite numbers keys last-declared first, so descending ids give declaration order.
    rows = conn.execute('SELECT id, "table", "from", "to" FROM pragma_foreign_key_list(?) ORDER BY id DESC, seq', (name,)).fetchall()
    grouped: dict[int, list[tuple]] = {}
    for key_id, *pair in rows:
        grouped.setdefault(key_id, []).append(pair)
    foreign_keys = tuple(
        ForeignKey(columns=tuple(pair[1] for pair in pairs), ref_table=pairs[0][0], ref_columns=tuple(pair[2] for pair in pairs))
        for pairs in grouped.values()
    )
    columns = tuple(Column(name=column, type=declared or "") for column, declared, _ in info)
    return Table(name=name, columns=columns, primary_key=primary_key, foreign_keys=foreign_keys)


def _resolve_references(tables: list[Table]) -> list[Table]:
    """Spell referenced tables as the catalog does; fill implicit targets with their primary key.

    ``REFERENCES people`` without columns means people's primary key, and
    PRAGMA reports its target columns as NULL.
    """
    by_lower = {table.name.lower(): table for table in tables}
    resolved = []
    for table in tables:
        keys = []
        for key in table.foreign_keys:
            target = by_lower.get(key.ref_table.lower())
            if target is not None:
                ref_columns = key.ref_columns if all(key.ref_columns) else target.primary_key
                key = ForeignKey(key.columns, target.name, ref_columns)
            keys.append(key)
        resolved.append(dataclasses.replace(table, foreign_keys=tuple(keys)))
    return resolved


@functools.lru_cache(maxsize=16)
def _spider_entries(path: str, mtime_ns: int) -> dict[str, dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as handle:
            entries = json.load(handle)
        return {entry["db_id"]: entry for entry in entries}
    except (OSError, json.JSONDecodeError, TypeError, KeyError) as exc:
        raise UserError(f"{path}: not a Spider tables.json (a JSON list of objects with db_id): {exc}") from None


def _with_spider_entry(tables: list[Table], entry: dict[str, Any]) -> list[Table]:
    """Add tables.json's natural names and the foreign keys it declares that the file lacks.

    Names are matched case-insensitively; tables.json tables or columns that
    the file does not have are ignored.
    """
    position = {table.name.lower(): index for index, table in enumerate(tables)}
    spelling = {(index, column.name.lower()): column.name for index, table in enumerate(tables) for column in table.columns}

    def locate(column_index: int) -> tuple[int, str] | None:
        """A tables.json column as (position of its table, column spelled as in the file)."""
        table_index, column = entry["column_names_original"][column_index]
        table = position.get(entry["table_names_original"][table_index].lower()) if table_index >= 0 else None
        spelled = spelling.get((table, column.lower()))
        return (table, spelled) if spelled else None

    natural_tables = {original.lower(): natural for original, natural in zip(entry["table_names_original"], entry["table_names"])}
    natural_columns = {found: natural for index, (_, natural) in enumerate(entry["column_names"]) if (found := locate(index))}

    keys = [list(table.foreign_keys) for table in tables]
    linked = {  # (table position, column, referenced table, referenced column), lowercased
        (index, column.lower(), key.ref_table.lower(), ref_column.lower())
        for index, table_keys in enumerate(keys)
        for key in table_keys
        for column, ref_column in zip(key.columns, key.ref_columns)
        if ref_column  # NULL when the referenced table does not exist
    }
    for source_index, target_index in entry["foreign_keys"]:
        source, target = locate(source_index), locate(target_index)
        if source is None or target is None:
            continue
        target_table = tables[target[0]].name
        link = (source[0], source[1].lower(), target_table.lower(), target[1].lower())
        if link not in linked:
            linked.add(link)
            keys[source[0]].append(ForeignKey((source[1],), target_table, (target[1],)))

    return [
        dataclasses.replace(
            table,
            columns=tuple(dataclasses.replace(c, natural_name=natural_columns.get((index, c.name), "")) for c in table.columns),
            foreign_keys=tuple(keys[index]),
            natural_name=natural_tables.get(table.name.lower(), ""),
        )
        for index, table in enumerate(tables)
    ]


# --------------------------------------------------------------------------- schema text

# Names SQLite refuses (or may refuse) as bare identifiers. Quoting one more
# name than needed is harmless; quoting one less breaks the model's SQL.
_RESERVED = frozenset(
    """ALL ALTER AND AS BETWEEN BY CASE CHECK COLLATE COLUMN CONSTRAINT CREATE CROSS DEFAULT
    DELETE DISTINCT DROP ELSE END ESCAPE EXCEPT EXISTS FOREIGN FROM FULL GLOB GROUP HAVING IN
    INDEX INNER INSERT INTERSECT INTO IS ISNULL JOIN LEFT LIKE LIMIT NATURAL NOT NOTNULL NULL
    OFFSET ON OR ORDER OUTER PRIMARY REFERENCES REGEXP RIGHT SELECT SET TABLE THEN TO UNION
    UNIQUE UPDATE USING VALUES WHEN WHERE WITH""".split()
)
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SAMPLE_CELL_CHARS = 50  # long texts are cut so that sample rows stay one short line


def quote_name(name: str) -> str:
    """``name`` as it must be written in SQLite: bare when it can be, else in double quotes."""
    if _PLAIN_NAME.fullmatch(name) and name.upper() not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def create_table_sql(table: Table, values: dict[str, list[str]] | None = None) -> str:
    """A CREATE TABLE statement with column types, PRIMARY KEY and FOREIGN KEY lines; ``values``
    (column -> example values) become ``-- e.g. ...`` comments."""

    def names(columns: Iterable[str]) -> str:
        return ", ".join(quote_name(column) for column in columns)

    values = values or {}
    lines = [f"{quote_name(c.name)} {c.type}".rstrip() for c in table.columns]
    if table.primary_key:
        lines.append(f"PRIMARY KEY ({names(table.primary_key)})")
    for key in table.foreign_keys:
        lines.append(f"FOREIGN KEY ({names(key.columns)}) REFERENCES {quote_name(key.ref_table)}({names(key.ref_columns)})")
    notes = [f" -- e.g. {', '.join(_sql_literal(v) for v in values[c.name])}" if values.get(c.name) else "" for c in table.columns]
    notes += [""] * (len(lines) - len(notes))
    last = len(lines) - 1
    body = "\n".join(f"  {line}{'' if i == last else ','}{note}" for i, (line, note) in enumerate(zip(lines, notes)))
    return f"CREATE TABLE {quote_name(table.name)} (\n{body}\n);"


def _sample_comment(catalog: Catalog, table: Table, limit: int) -> str:
    """The first ``limit`` rows of ``table`` as a SQL comment.

    Rows come in storage order, which is the same on every call for a given file.
    """
    with contextlib.closing(connect_read_only(catalog.db_path)) as conn:
        rows = conn.execute(f"SELECT * FROM {quote_name(table.name)} LIMIT ?", (limit,)).fetchall()
    lines = [f"Sample rows from {table.name}:", " | ".join(c.name for c in table.columns)]
    lines += [" | ".join(_cell(value) for value in row) for row in rows]
    return "/*\n" + "\n".join(lines) + "\n*/"


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    text = re.sub(r"[\r\n\t]", " ", str(value))
    return text if len(text) <= _SAMPLE_CELL_CHARS else text[: _SAMPLE_CELL_CHARS - 3] + "..."


SCHEMA_FORMATS = ("create_table", "compact", "seed")


def schema_text(catalog: Catalog, tables: Iterable[str] | None = None, sample_rows: int = 0,
                schema_format: str = "create_table", sample_values: int = 0, question: str = "") -> str:
    """The schema shown in a prompt, in one of ``SCHEMA_FORMATS``.

    - ``create_table``: one CREATE TABLE per table (types, PRIMARY KEY, FOREIGN KEY lines).
    - ``compact``: one line per table, ``t(col PK, col, ...)``, then one ``a.x -> b.y`` line per
      foreign key; about half the tokens, which matters for a small model on a CPU.
    - ``seed``: the reference project's ``Table t: col TYPE primary_key, ...`` lines, then
      ``Foreign keys:`` lines, so its prompts can be reproduced.

    ``tables`` (default: all) are matched case-insensitively and written in catalog order,
    whatever order they are given in, so the same selection always gives the same text.
    ``sample_rows`` > 0 adds that many rows per table as a ``/* ... */`` comment
    (create_table only). ``sample_values`` > 0 lists up to that many of the most frequent values
    of each category column (a text column with few distinct values) in the schema, and after
    the schema a line of the stored values the ``question`` mentions, with their column
    (``airport.country = 'Mexico'``), so a literal and its column can be copied from the prompt
    instead of guessed. Foreign keys are kept even when the referenced table is not shown.
    """
    if schema_format not in SCHEMA_FORMATS:
        raise UserError(f"unknown schema format {schema_format!r}; choose one of: {', '.join(SCHEMA_FORMATS)}")
    if sample_rows > 0 and schema_format != "create_table":
        raise UserError("sample_rows only goes with schema_format create_table; use sample_values with the others")
    wanted = set(catalog.table_names) if tables is None else {catalog.table(name).name for name in tables}
    shown = [table for table in catalog.tables if table.name in wanted]
    values = {table.name: _category_values(catalog, table, sample_values) for table in shown} if sample_values > 0 else {}
    if schema_format == "compact":
        text = _compact(shown, values)
    elif schema_format == "seed":
        text = _seed_layout(shown, values)
    else:
        blocks = []
        for table in shown:
            block = create_table_sql(table, values.get(table.name, {}))
            if sample_rows > 0:
                block += "\n" + _sample_comment(catalog, table, sample_rows)
            blocks.append(block)
        text = "\n\n".join(blocks)
    mentioned = _mentioned_values(catalog, shown, sample_values, question) if sample_values > 0 else []
    # After the schema, not inside it: the schema text stays the same for every question on a
    # database, so generation reads it once per batch (generation/hf.py's shared prefixes).
    return text + ("\n" + "Values in the question: " + "; ".join(mentioned) if mentioned else "")


def _values_note(values: list[str]) -> str:
    return " (" + ", ".join(_sql_literal(value) for value in values) + ")" if values else ""


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _foreign_key_lines(tables: list[Table], arrow: str) -> list[str]:
    lines = []
    for table in tables:
        for key in table.foreign_keys:
            for column, ref in zip(key.columns, key.ref_columns):
                lines.append(f"{quote_name(table.name)}.{quote_name(column)} {arrow} {quote_name(key.ref_table)}.{quote_name(ref)}")
    return lines


def _compact(tables: list[Table], values: dict[str, dict[str, list[str]]]) -> str:
    lines = []
    for table in tables:
        shown = values.get(table.name, {})
        columns = [quote_name(c.name) + (" PK" if c.name in table.primary_key else "") + _values_note(shown.get(c.name, []))
                   for c in table.columns]
        lines.append(f"{quote_name(table.name)}({', '.join(columns)})")
    return "\n".join(lines + _foreign_key_lines(tables, "->"))


def _seed_layout(tables: list[Table], values: dict[str, dict[str, list[str]]]) -> str:
    lines = []
    for table in tables:
        shown = values.get(table.name, {})
        columns = [" ".join(part for part in (quote_name(c.name), c.type, "primary_key" if c.name in table.primary_key else "") if part)
                   + _values_note(shown.get(c.name, [])) for c in table.columns]
        lines.append(f"Table {quote_name(table.name)}: {', '.join(columns)}")
    keys = _foreign_key_lines(tables, "=")
    return "\n".join(lines + (["Foreign keys:", *keys] if keys else []))


_TEXT_TYPES = ("CHAR", "CLOB", "TEXT")  # and columns without a declared type, which hold text too
_VALUES_PER_COLUMN = 5000  # distinct values read per column, to find the ones a question mentions
_CATEGORY_VALUES = 20  # a text column with at most this many distinct values is a category


def _category_values(catalog: Catalog, table: Table, limit: int) -> dict[str, list[str]]:
    """Per category column (a text column with few distinct values), its ``limit`` most frequent
    values: how they are spelled. A name column's arbitrary first values would only cost tokens."""
    return {column: values[:limit] for column, values in column_values(catalog.db_path, table.name).items()
            if len(values) <= _CATEGORY_VALUES}


def _mentioned_values(catalog: Catalog, tables: list[Table], limit: int, question: str) -> list[str]:
    """``table.column = 'value'`` for the stored text values ``question`` mentions (case-insensitive),
    longest first ("New York City" before "York"), at most ``limit`` per column."""
    asked = question.lower()
    found = []
    for table in tables:
        for column, values in column_values(catalog.db_path, table.name).items():
            mentioned = sorted((v for v in values if len(v) > 1 and _mentions(asked, v.lower())), key=len, reverse=True)
            found += [f"{quote_name(table.name)}.{quote_name(column)} = {_sql_literal(v)}" for v in mentioned[:limit]]
    return found


def _mentions(asked: str, value: str) -> bool:
    """``value`` occurs in ``asked`` as whole words ("Paris" in "from Paris?", not "Pa" in "Paris")."""
    start = asked.find(value)
    while start != -1:
        end = start + len(value)
        if (start == 0 or not asked[start - 1].isalnum()) and (end == len(asked) or not asked[end].isalnum()):
            return True
        start = asked.find(value, start + 1)
    return False


def column_values(db_path: str, table_name: str) -> dict[str, list[str]]:
    """Distinct short values of each text column, most frequent first (ties by value): cached
    per database file and modification time, since every prompt over the database reads them
    and a database rebuilt in place must be read again (as catalogs are)."""
    return _column_values(db_path, os.stat(db_path).st_mtime_ns, table_name)


@functools.lru_cache(maxsize=4096)
def _column_values(db_path: str, mtime_ns: int, table_name: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    with contextlib.closing(connect_read_only(db_path)) as conn:
        columns = [(row[1], (row[2] or "").upper()) for row in conn.execute(f"PRAGMA table_info({quote_name(table_name)})")]
        for name, declared in columns:
            if declared and not any(kind in declared for kind in _TEXT_TYPES):
                continue
            rows = conn.execute(
                f"SELECT {quote_name(name)} AS v, COUNT(*) AS n FROM {quote_name(table_name)} "
                f"WHERE typeof({quote_name(name)}) = 'text' AND length({quote_name(name)}) BETWEEN 1 AND ? "
                "GROUP BY v ORDER BY n DESC, v LIMIT ?", (_SAMPLE_CELL_CHARS, _VALUES_PER_COLUMN)).fetchall()
            if rows:
                out[name] = [value for value, _ in rows]
    return out


# --------------------------------------------------------------------------- gold tables


def gold_tables(sql: str, catalog: Catalog) -> set[str]:
    """The catalog tables that ``sql`` reads, spelled as in the catalog.

    Walks every scope sqlglot finds (subqueries, CTEs, set operations), so a
    CTE name is never taken for a table, yet a table that a CTE of the same
    name reads is. Aliases need no resolving: a source's table name is kept
    apart from its alias. Names the catalog lacks are dropped; SQL that does
    not parse gives the empty set.
    """
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
        names = {source.name for scope in traverse_scope(tree) for source in scope.sources.values() if isinstance(source, exp.Table)}
    except SqlglotError:
        return set()
    return {resolved for name in names if (resolved := catalog.resolve(name))}


# --------------------------------------------------------------------------- schema-recall stage


def recall_report(rows: list[tuple[set[str], list[str]]]) -> dict[str, Any]:
    """The recall numbers of (gold tables, selected tables) per example.

    ``recall_micro`` is found gold tables / all gold tables; ``recall_macro``
    averages each example's recall; ``full_recall`` is the share of examples
    whose every gold table was selected, ``any_recall`` of those with at least
    one. Examples whose gold SQL names no catalog table (it does not parse, or
    names a table the file lacks) are counted in ``examples_without_gold_tables``
    and left out of the averages.
    """
    scored = [(gold, set(selected)) for gold, selected in rows if gold]
    found = [len(gold & selected) for gold, selected in scored]
    gold_total = sum(len(gold) for gold, _ in scored)
    n = len(scored)
    return {
        "examples": len(rows),
        "examples_without_gold_tables": len(rows) - n,
        "gold_tables": gold_total,
        "recall_micro": sum(found) / gold_total if gold_total else 0.0,
        "recall_macro": sum(f / len(gold) for f, (gold, _) in zip(found, scored)) / n if n else 0.0,
        "full_recall": sum(f == len(gold) for f, (gold, _) in zip(found, scored)) / n if n else 0.0,
        "any_recall": sum(f > 0 for f in found) / n if n else 0.0,
        "avg_tables_selected": sum(len(selected) for _, selected in rows) / len(rows) if rows else 0.0,
    }


def missed_tables(example_id: str, db_id: str, gold_sql: str, gold: set[str], selected: list[str]) -> dict[str, Any]:
    """One per-example row: the gold query and tables, the selected tables and the gold tables missed."""
    return {"id": example_id, "db_id": db_id, "gold_sql": gold_sql, "gold_tables": sorted(gold), "selected": list(selected),
            "missed": sorted(gold - set(selected))}


def schema_recall(
    examples: list[Example],
    mode: str,
    top_k: int = DEFAULT_TOP_K,
    fk_hops: int = DEFAULT_FK_HOPS,
    tables_json: str | os.PathLike | None = None,
    progress: bool = False,
    per_example: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """How many gold tables ``mode`` selects, over ``examples`` (``recall_report``); with
    ``per_example``, a ``missed_tables`` row per example is appended to it."""
    rows = []
    for example in tqdm(examples, desc=f"schema-recall {mode}", file=sys.stderr, disable=not progress):
        catalog = load_catalog(example.db_path, tables_json, example.db_id)
        selected = select_tables(catalog, example.question, mode, top_k, fk_hops)
        gold = gold_tables(example.query, catalog)
        rows.append((gold, list(selected)))
        if per_example is not None:
            per_example.append({**missed_tables(example.id, example.db_id, example.query, gold, selected), "mode": mode})
    return {"mode": mode, "top_k": top_k, "fk_hops": fk_hops, **recall_report(rows)}


def trajectory_recall(folder: str | os.PathLike, per_example: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Gold-table recall of the schemas a finished rollout or eval actually showed the model:
    each trajectory's ``schema_tables`` against its gold query, on the run's own databases."""
    folder = Path(folder)
    try:
        run = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        lines = (folder / "trajectories.jsonl").read_text(encoding="utf-8").splitlines()
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{folder}: not a finished rollout or eval folder ({exc}); give the folder holding "
                        "run.json and trajectories.jsonl") from None
    examples = {e.id: e for e in load_examples(run["dataset_path"], run.get("db_root"), run.get("split", "train"))}
    tables_json = run.get("tables_json")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        trajectory = json.loads(line)
        example = examples.get(trajectory["id"])
        if example is None:
            raise UserError(f"{folder}/trajectories.jsonl:{number}: example {trajectory['id']!r} is not in "
                            f"{run['dataset_path']} ({run.get('split')}); was the dataset changed after the run?")
        gold = gold_tables(trajectory["gold"], load_catalog(example.db_path, tables_json, example.db_id))
        rows.append((gold, list(trajectory["schema_tables"])))
        if per_example is not None:
            per_example.append(missed_tables(trajectory["id"], trajectory["db_id"], trajectory["gold"], gold, trajectory["schema_tables"]))
    return {"trajectories": str(folder), "mode": run.get("schema_mode"), "top_k": run.get("top_k_tables"),
            "fk_hops": run.get("fk_hops"), **recall_report(rows)}


def _at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def make_parser(prog: str = "text2sql-mlops schema-recall") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Gold-table recall of schema retrieval modes, or of the schemas a "
                                     "rollout showed its model; prints one JSON object.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", help="JSON list, JSONL or Spider-layout folder of examples")
    source.add_argument("--trajectories", help="a finished rollout or eval folder: recall of the schemas its prompts showed")
    parser.add_argument("--db-root", help="folder holding <db_id>/<db_id>.sqlite (default: <dataset folder>/database)")
    parser.add_argument("--mode", nargs="+", choices=list(MODES), default=["bm25_fk"],
                        help="retrieval mode; several modes are compared in one report (default: %(default)s)")
    parser.add_argument("--top-k", type=_at_least(1), default=DEFAULT_TOP_K, help="tables a ranking mode picks (default: %(default)s)")
    parser.add_argument("--fk-hops", type=_at_least(0), default=DEFAULT_FK_HOPS, help="foreign-key hops for bm25_fk (default: %(default)s)")
    parser.add_argument("--tables", help="Spider tables.json: natural names and extra foreign keys")
    parser.add_argument("--split", default="train", help="split, when --dataset is a Spider-layout folder (default: %(default)s)")
    parser.add_argument("--out", type=output_file, help="also write the JSON report to this file (atomically)")
    parser.add_argument("--per_example", "--per-example", type=output_file, metavar="OUT.jsonl",
                        help="one row per example (and mode): gold tables, selected tables, missed tables")
    return parser


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops schema-recall") -> int:
    from ..core.fileio import write_jsonl

    args = make_parser(prog).parse_args(argv)
    rows: list[dict[str, Any]] = []
    if args.trajectories:
        report = trajectory_recall(args.trajectories, rows)
    else:
        examples = load_examples(args.dataset, args.db_root, args.split)
        # A bar only where a run takes long enough to wonder about it.
        reports = {mode: schema_recall(examples, mode, args.top_k, args.fk_hops, args.tables, progress=len(examples) >= 500,
                                       per_example=rows) for mode in dict.fromkeys(args.mode)}
        # One mode: its flat report (the pipeline's metrics file); several: side by side.
        report = next(iter(reports.values())) if len(reports) == 1 else {"modes": reports}
        report["dataset"] = str(args.dataset)
        report["tables_json"] = args.tables
    if args.out:
        write_json(args.out, report)
    if args.per_example:
        write_jsonl(args.per_example, rows)
    print(json.dumps(report, indent=2))
    return 0
