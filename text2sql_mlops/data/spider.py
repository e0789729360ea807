"""The Spider layout: checking a Spider folder and importing it (a folder or spider.zip).

A Spider-layout folder holds ``tables.json``, ``train_spider.json`` [+ ``train_others.json``]
and/or ``dev.json``, and ``database/<db_id>/<db_id>.sqlite``. ``data import-spider``
validates one and places it atomically; ``validate_spider_layout`` counts what it holds.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import UserError
from ..core.fileio import MARKER, atomic_folder, check_output_folder, holds_only_files
from ..sql.catalog import spider_entry_problem
from ..sql.database import check_database
from .load import SPLIT_FILES, database_folder, load_examples


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


def read_tables_json(path: str | os.PathLike, db_ids: set[str] | None = None) -> list[dict]:
    """The entries of a Spider tables.json, each checked as the catalog will read it (only those
    of ``db_ids`` when given): a bad entry is found when the data is checked, not by the rollout
    that first opens its database."""
    path = Path(path)
    try:
        entries = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    if not isinstance(entries, list):
        raise UserError(f"{path}: expected a list of database schemas")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or "db_id" not in entry:
            raise UserError(f"{path}[index {index}]: missing field 'db_id'")
        if (not isinstance(entry["db_id"], str) or db_ids is None or entry["db_id"] in db_ids) and (problem := spider_entry_problem(entry)):
            raise UserError(f"{path}[index {index}] ({entry['db_id']!r}): {problem}; fix that entry or remove it")
    return entries


def validate_spider_layout(root: str | os.PathLike) -> LayoutSummary:
    """Check a Spider-layout folder: files present, every db_id has a SQLite database, counts."""
    root = Path(root)
    tables_path = root / "tables.json"
    if not tables_path.is_file():
        raise UserError(f"{root}: tables.json not found; a Spider-layout folder holds tables.json, train_spider.json and/or dev.json, and database/")
    database_dir = root / "database"
    if not database_dir.is_dir():
        raise UserError(f"{root}: database/ folder not found (expected database/<db_id>/<db_id>.sqlite)")
    tables = read_tables_json(tables_path)
    splits: dict[str, int] = {}
    per_db: Counter[str] = Counter()
    for split in SPLIT_FILES:
        files = [root / name for name in SPLIT_FILES[split] if (root / name).is_file()]
        if not files:
            continue
        examples = [ex for file in files for ex in load_examples(file, database_folder(file) or database_dir)]
        splits[split] = len(examples)
        per_db.update(ex.db_id for ex in examples)
    if not splits:
        raise UserError(f"{root}: neither train_spider.json nor dev.json found")
    databases = sorted(p for p in database_dir.iterdir() if p.is_dir() and (p / f"{p.name}.sqlite").is_file())
    for db in databases:
        check_database(db / f"{db.name}.sqlite")
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    return LayoutSummary(str(root), len(databases), len(tables), splits, dict(sorted(per_db.items())), size / 1e6)


def _find_layout_root(folder: Path, shown: Path | None = None) -> Path:
    """The folder holding tables.json: ``folder`` itself or one level below (zips wrap a ``spider/``).
    ``shown``: what the user gave, named in the error (a zip, not the folder it was unpacked to)."""
    if (folder / "tables.json").is_file():
        return folder
    children = [child for child in sorted(folder.iterdir()) if child.is_dir() and (child / "tables.json").is_file()]
    if len(children) == 1:
        return children[0]
    raise UserError(f"{shown or folder}: no tables.json found here or one folder below; is this the Spider dataset?")


def _safe_extract(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                info.filename = _member_name(info)
                target = (dest / info.filename).resolve()
                if not str(target).startswith(str(dest.resolve()) + os.sep) and target != dest.resolve():
                    raise UserError(f"{archive}: member {info.filename!r} would extract outside the target folder; refusing")
                zf.extract(info, dest)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise UserError(f"{archive}: damaged or unsupported zip ({exc}); download it again, or unzip it and pass the folder") from None


def _member_name(info: zipfile.ZipInfo) -> str:
    """A member's name as its archiver meant it. Info-ZIP's `zip` (Linux) stores UTF-8 names
    without the UTF-8 flag, which Python then reads as cp437: ``café`` became ``cafÃ©`` and its
    database was not found. Names that are valid UTF-8 once re-encoded are taken as UTF-8."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


IMPORTED_FILES = ".text2sql-mlops-files"  # what an import placed: one path per line, relative to the folder


def imported_here(folder: Path) -> bool:
    """A folder `data import-spider` wrote (its marker and the list of files it placed) that
    holds nothing else: a Spider copy of the user's own, or an import they added notes, runs or
    databases to, is theirs, and ``--force`` does not replace it."""
    listed = folder / IMPORTED_FILES
    if not ((folder / MARKER).is_file() and listed.is_file()):
        return False
    return holds_only_files(folder, [IMPORTED_FILES, *listed.read_text(encoding="utf-8").splitlines()])


def import_spider(source: str | os.PathLike, dest: str | os.PathLike = "data/spider", force: bool = False) -> LayoutSummary:
    """Validate a Spider folder or zip and place it at ``dest`` (atomically)."""
    source, dest = Path(source), Path(dest)
    if not source.exists():
        raise UserError(f"{source}: not found; pass the Spider folder or spider.zip")
    if dest.exists() and not force:
        raise UserError(f"{dest} already exists; pass --force to replace it")
    check_output_folder(dest, imported_here)
    with tempfile.TemporaryDirectory(prefix="spider-import-", dir=dest.parent if dest.parent.exists() else None) as scratch:
        if source.is_file():
            if not zipfile.is_zipfile(source):
                raise UserError(f"{source}: not a folder and not a zip archive")
            _safe_extract(source, Path(scratch))
            root = _find_layout_root(Path(scratch), shown=source)
        else:
            root = _find_layout_root(source)
        try:
            validate_spider_layout(root)
        except UserError as exc:  # name the zip, not the temporary folder it was unpacked to
            raise UserError(str(exc).replace(str(scratch), f"{source}:")) from None
        with atomic_folder(dest, imported_here, list_files=False) as staged:
            if source.is_file():
                shutil.move(str(root), staged)
            else:
                shutil.copytree(root, staged)
            placed = sorted(path.relative_to(staged).as_posix() for path in staged.rglob("*") if not path.is_dir())
            (staged / IMPORTED_FILES).write_text("".join(f"{name}\n" for name in placed), encoding="utf-8")
    summary = validate_spider_layout(dest)
    return summary
