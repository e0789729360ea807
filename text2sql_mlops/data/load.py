"""Dataset ingestion: Spider JSON, JSONL and Spider-layout folders -> ``Example`` records.

Accepted inputs
- a JSON list of objects (Spider's ``train_spider.json`` / ``dev.json``),
- JSONL (one object per line),
- a Spider-layout folder (``train_spider.json`` [+ ``train_others.json``] or
  ``dev.json``, ``tables.json``, ``database/<db_id>/<db_id>.sqlite``).

Field aliases: question|utterance|nl; query|sql|gold_sql;
db_path|database_path|sqlite_path, or db_id + db_root resolved as
``{db_root}/{db_id}/{db_id}.sqlite`` or ``{db_root}/{db_id}.sqlite``.

Every problem is reported as one ``UserError`` line naming the file, the line or
index, and the field, so the CLI can print it and exit non-zero.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..core.records import Example, example_id
from ..sql.database import check_database

QUESTION_KEYS = ("question", "utterance", "nl")
SQL_KEYS = ("query", "sql", "gold_sql")
DB_PATH_KEYS = ("db_path", "database_path", "sqlite_path")
SPLIT_FILES = {"train": ("train_spider.json", "train_others.json"), "dev": ("dev.json",), "test_same_db": ("test_same_db.json",),
               "test": ("test.json",)}
# Spider's test release (spider_data.zip) keeps the test split's databases and schemas apart
# from the others: test.json is read with test_database/ and test_tables.json beside it.
OWN_SCHEMAS = {"test.json": ("test_database", "test_tables.json")}


# --------------------------------------------------------------------------- loading


def load_examples(path: str | os.PathLike, db_root: str | os.PathLike | None = None, split: str = "train") -> list[Example]:
    """Load every example of ``path`` with its database resolved to an existing SQLite file.

    ``path`` is a JSON list, a JSONL file or a Spider-layout folder (then ``split``
    picks ``train`` or ``dev``). ``db_root`` defaults to ``<folder>/database`` when
    the dataset sits in a Spider layout.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"dataset not found: {path}")
    if path.is_dir():
        files = spider_split_files(path, split)
        examples = [example for file in files for example in _load_file(file, db_root or database_folder(file) or path / "database")]
        where = f"{path} (split {split!r}: {', '.join(file.name for file in files)})"
    else:
        examples, where = _load_file(path, db_root), str(path)
    if not examples:
        # Every metric over no examples is 0 or undefined: a run over nothing is a mistake, not a result.
        raise UserError(f"{where}: the dataset holds no examples; check the file")
    return examples


def _load_file(path: Path, db_root: str | os.PathLike | None) -> list[Example]:
    return [_to_example(record, where, path, db_root or database_folder(path)) for where, record in read_records(path)]


def database_folder(dataset_file: Path) -> Path | None:
    """The database folder beside a dataset file: its own (test.json's test_database/), else database/."""
    own = OWN_SCHEMAS.get(dataset_file.name)
    for name in (*(own[:1] if own else ()), "database"):
        if (dataset_file.parent / name).is_dir():
            return dataset_file.parent / name
    return None


def default_tables_json(dataset_path: str | os.PathLike, split: str = "train") -> str | None:
    """The tables.json beside a dataset (in its folder, or beside its file; test.json's own
    test_tables.json), which every command reading the dataset's schemas uses unless told
    otherwise: its natural names and the foreign keys many Spider SQLite files do not declare."""
    path = Path(dataset_path)
    folder, names = (path, SPLIT_FILES.get(split, ())) if path.is_dir() else (path.parent, (path.name,))
    for name in names:
        own = OWN_SCHEMAS.get(name)
        if own and (folder / own[1]).is_file():
            return str(folder / own[1])
    candidate = folder / "tables.json"
    return str(candidate) if candidate.is_file() else None


