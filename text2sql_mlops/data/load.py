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

import argparse
import json
import os
import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..core.fileio import atomic_folder, check_output_folder, output_file, output_folder, output_folder_type, write_json
from ..core.records import Example, example_id
from ..sql.database import check_database

QUESTION_KEYS = ("question", "utterance", "nl")
SQL_KEYS = ("query", "sql", "gold_sql")
DB_PATH_KEYS = ("db_path", "database_path", "sqlite_path")
SPLIT_FILES = {"train": ("train_spider.json", "train_others.json"), "dev": ("dev.json",), "test_same_db": ("test_same_db.json",)}


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
        db_root = Path(db_root) if db_root else path / "database"
        examples = [example for file in files for example in _load_file(file, db_root)]
        where = f"{path} (split {split!r}: {', '.join(file.name for file in files)})"
    else:
        examples, where = _load_file(path, db_root), str(path)
    if not examples:
        # Every metric over no examples is 0 or undefined: a run over nothing is a mistake, not a result.
        raise UserError(f"{where}: the dataset holds no examples; check the file")
    return examples


def _load_file(path: Path, db_root: str | os.PathLike | None) -> list[Example]:
    if db_root is None and (path.parent / "database").is_dir():
        db_root = path.parent / "database"
    return [_to_example(record, where, path, db_root) for where, record in read_records(path)]


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
                raise UserError(f"{where}: field {key!r} must be a non-empty string, got {type(value).__name__}{hint}")
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


# --------------------------------------------------------------------------- Spider layout


@dataclass
class LayoutSummary:
    root: str
    databases: int
    tables_json_dbs: int
    splits: dict[str, int]
    questions_per_db: dict[str, int]
    size_mb: float

    def lines(self) -> list[str]:
        splits = ", ".join(f"{name}: {count} questions" for name, count in self.splits.items())
        return [f"Spider layout at {self.root}", f"  databases: {self.databases} (tables.json describes {self.tables_json_dbs})", f"  {splits}", f"  size: {self.size_mb:.1f} MB"]


