"""Database catalogs: what one SQLite file declares, read once per file.

A ``Catalog`` is what one SQLite file declares (tables, columns, declared
types, primary and foreign keys), optionally enriched by Spider's tables.json:
natural-language names ("student name" for ``Sname``) and foreign keys that
Spider declares but the file lacks. Catalogs are cached per file and
modification time, and the file is only ever opened read-only.

Schema text for prompts is ``schema/render.py``; which tables a prompt shows is
``schema/retrieval.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from .database import check_database, connect_read_only, shadow_tables

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
    view: bool = False  # a view: queried like a table, so shown like one; it has no keys


@dataclass(frozen=True)
class Catalog:
    """The tables and views of one database, in the order SQLite created them."""

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
        if problem := spider_entry_problem(entry):
            raise UserError(f"{spider_key[0]}: the entry of {db_id!r} is not in Spider's tables.json format: {problem}; "
                            "fix that entry or remove it")
        tables = _with_spider_entry(tables, entry)
    return Catalog(db_id=db_id, db_path=path, tables=tuple(tables))


def _read_sqlite(path: str) -> list[Table]:
    try:
        with contextlib.closing(connect_read_only(path)) as conn:
            found = conn.execute("SELECT name, type = 'view' FROM sqlite_master WHERE type IN ('table', 'view') "
                                 "AND name NOT LIKE 'sqlite^_%' ESCAPE '^' ORDER BY rowid").fetchall()
            shadow = shadow_tables(conn)  # FTS5/R*Tree storage: shown, it crowds real tables out of a prompt
            tables = [table for name, view in found if name not in shadow and (table := _read_table(conn, name, bool(view)))]
    except sqlite3.DatabaseError as exc:
        raise UserError(f"cannot read database {path}: {exc}") from None
    return _resolve_references(tables)


def _read_table(conn: sqlite3.Connection, name: str, view: bool = False) -> Table | None:
    """``name``'s columns and keys; None for a view SQLite cannot expand (it names a table or
    column that is gone): no query can read it, so no prompt shows it. Generated columns count
    (``table_xinfo`` hidden 2 and 3); a virtual table's hidden columns (1) do not."""
    try:
        info = conn.execute("SELECT name, type, pk FROM pragma_table_xinfo(?) WHERE hidden != 1 ORDER BY cid", (name,)).fetchall()
    except sqlite3.OperationalError:
        if view:
            return None
        raise
    if view:
        return Table(name=name, columns=tuple(Column(name=column, type=declared or "") for column, declared, _ in info), view=True)
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
    """Spell referenced tables and columns as the catalog does; fill implicit targets with their
    primary key; drop a key that resolves to nothing.

    ``REFERENCES people`` without columns means people's primary key, and PRAGMA reports its
    target columns as NULL. SQLite accepts a key on a table or column that does not exist (or on
    a table without a primary key); shown to a model, such a key invents a join, so it goes.
    """
    by_lower = {table.name.lower(): table for table in tables}
    resolved = []
    for table in tables:
        keys = []
        for key in table.foreign_keys:
            target = by_lower.get(key.ref_table.lower())
            if target is None:
                continue
            ref_columns = _spelled(key.ref_columns if all(key.ref_columns) else target.primary_key, target)
            columns = _spelled(key.columns, table)
            if columns and ref_columns and len(columns) == len(ref_columns) == len(key.columns):
                keys.append(ForeignKey(columns, target.name, ref_columns))
        resolved.append(dataclasses.replace(table, foreign_keys=tuple(keys)))
    return resolved


def _spelled(names: tuple[str, ...], table: Table) -> tuple[str, ...] | None:
    """``names`` as ``table`` spells its columns (SQLite matches them case-insensitively), or None."""
    columns = {column.name.lower(): column.name for column in table.columns}
    spelled = tuple(columns.get((name or "").lower()) for name in names)
    return spelled if all(spelled) else None


@functools.lru_cache(maxsize=16)
def _spider_entries(path: str, mtime_ns: int) -> dict[str, dict[str, Any]]:
    try:
        with open(path, encoding="utf-8-sig") as handle:
            entries = json.load(handle)
        return {entry["db_id"]: entry for entry in entries}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError, KeyError) as exc:
        raise UserError(f"{path}: not a Spider tables.json (a JSON list of objects with db_id): {exc}") from None


_ENTRY_LISTS = ("table_names_original", "table_names", "column_names_original", "column_names", "foreign_keys")


def spider_entry_problem(entry: Any) -> str | None:
    """What makes one tables.json entry unreadable, or None. Only the shape of what the catalog
    reads is checked; a key that is absent is fine (an entry with only ``db_id`` and
    ``table_names_original`` adds nothing but is no error), a key of the wrong shape is not."""
    if not isinstance(entry, dict) or not isinstance(entry.get("db_id"), str):
        return "not an object with a string db_id"
    for key in _ENTRY_LISTS:
        if not isinstance(entry.get(key, []), list):
            return f"{key} is {type(entry[key]).__name__}, not a list"
    table_count = len(entry.get("table_names_original", []))
    for key in ("table_names_original", "table_names"):
        if not all(isinstance(name, str) for name in entry.get(key, [])):
            return f"{key} holds something other than table names"
    for key in ("column_names_original", "column_names"):
        for index, column in enumerate(entry.get(key, [])):
            if not (isinstance(column, list) and len(column) == 2 and type(column[0]) is int
                    and -1 <= column[0] < table_count and isinstance(column[1], str)):
                return f"{key}[{index}] is {column!r}, not [index into table_names_original (or -1), column name]"
    column_count = len(entry.get("column_names_original", []))
    for index, key in enumerate(entry.get("foreign_keys", [])):
        if not (isinstance(key, list) and len(key) == 2 and all(type(i) is int and 0 <= i < column_count for i in key)):
            return f"foreign_keys[{index}] is {key!r}, not [column index, column index] into column_names_original"
    return None


def _with_spider_entry(tables: list[Table], entry: dict[str, Any]) -> list[Table]:
    """Add tables.json's natural names and the foreign keys it declares that the file lacks.

    Names are matched case-insensitively; tables.json tables or columns that
    the file does not have are ignored. ``entry`` has passed ``spider_entry_problem``.
    """
    position = {table.name.lower(): index for index, table in enumerate(tables)}
    spelling = {(index, column.name.lower()): column.name for index, table in enumerate(tables) for column in table.columns}
    table_names, columns = entry.get("table_names_original", []), entry.get("column_names_original", [])

    def locate(column_index: int) -> tuple[int, str] | None:
        """A tables.json column as (position of its table, column spelled as in the file)."""
        if column_index >= len(columns):  # column_names may list more columns than column_names_original
            return None
        table_index, column = columns[column_index]
        table = position.get(table_names[table_index].lower()) if table_index >= 0 else None
        spelled = spelling.get((table, column.lower()))
        return (table, spelled) if spelled else None

    natural_tables = {original.lower(): natural for original, natural in zip(table_names, entry.get("table_names", []))}
    natural_columns = {found: natural for index, (_, natural) in enumerate(entry.get("column_names", [])) if (found := locate(index))}

    keys = [list(table.foreign_keys) for table in tables]
    linked = {  # (table position, column, referenced table, referenced column), lowercased
        (index, column.lower(), key.ref_table.lower(), ref_column.lower())
        for index, table_keys in enumerate(keys)
        for key in table_keys
        for column, ref_column in zip(key.columns, key.ref_columns)
        if ref_column  # NULL when the referenced table does not exist
    }
    for source_index, target_index in entry.get("foreign_keys", []):
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