def take(items: list, offset: int = 0, limit: int | None = None, spread: bool = False) -> list:
    """``items[offset:offset + limit]``, or with ``spread`` the ``limit`` items at evenly spaced
    positions of ``items[offset:]`` (the first one included).

    Spider-layout splits list each database's questions together, so the first N questions
    of a split come from one or two databases; spread takes them from all of them."""
    rest = items[offset:]
    if limit is None or limit >= len(rest):
        return rest
    if not spread:
        return rest[:limit]
    return [rest[(k * len(rest)) // limit] for k in range(limit)]


def spider_split_files(folder: Path, split: str) -> list[Path]:
    if split not in SPLIT_FILES:
        raise UserError(f"unknown split {split!r} for {folder}; use one of: {', '.join(SPLIT_FILES)}")
    files = [folder / name for name in SPLIT_FILES[split] if (folder / name).is_file()]
    if not files:
        wanted = " or ".join(SPLIT_FILES[split])
        raise UserError(f"{folder}: no {wanted} found for split {split!r}; is this a Spider-layout folder?")
    return files


def read_records(path: Path) -> Iterable[tuple[str, Any]]:
    """Yield (location, record) pairs; the location reads like ``file[index 3]`` or ``file:4``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start}); save the dataset as UTF-8 JSON or JSONL") from None
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
        for index, record in enumerate(data):
            yield f"{path}[index {index}]", record
        return
    if stripped.startswith("{") and not _looks_like_jsonl(stripped):
        raise UserError(f"{path}: expected a JSON list of examples or JSONL (one object per line), got one JSON object")
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{lineno}: invalid JSON ({exc.msg}); expected one JSON object per line") from None
        yield f"{path}:{lineno}", record


def _looks_like_jsonl(text: str) -> bool:
    first_line = text.split("\n", 1)[0]
    try:
        return isinstance(json.loads(first_line), dict)
    except json.JSONDecodeError:
        return False


def _field(record: dict, keys: tuple[str, ...], where: str, required: bool = True) -> str | None:
    for key in keys:
        if key in record and record[key] is not None:
            value = record[key]
            if not isinstance(value, str) or not value.strip():
                hint = " (WikiSQL's structured 'sql' must be converted to SQL text first)" if isinstance(value, dict) else ""
                got = "an empty string" if isinstance(value, str) else type(value).__name__
                raise UserError(f"{where}: field {key!r} must be a non-empty string, got {got}{hint}")
            return value
    if required:
        raise UserError(f"{where}: missing field {keys[0]!r} (accepted names: {', '.join(keys)})")
    return None


def _to_example(record: Any, where: str, dataset: Path, db_root: str | os.PathLike | None) -> Example:
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a JSON object, got {type(record).__name__}")
    question = _field(record, QUESTION_KEYS, where)
    query = _field(record, SQL_KEYS, where)
    explicit = _field(record, DB_PATH_KEYS, where, required=False)
    db_id = record.get("db_id")
    if db_id is not None and (not isinstance(db_id, str) or not db_id.strip()):
        raise UserError(f"{where}: field 'db_id' must be a non-empty string")
    if explicit is None and db_id is None:
        raise UserError(f"{where}: missing field 'db_id' (or a database path: {', '.join(DB_PATH_KEYS)})")
    if explicit is not None:
        db_path = _resolve_explicit(explicit, str(dataset.parent), str(db_root) if db_root else None, where)
        db_id = db_id or Path(db_path).stem
    else:
        if db_root is None:
            raise UserError(f"{where}: db_id {db_id!r} needs a database root; pass --db-root DIR (the folder that holds <db_id>/<db_id>.sqlite)")
        db_path = resolve_db_path(db_id, str(db_root), where)
    known = set(QUESTION_KEYS + SQL_KEYS + DB_PATH_KEYS + ("db_id",))
    extra = {k: v for k, v in record.items() if k not in known and k not in ("query_toks", "query_toks_no_value", "question_toks", "sql")}
    return Example(id=example_id(db_id, question, query), db_id=db_id, question=question, query=query, db_path=db_path, extra=extra)


def resolve_db_path(db_id: str, db_root: str, where: str = "") -> str:
    """``{db_root}/{db_id}/{db_id}.sqlite`` or ``{db_root}/{db_id}.sqlite``, checked to be a
    readable SQLite database; the not-found error names both candidates."""
    check_db_id(db_id, where)
    found = _find_db(db_id, db_root)
    if isinstance(found, str):
        check_database(found)
        return found
    prefix = f"{where}: " if where else ""
    raise UserError(f"{prefix}database for db_id {db_id!r} not found; tried: {', '.join(found)}")


def check_db_id(db_id: str, where: str = "") -> None:
    """A db_id names one folder (or file stem) under the database root, never a path: one with a
    separator, ``..`` or a drive would resolve outside ``--db-root``."""
    if db_id in (".", "..") or any(sep in db_id for sep in ("/", "\\", "\0")) or os.path.isabs(db_id) or os.path.splitdrive(db_id)[0]:
        prefix = f"{where}: " if where else ""
        raise UserError(f"{prefix}db_id {db_id!r} is not a plain database name (it holds a path separator, '..' or a drive), "
                        "so it would resolve outside the database root; use the name of a folder under --db-root")


def db_candidates(db_id: str, db_root: str | os.PathLike) -> tuple[str, str]:
    """Where a ``db_id`` lives under a database root, in the order looked up (Spider's layout first)."""
    return os.path.join(db_root, db_id, f"{db_id}.sqlite"), os.path.join(db_root, f"{db_id}.sqlite")


@lru_cache(maxsize=4096)
def _find_db(db_id: str, db_root: str) -> str | tuple[str, ...]:
    # Cached: thousands of examples share a few hundred databases.
    candidates = db_candidates(db_id, db_root)
    for candidate in candidates:
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    return candidates


def _resolve_explicit(given: str, dataset_dir: str, db_root: str | None, where: str) -> str:
    tried = [given] if os.path.isabs(given) else [given, os.path.join(dataset_dir, given)] + ([os.path.join(db_root, given)] if db_root else [])
    for candidate in tried:
        if os.path.isfile(candidate):
            check_database(candidate)
            return os.path.abspath(candidate)
    raise UserError(f"{where}: database file not found; tried: {', '.join(dict.fromkeys(tried))}")