def validate_spider_layout(root: str | os.PathLike) -> LayoutSummary:
    """Check a Spider-layout folder: files present, every db_id has a SQLite database, counts."""
    root = Path(root)
    tables_path = root / "tables.json"
    if not tables_path.is_file():
        raise UserError(f"{root}: tables.json not found; a Spider-layout folder holds tables.json, train_spider.json and/or dev.json, and database/")
    database_dir = root / "database"
    if not database_dir.is_dir():
        raise UserError(f"{root}: database/ folder not found (expected database/<db_id>/<db_id>.sqlite)")
    try:
        tables = json.loads(tables_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{tables_path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(tables, list):
        raise UserError(f"{tables_path}: expected a list of database schemas")
    for index, entry in enumerate(tables):
        if not isinstance(entry, dict) or "db_id" not in entry:
            raise UserError(f"{tables_path}[index {index}]: missing field 'db_id'")
    splits: dict[str, int] = {}
    per_db: Counter[str] = Counter()
    for split in SPLIT_FILES:
        files = [root / name for name in SPLIT_FILES[split] if (root / name).is_file()]
        if not files:
            continue
        examples = [ex for file in files for ex in load_examples(file, database_dir)]
        splits[split] = len(examples)
        per_db.update(ex.db_id for ex in examples)
    if not splits:
        raise UserError(f"{root}: neither train_spider.json nor dev.json found")
    databases = sorted(p for p in database_dir.iterdir() if p.is_dir() and (p / f"{p.name}.sqlite").is_file())
    for db in databases:
        check_database(db / f"{db.name}.sqlite")
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    return LayoutSummary(str(root), len(databases), len(tables), splits, dict(sorted(per_db.items())), size / 1e6)


def _find_layout_root(folder: Path) -> Path:
    """The folder holding tables.json: ``folder`` itself or one level below (zips wrap a ``spider/``)."""
    if (folder / "tables.json").is_file():
        return folder
    children = [child for child in sorted(folder.iterdir()) if child.is_dir() and (child / "tables.json").is_file()]
    if len(children) == 1:
        return children[0]
    raise UserError(f"{folder}: no tables.json found here or one folder below; is this the Spider dataset?")


def _safe_extract(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for member in zf.namelist():
            target = (dest / member).resolve()
            if not str(target).startswith(str(dest.resolve()) + os.sep) and target != dest.resolve():
                raise UserError(f"{archive}: member {member!r} would extract outside the target folder; refusing")
        zf.extractall(dest)


def import_spider(source: str | os.PathLike, dest: str | os.PathLike = "data/spider", force: bool = False) -> LayoutSummary:
    """Validate a Spider folder or zip and place it at ``dest`` (atomically)."""
    source, dest = Path(source), Path(dest)
    if not source.exists():
        raise UserError(f"{source}: not found; pass the Spider folder or spider.zip")
    if dest.exists() and not force:
        raise UserError(f"{dest} already exists; pass --force to replace it")
    check_output_folder(dest)
    with tempfile.TemporaryDirectory(prefix="spider-import-", dir=dest.parent if dest.parent.exists() else None) as scratch:
        if source.is_file():
            if not zipfile.is_zipfile(source):
                raise UserError(f"{source}: not a folder and not a zip archive")
            _safe_extract(source, Path(scratch))
            root = _find_layout_root(Path(scratch))
        else:
            root = _find_layout_root(source)
        validate_spider_layout(root)
        with atomic_folder(dest) as staged:
            if source.is_file():
                shutil.move(str(root), staged)
            else:
                shutil.copytree(root, staged)
    summary = validate_spider_layout(dest)
    return summary


# --------------------------------------------------------------------------- CLI


def make_parser(prog: str = "text2sql-mlops data") -> argparse.ArgumentParser:
    from ..core.cliutil import ArgParser
    from .demo.build import built_here

    parser = ArgParser(prog=prog, description="Import, validate and generate datasets.")
    sub = parser.add_subparsers(dest="action", required=True)

    imp = sub.add_parser("import-spider", help="validate a Spider folder or zip and place it under data/spider/")
    imp.add_argument("path", help="Spider folder or spider.zip")
    imp.add_argument("--dest", default="data/spider", type=output_folder,
                     help="where to place it (default: data/spider)")
    imp.add_argument("--force", action="store_true", help="replace an earlier import at --dest (never a folder of yours)")

    val = sub.add_parser("validate", help="load a dataset, resolve every database, print a summary (optionally as JSON)")
    val.add_argument("dataset", help="JSON list, JSONL or Spider-layout folder")
    val.add_argument("--db-root", "--db_root", dest="db_root", help="folder holding <db_id>/<db_id>.sqlite")
    val.add_argument("--split", default="train", choices=sorted(SPLIT_FILES), help="split of a Spider-layout folder")
    val.add_argument("--out", type=output_file, help="write the summary as JSON here")

    demo = sub.add_parser("demo", help="generate the embedded demo dataset (Spider layout, deterministic)")
    demo.add_argument("--out", default="data/demo", type=output_folder_type(built_here),
                      help="output folder, replaced as a whole (default: data/demo)")
    demo.add_argument("--seed", type=int, default=0)
    return parser


def dataset_summary(examples: list[Example]) -> dict[str, Any]:
    per_db = Counter(ex.db_id for ex in examples)
    ids = [ex.id for ex in examples]
    return {
        "examples": len(examples),
        "databases": len(per_db),
        "duplicate_ids": len(ids) - len(set(ids)),
        "questions_per_db": dict(sorted(per_db.items())),
    }


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops data") -> int:
    args = make_parser(prog).parse_args(argv)
    if args.action == "import-spider":
        summary = import_spider(args.path, args.dest, force=args.force)
        print("\n".join(summary.lines()))
    elif args.action == "validate":
        summary = dataset_summary(load_examples(args.dataset, args.db_root, args.split))
        if args.out:
            write_json(args.out, summary)
        print(json.dumps({k: v for k, v in summary.items() if k != "questions_per_db"}))
    elif args.action == "demo":
        from .demo.build import build_demo

        summary = build_demo(args.out, seed=args.seed)
        print(json.dumps(summary, indent=2))
    return 0
