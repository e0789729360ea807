"""The database file: how it is opened read-only, and the check that it is a readable SQLite database.

Every reader of a database (the sandbox, catalogs, schema text, the dataset loader and the
scorer's checks) opens it through ``database_uri``, so none can create, write or grow a
file, nor leave ``-wal``/``-shm`` companions beside it.
"""

from __future__ import annotations

import os
import sqlite3
from functools import lru_cache
from pathlib import Path

from ..core.errors import UserError

SQLITE_MAGIC = b"SQLite format 3\x00"


def database_uri(path: Path) -> str:
    uri = path.as_uri() + "?mode=ro"
    # A WAL database opened with mode=ro makes SQLite create -wal and -shm
    # files. With no -wal file there is nothing to read from it, so open it
    # as immutable instead, which creates nothing.
    with open(path, "rb") as handle:
        header = handle.read(20)
    is_wal = len(header) == 20 and header.startswith(b"SQLite format 3\x00") and header[18] == 2
    if is_wal and not Path(f"{path}-wal").exists():
        uri += "&immutable=1"
    return uri


def connect_read_only(db_path: str | os.PathLike) -> sqlite3.Connection:
    # The sandbox's URI: mode=ro, percent-encoded path, and immutable for a
    # WAL file, which mode=ro alone would give -wal and -shm companions.
    conn = sqlite3.connect(database_uri(Path(db_path).resolve()), uri=True)
    conn.text_factory = decode_text
    return conn


def shadow_tables(conn: sqlite3.Connection) -> frozenset[str]:
    """The tables that hold an FTS5 or R*Tree table's data (``doc_idx``, ``box_node``): storage
    that prompts leave out and whose writes the sandbox lets such a table prepare."""
    try:
        return frozenset(name for (name,) in conn.execute("SELECT name FROM pragma_table_list WHERE type = 'shadow'"))
    except sqlite3.Error:  # SQLite before 3.37 has no table_list
        return frozenset()


def decode_text(raw: bytes) -> str:
    """A TEXT value as a string. Some databases store text that is not UTF-8 (Spider dev's
    wta_1 holds Latin-1 names), which sqlite3's default decoding turns into an error for the
    whole query; here each byte that does not decode becomes U+FFFD, so the rest stays readable
    and a reader can tell (and skip) a value no SQL literal could match."""
    return raw.decode("utf-8", "replace")


def check_database(path: str | os.PathLike) -> None:
    """Raise one ``UserError`` naming ``path`` unless it is a readable SQLite database.

    The one check every command runs before trusting a database file: SQLite itself opens
    an empty or foreign file without complaint and only fails (or, for an empty file, finds
    no tables) once a query runs, so a corrupt file would otherwise pass as an empty
    database. Opened read-only; the verdict is cached per path, size and modification time.
    """
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise UserError(f"cannot read database {path}: {exc.strerror}") from None
    problem = _database_problem(os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if problem:
        raise UserError(f"corrupt database {path}: {problem}; restore the file (or rebuild it, e.g. re-import the dataset)")


@lru_cache(maxsize=4096)
def _database_problem(path: str, size: int, mtime_ns: int) -> str | None:
    if size == 0:
        return "the file is empty (0 bytes)"
    try:
        with open(path, "rb") as handle:
            header = handle.read(100)
    except OSError as exc:
        return f"cannot read it ({exc.strerror})"
    if not header.startswith(SQLITE_MAGIC):
        return "not a SQLite database (bad header)"
    if len(header) < 100:
        return f"truncated: {size} bytes, shorter than the 100-byte SQLite header"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The header's page count is valid when its change counter matches (SQLite >= 3.7.0); with
    # a -wal file the latest pages may live there, so the main file's size proves nothing.
    if pages and header[24:28] == header[92:96] and not os.path.exists(f"{path}-wal") and size < pages * page_size:
        return f"truncated: the header says {pages * page_size} bytes, the file has {size}"
    try:
        conn = sqlite3.connect(database_uri(Path(path)), uri=True)
        try:
            conn.execute("PRAGMA schema_version").fetchone()
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return str(exc)
    return None
