"""Dataset ingestion: formats, aliases, stable ids, clear errors, import-spider."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from text2sql_mlops.core.errors import UserError
from text2sql_mlops.data.load import load_examples
from text2sql_mlops.data.spider import import_spider, validate_spider_layout
from text2sql_mlops.sql.catalog import load_catalog


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "text2sql_mlops.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_spider_layout_folder_loads_each_split(spider_layout: Path):
    train = load_examples(spider_layout, split="train")
    dev = load_examples(spider_layout, split="dev")
    assert [ex.question for ex in train] == ["How many singers are there?", "List singer names."]
    assert len(dev) == 1 and dev[0].query == "SELECT avg(age) FROM singer"
    assert Path(train[0].db_path) == (spider_layout / "database" / "concert_singer" / "concert_singer.sqlite").resolve()


def test_aliases_and_jsonl_give_the_same_stable_ids(spider_layout: Path, tmp_path: Path):
    spider = load_examples(spider_layout / "train_spider.json")
    db = spider_layout / "database" / "concert_singer" / "concert_singer.sqlite"
    aliased = tmp_path / "aliased.jsonl"
    aliased.write_text(
        json.dumps({"utterance": "How many singers are there?", "gold_sql": "SELECT count(*) FROM singer", "db_id": "concert_singer", "sqlite_path": str(db)}) + "\n\n"
        + json.dumps({"nl": "List singer names.", "sql": "SELECT name FROM singer", "database_path": str(db)}) + "\n"
    )
    loaded = load_examples(aliased)
    assert [ex.id for ex in loaded] == [ex.id for ex in spider]
    assert loaded[1].db_id == "concert_singer"  # derived from the file name when absent


def test_stable_id_ignores_whitespace_but_not_content(spider_layout: Path, tmp_path: Path):
    base = load_examples(spider_layout / "train_spider.json")[0]
    variant = tmp_path / "v.json"
    variant.write_text(json.dumps([
        {"db_id": "concert_singer", "question": "How many  singers are there?", "query": "SELECT count(*)\nFROM singer"},
        {"db_id": "concert_singer", "question": "How many singers are there?", "query": "SELECT count(*) FROM singer WHERE 1"},
    ]))
    same, different = load_examples(variant, spider_layout / "database")
    assert same.id == base.id and different.id != base.id


def test_flat_db_root_layout(tmp_path: Path, spider_layout: Path):
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "concert_singer.sqlite").write_bytes((spider_layout / "database/concert_singer/concert_singer.sqlite").read_bytes())
    (ex,) = load_examples(spider_layout / "dev.json", flat)
    assert ex.db_path == str((flat / "concert_singer.sqlite").resolve())


@pytest.mark.parametrize(
    "content, expected",
    [
        ('[{"db_id": "concert_singer", "query": "SELECT 1"}]', r"\[index 0\]: missing field 'question' \(accepted names: question, utterance, nl\)"),
        ('[{"db_id": "concert_singer", "question": "q"}]', r"\[index 0\]: missing field 'query'"),
        ('[{"db_id": "concert_singer", "question": "q", "sql": {"sel": 1}}]', r"field 'sql' must be a non-empty string.*WikiSQL"),
        ('[{"db_id": "concert_singer", "question": " ", "query": "SELECT 1"}]', r"field 'question' must be a non-empty string, got an empty string$"),
        ('[{"question": "q", "query": "SELECT 1"}]', r"missing field 'db_id'"),
        ('[1]', r"\[index 0\]: expected a JSON object"),
        ('[{"db_id": "nope", "question": "q", "query": "SELECT 1"}]', r"database for db_id 'nope' not found; tried: .*nope/nope.sqlite, .*nope.sqlite"),
    ],
)
def test_bad_json_records_name_file_index_and_field(spider_layout: Path, tmp_path: Path, content: str, expected: str):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(UserError, match=expected) as info:
        load_examples(bad, spider_layout / "database")
    assert str(bad) in str(info.value) and "\n" not in str(info.value)


def test_bad_jsonl_line_is_named(tmp_path: Path, spider_layout: Path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"db_id": "concert_singer", "question": "q", "query": "SELECT 1"}\n{"db_id": "concert_singer", "question": \n')
    with pytest.raises(UserError, match=r"bad.jsonl:2: invalid JSON"):
        load_examples(bad, spider_layout / "database")


def test_cli_error_is_one_line_nonzero_and_writes_nothing(tmp_path: Path, spider_layout: Path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"db_id": "missing_db", "question": "q", "query": "SELECT 1"}]')
    out = tmp_path / "summary.json"
    result = run_cli("data", "validate", str(bad), "--db-root", str(spider_layout / "database"), "--out", str(out))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and "missing_db" in result.stderr
    assert not out.exists()


def test_cli_validate_writes_summary(tmp_path: Path, spider_layout: Path):
    out = tmp_path / "summary.json"
    result = run_cli("data", "validate", str(spider_layout), "--out", str(out))
    assert result.returncode == 0, result.stderr
    summary = json.loads(out.read_text())
    assert summary["examples"] == 2 and summary["databases"] == 1 and summary["duplicate_ids"] == 0
    assert summary["config"] == {"dataset": str(spider_layout), "db_root": None, "split": "train"}


def test_import_spider_from_folder_and_zip(tmp_path: Path, spider_layout: Path):
    dest = tmp_path / "data" / "spider"
    summary = import_spider(spider_layout, dest)
    assert summary.databases == 1 and summary.splits == {"train": 2, "dev": 1}
    assert (dest / "database/concert_singer/concert_singer.sqlite").is_file()
    with pytest.raises(UserError, match="already exists; pass --force"):
        import_spider(spider_layout, dest)

    archive = tmp_path / "spider.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in spider_layout.rglob("*"):
            zf.write(file, Path("spider") / file.relative_to(spider_layout))
    summary = import_spider(archive, dest, force=True)
    assert summary.splits == {"train": 2, "dev": 1}
    assert not [p for p in dest.parent.iterdir() if p.name != "spider"], "no temporary folders left behind"


def test_spider_test_split_reads_its_own_databases_and_schemas(tmp_path: Path, spider_layout: Path):
    """Spider's test release (spider_data.zip) puts test.json beside test_database/ and
    test_tables.json; --split test was unknown, and test.json read on its own took database/
    and tables.json, where the test databases are not."""
    from conftest import CONCERT_SQL, make_db

    from text2sql_mlops.data.load import default_tables_json

    make_db(spider_layout / "test_database" / "festival" / "festival.sqlite", CONCERT_SQL)
    (spider_layout / "test.json").write_text(json.dumps([{"db_id": "festival", "question": "How many singers?",
                                                          "query": "SELECT count(*) FROM singer"}]))
    (spider_layout / "test_tables.json").write_text(json.dumps([{"db_id": "festival", "table_names_original": ["singer"]}]))
    for dataset in (spider_layout, spider_layout / "test.json"):
        (example,) = load_examples(dataset, split="test")
        assert Path(example.db_path) == (spider_layout / "test_database" / "festival" / "festival.sqlite").resolve()
        assert default_tables_json(dataset, "test") == str(spider_layout / "test_tables.json")
    assert default_tables_json(spider_layout, "dev") == str(spider_layout / "tables.json")  # the other splits as before
    assert validate_spider_layout(spider_layout).splits == {"train": 2, "dev": 1, "test": 1}
    result = run_cli("data", "validate", str(spider_layout), "--split", "test")
    assert result.returncode == 0 and json.loads(result.stdout)["examples"] == 1, result.stderr


def test_import_spider_names_the_zip_that_is_not_spider(tmp_path: Path):
    """The error named the temporary folder the zip was unpacked to (spider-import-60_m9xix)."""
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("holiday/readme.txt", "not spider")
    with pytest.raises(UserError, match=rf"^{archive}: no tables.json found") as caught:
        import_spider(archive, tmp_path / "spider")
    assert "spider-import-" not in str(caught.value) and not (tmp_path / "spider").exists()


def test_import_spider_force_replaces_only_an_untouched_import(tmp_path: Path, spider_layout: Path):
    """`--force` replaced any folder with tables.json and database/, so a reference-project
    user's own data/spider (and the fixes kept in it) was deleted on the tool's own advice.
    Now it replaces an import holding only the files the import placed."""
    import shutil

    users = tmp_path / "data" / "spider"
    shutil.copytree(spider_layout, users)
    (users / "MY_FIXES.txt").write_text("keep me")
    before = sorted(p.relative_to(users) for p in users.rglob("*"))
    with pytest.raises(UserError, match="did not write"):
        import_spider(spider_layout, users, force=True)
    assert sorted(p.relative_to(users) for p in users.rglob("*")) == before

    imported = tmp_path / "imported"
    import_spider(spider_layout, imported)
    (imported / "runs").mkdir()
    (imported / "runs" / "eval.json").write_text("{}")
    with pytest.raises(UserError, match="files added to one"):
        import_spider(spider_layout, imported, force=True)
    assert (imported / "runs" / "eval.json").read_text() == "{}"
    shutil.rmtree(imported / "runs")
    assert import_spider(spider_layout, imported, force=True).splits == {"train": 2, "dev": 1}


def test_import_spider_refuses_missing_database_and_leaves_nothing(tmp_path: Path, spider_layout: Path):
    (spider_layout / "dev.json").write_text(json.dumps([{"db_id": "ghost_db", "question": "q", "query": "SELECT 1"}]))
    dest = tmp_path / "out" / "spider"
    with pytest.raises(UserError, match=r"dev.json\[index 0\]: database for db_id 'ghost_db' not found"):
        import_spider(spider_layout, dest)
    assert not dest.exists()


def test_import_spider_cli_summary(tmp_path: Path, spider_layout: Path):
    result = run_cli("data", "import-spider", str(spider_layout), "--dest", str(tmp_path / "imported"))
    assert result.returncode == 0, result.stderr
    assert "databases: 1" in result.stdout and "train: 2 questions, dev: 1 questions" in result.stdout


def test_real_spider_train_layout(spider_train: Path):
    summary = validate_spider_layout(spider_train)
    assert summary.databases == 139 and summary.splits == {"train": 6890}
    examples = load_examples(spider_train)
    assert len({ex.id for ex in examples}) == 6882  # Spider repeats 8 (db, question, SQL) triples verbatim


# --------------------------------------------------------------------------- bad input: corrupt databases, traversal, empty


def corrupt(path: Path, kind: str) -> Path:
    """Spoil a real SQLite file the three ways a copy goes wrong."""
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "truncated": data[:len(data) // 2], "foreign": b"PK\x03\x04 a zip, not a database" * 10}[kind])
    return path


@pytest.mark.parametrize("kind", ["empty", "truncated", "foreign"])
def test_corrupt_database_fails_validate_with_one_line_naming_it(spider_layout: Path, tmp_path: Path, capsys, kind: str):
    from text2sql_mlops.cli import main as cli_main

    db = corrupt(spider_layout / "database" / "concert_singer" / "concert_singer.sqlite", kind)
    out = tmp_path / "summary.json"
    assert cli_main(["data", "validate", str(spider_layout), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: corrupt database ") and str(db) in err and err.count("\n") == 1, err
    assert not out.exists()
    with pytest.raises(UserError, match="corrupt database"):
        validate_spider_layout(spider_layout)


def test_corrupt_database_check_reads_only_and_passes_good_files(spider_layout: Path):
    from text2sql_mlops.sql.database import check_database

    db = spider_layout / "database" / "concert_singer" / "concert_singer.sqlite"
    before = sorted(p.name for p in db.parent.iterdir())
    check_database(db)  # a good file passes (and is cached)
    corrupt(db, "truncated")
    with pytest.raises(UserError, match=r"concert_singer.sqlite: truncated"):
        check_database(db)  # the cache is per size and mtime: the spoiled file is checked again
    assert sorted(p.name for p in db.parent.iterdir()) == before  # no -journal, -wal or -shm left behind


@pytest.mark.parametrize("db_id", ["../secret", "sub/../../secret", "{abs}", "..\\secret", ".."])
def test_db_id_with_a_path_is_refused(spider_layout: Path, tmp_path: Path, db_id: str):
    # A real database next to --db-root: a resolver that joined paths would find it through "../secret".
    (tmp_path / "secret.sqlite").write_bytes((spider_layout / "database" / "concert_singer" / "concert_singer.sqlite").read_bytes())
    (tmp_path / "root").mkdir()
    dataset = tmp_path / "d.json"
    dataset.write_text(json.dumps([{"db_id": db_id.format(abs=tmp_path / "secret"), "question": "q", "query": "SELECT 1"}]))
    with pytest.raises(UserError, match=r"d.json\[index 0\]: db_id .* is not a plain database name"):
        load_examples(dataset, tmp_path / "root")


@pytest.mark.parametrize("content", ["[]", "", "\n\n"])
def test_empty_dataset_is_an_error(tmp_path: Path, spider_layout: Path, capsys, content: str):
    from text2sql_mlops.cli import main as cli_main

    dataset = tmp_path / "empty.json"
    dataset.write_text(content)
    assert cli_main(["data", "validate", str(dataset), "--db-root", str(spider_layout / "database")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "holds no examples" in err and err.count("\n") == 1
    (spider_layout / "dev.json").write_text("[]")
    with pytest.raises(UserError, match=r"spider \(split 'dev': dev.json\): the dataset holds no examples"):
        load_examples(spider_layout, split="dev")


def test_non_utf8_dataset_is_one_line(tmp_path: Path, spider_layout: Path):
    dataset = tmp_path / "latin1.jsonl"
    dataset.write_bytes('{"db_id": "concert_singer", "question": "Café?", "query": "SELECT 1"}\n'.encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8"):
        load_examples(dataset, spider_layout / "database")


@pytest.mark.parametrize("spoil, problem", [
    (lambda entry: entry.update(db_id=["concert_singer"]), r"not an object with a string db_id"),
    (lambda entry: entry.update(column_names_original=[[0, "singer_id"], ["singer", "name"]]),
     r"column_names_original\[1\] is \['singer', 'name'\], not \[index into table_names_original"),
    (lambda entry: entry.update(foreign_keys=[[8, 99]]), r"foreign_keys\[0\] is \[8, 99\], not \[column index"),
    (lambda entry: entry.update(table_names="singer"), r"table_names is str, not a list"),
])
def test_a_tables_json_entry_of_the_wrong_shape_is_refused_when_the_data_is_checked(spider_layout: Path, tmp_path: Path,
                                                                                      spoil, problem: str):
    """A malformed tables.json entry passed `data validate` and `data import-spider` and failed
    only when a rollout opened its database (with the repr of an IndexError)."""
    from conftest import CONCERT_TABLES_ENTRY

    entry = json.loads(json.dumps(CONCERT_TABLES_ENTRY))
    spoil(entry)
    (spider_layout / "tables.json").write_text(json.dumps([entry]))
    expected = rf"tables.json\[index 0\] \({re.escape(repr(entry['db_id']))}\): {problem}.*; fix that entry or remove it"
    result = run_cli("data", "validate", str(spider_layout))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and re.search(expected, result.stderr), result.stderr
    dest = tmp_path / "imported"
    result = run_cli("data", "import-spider", str(spider_layout), "--out", str(dest))
    assert result.returncode == 2 and re.search(expected, result.stderr) and not dest.exists(), result.stderr
    read_by_catalog = "the entry of 'concert_singer' is not in Spider's tables.json format: " + problem \
        if isinstance(entry["db_id"], str) else "not a Spider tables.json"
    with pytest.raises(UserError, match=read_by_catalog):
        load_catalog(spider_layout / "database" / "concert_singer" / "concert_singer.sqlite", spider_layout / "tables.json")


def test_a_tables_json_entry_with_only_some_keys_adds_what_it_has(spider_layout: Path):
    """Spider-format data made by hand often lists only db_id and the tables; the catalog read
    every key and failed (KeyError) on the first entry lacking natural names. A BOM is read too."""
    minimal = {"db_id": "concert_singer", "table_names_original": ["singer"],
               "column_names_original": [[-1, "*"], [0, "Name"]], "foreign_keys": []}
    (spider_layout / "tables.json").write_text("\ufeff" + json.dumps([minimal]), encoding="utf-8")
    assert run_cli("data", "validate", str(spider_layout)).returncode == 0
    catalog = load_catalog(spider_layout / "database" / "concert_singer" / "concert_singer.sqlite", spider_layout / "tables.json")
    assert [column.natural_name for column in catalog.table("singer").columns][:3] == ["", "", ""]
    assert "singer_in_concert" in catalog.table_names


def test_import_spider_reads_linux_zip_names_and_refuses_a_damaged_zip_in_one_line(tmp_path: Path, spider_layout: Path):
    """Info-ZIP's `zip` stores UTF-8 names without the UTF-8 flag: Python read `café` as
    cp437 and the import failed (database for db_id 'café' not found), naming the temporary
    folder. A damaged zip ended in a zlib traceback."""
    import shutil

    from conftest import CONCERT_SQL, make_db

    make_db(spider_layout / "database" / "café" / "café.sqlite", CONCERT_SQL)
    (spider_layout / "dev.json").write_text(json.dumps([{"db_id": "café", "question": "How many?", "query": "SELECT count(*) FROM singer"}]))
    archive = tmp_path / "spider.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(spider_layout.rglob("*")):
            if path.is_file():
                zf.write(path, "spider/" + path.relative_to(spider_layout).as_posix())
    data = bytearray(archive.read_bytes())  # UTF-8 names without the UTF-8 flag, as Info-ZIP writes them
    for signature, flags_at in ((b"PK\x03\x04", 7), (b"PK\x01\x02", 9)):
        start = data.find(signature)
        while start != -1:
            data[start + flags_at] &= ~0x08 & 0xFF  # bit 11 of the little-endian flags: bit 3 of their high byte
            start = data.find(signature, start + 4)
    archive.write_bytes(bytes(data))
    assert not any(info.flag_bits & 0x800 for info in zipfile.ZipFile(archive).infolist())
    summary = import_spider(archive, tmp_path / "imported")
    assert summary.splits["dev"] == 1 and (tmp_path / "imported" / "database" / "café" / "café.sqlite").is_file()
    shutil.rmtree(tmp_path / "imported")
    data = bytearray(archive.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(data))
    result = run_cli("data", "import-spider", str(damaged), "--out", str(tmp_path / "imported"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "damaged.zip" in result.stderr, result.stderr
    assert not (tmp_path / "imported").exists()
