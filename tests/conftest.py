"""Shared fixtures: small real SQLite databases, the optional Spider train split, the demo
dataset and the tiny random model (each built once)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPIDER_TRAIN = REPO.parent / "shared" / "spider-train"


@pytest.fixture
def spider_train() -> Path:
    """The real Spider train split (139 databases); users' machines won't have it."""
    if not (SPIDER_TRAIN / "train_spider.json").is_file():
        pytest.skip(f"Spider train split not found at {SPIDER_TRAIN} (only on the project's machines)")
    return SPIDER_TRAIN


def make_db(path: Path, script: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.executescript(script)
    conn.commit()
    conn.close()
    return path


CONCERT_SQL = """
CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, country TEXT, age INTEGER);
CREATE TABLE concert (concert_id INTEGER PRIMARY KEY, concert_name TEXT, year INTEGER);
CREATE TABLE singer_in_concert (concert_id INTEGER REFERENCES concert(concert_id),
                                singer_id INTEGER REFERENCES singer(singer_id),
                                PRIMARY KEY (concert_id, singer_id));
INSERT INTO singer VALUES (1, 'Joe', 'France', 52), (2, 'Timbaland', 'United States', 32), (3, 'Justin', 'France', 29);
INSERT INTO concert VALUES (1, 'Auditions', 2014), (2, 'Super bootcamp', 2015);
INSERT INTO singer_in_concert VALUES (1, 1), (1, 2), (2, 3);
"""


# CONCERT_SQL's entry in Spider's tables.json format (commands read tables.json beside a dataset).
CONCERT_TABLES_ENTRY = {
    "db_id": "concert_singer",
    "table_names_original": ["singer", "concert", "singer_in_concert"],
    "table_names": ["singer", "concert", "singer in concert"],
    "column_names_original": [[-1, "*"], [0, "singer_id"], [0, "name"], [0, "country"], [0, "age"], [1, "concert_id"],
                              [1, "concert_name"], [1, "year"], [2, "concert_id"], [2, "singer_id"]],
    "column_names": [[-1, "*"], [0, "singer id"], [0, "name"], [0, "country"], [0, "age"], [1, "concert id"],
                     [1, "concert name"], [1, "year"], [2, "concert id"], [2, "singer id"]],
    "column_types": ["text", "number", "text", "text", "number", "number", "text", "number", "number", "number"],
    "primary_keys": [1, 5, 8],
    "foreign_keys": [[8, 5], [9, 1]],
}


@pytest.fixture
def spider_layout(tmp_path: Path) -> Path:
    """A minimal Spider-layout folder: one database, train and dev files, tables.json."""
    import json

    root = tmp_path / "spider"
    make_db(root / "database" / "concert_singer" / "concert_singer.sqlite", CONCERT_SQL)
    train = [
        {"db_id": "concert_singer", "question": "How many singers are there?", "query": "SELECT count(*) FROM singer"},
        {"db_id": "concert_singer", "question": "List singer names.", "query": "SELECT name FROM singer"},
    ]
    dev = [{"db_id": "concert_singer", "question": "What is the average age?", "query": "SELECT avg(age) FROM singer"}]
    (root / "train_spider.json").write_text(json.dumps(train))
    (root / "dev.json").write_text(json.dumps(dev))
    (root / "tables.json").write_text(json.dumps([CONCERT_TABLES_ENTRY]))
    return root


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory) -> Path:
    """The embedded demo dataset (Spider layout: train on 4 databases, dev on 2 others), built once.

    Read-only for tests: copy it before changing anything.
    """
    from text2sql_mlops.data.demo.build import build_demo

    root = tmp_path_factory.mktemp("demo") / "demo"
    build_demo(root)
    return root


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module of tiny-model tests: the tiny model's matrices are too
    small to share between threads, and when other processes busy the cores, OpenMP threads
    mostly wait for each other (10x slower). Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """The tiny random Llama of ``tiny_model.py``, built once for the whole run, with room for a
    demo-schema prompt in its tiny vocabulary (4096 positions: rotary, so no more weights).

    Read-only for tests: copy it before writing into it (test_pipeline does).
    """
    from tiny_model import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "llama", max_positions=4096)


@pytest.fixture(scope="session")
def tiny_lora(tiny_llama, tmp_path_factory) -> Path:
    """A LoRA adapter on ``tiny_llama`` (every linear layer, r=4) with random, non-zero A and B
    (peft starts B at zero), so it changes the model's outputs. Read-only for tests."""
    from tiny_model import build_tiny_lora

    return build_tiny_lora(tmp_path_factory.mktemp("tiny") / "lora", tiny_llama, seed=1)


@pytest.fixture
def fake_openai():
    """Start fake OpenAI-compatible servers (``fake_openai.FakeOpenAI(**options)``); all close at the end."""
    from fake_openai import FakeOpenAI

    servers = []

    def start(**options) -> FakeOpenAI:
        servers.append(FakeOpenAI(**options))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def virtual_tables_db(path: Path) -> Path:
    """A database with an FTS5 table, an R*Tree table (both with shadow tables) and a generated column."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        conn.executescript("""CREATE VIRTUAL TABLE doc USING fts5(title); INSERT INTO doc VALUES ('hello world');
            CREATE VIRTUAL TABLE box USING rtree(id, minx, maxx); INSERT INTO box VALUES (1, 0, 5);
            CREATE TABLE gen (a INTEGER, b INTEGER GENERATED ALWAYS AS (a * 2) VIRTUAL); INSERT INTO gen (a) VALUES (3);""")
    except sqlite3.OperationalError as exc:  # an SQLite built without FTS5 or R*Tree
        pytest.skip(f"this SQLite lacks a virtual table module: {exc}")
    conn.commit()
    conn.close()
    return path
