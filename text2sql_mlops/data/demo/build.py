"""The embedded demo dataset: six small SQLite databases with Spider-style questions.

``build_demo(out_dir, seed)`` writes the Spider layout, all at once or not at all::

    train_spider.json, dev.json      [{"db_id", "question", "query"}, ...]
    tables.json                      Spider schema entries, derived from the SQLite files
    train_gold.sql, dev_gold.sql     "SQL<TAB>db_id" per line (official evaluator format)
    database/<db_id>/<db_id>.sqlite
    README.md

The split is by database, as in Spider: dev databases never appear in train.
Schemas, content and question templates are data in this folder (one module per database);
this module only runs them. The output is a pure function of ``seed`` (and of
the SQLite library version, which stamps the file header): content comes from
``random.Random`` streams seeded per database, and each database is written by
the same fixed sequence of statements.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from ...core.fileio import atomic_folder, check_output_folder, holds_only_files
from . import (
    art_museum,
    bookstore,
    car_rental,
    cinema_chain,
    city_zoo,
    clinic,
    flight_network,
    hotel_booking,
    music_festival,
    online_shop,
    public_library,
    real_estate,
    software_team,
    sports_league,
    university,
    weather_network,
)
from .generic import generic_templates

TRAIN_DATABASES = (university, bookstore, clinic, sports_league, hotel_booking, car_rental, art_museum, city_zoo,
                   online_shop, real_estate, software_team, weather_network, public_library)
DEV_DATABASES = (flight_network, music_festival, cinema_chain)
QUESTIONS_PER_TEMPLATE = 3  # at most, per hand-written template; a template without placeholders gives one
GENERIC_PER_DATABASE = 30  # generic questions kept per database (demo/generic.py), one per template at most
TEST_SAME_DB_PER_DATABASE = 4  # questions of each training database held out as the test_same_db split
DEV_PER_DATABASE = 20  # questions of each dev database, a seeded uniform sample: dev is evaluated whole, on a CPU
SPLITS = {"train": "train_spider.json", "test_same_db": "test_same_db.json", "dev": "dev.json"}
CATEGORIES = ("where", "join", "multi_join", "aggregate", "group_by", "order_limit",
              "nested", "set_op", "distinct", "like")
README_TITLE = "# text2sql_mlops demo dataset"


def build_demo(out_dir: str | Path, seed: int = 0) -> dict[str, Any]:
    """Write the demo dataset to ``out_dir`` (replacing an earlier demo build) and return a summary."""
    out = Path(out_dir)
    check_output_folder(out, built_here)
    splits: dict[str, list[dict]] = {split: [] for split in SPLITS}
    schemas, per_database, skipped = [], {}, []
    with atomic_folder(out, built_here, list_files=False) as staged:
        staged.mkdir()
        for split, modules in (("train", TRAIN_DATABASES), ("dev", DEV_DATABASES)):
            for module in modules:
                db_id = module.DB_ID
                # one stream per database and purpose: editing a template never changes the data
                content = module.rows(random.Random(f"{seed}/{db_id}/rows"))
                con = create_database(staged / "database" / db_id / f"{db_id}.sqlite", module.SCHEMA, content)
                try:
                    schemas.append(spider_schema(con, db_id))
                    questions, unused = database_questions(con, module, seed)
                finally:
                    con.close()
                records = [{"db_id": db_id, "question": q, "query": sql} for _, q, sql in questions]
                held_out = []
                if split == "train":
                    # The same database, questions the training split never shows: the
                    # "post-train a small model for your own database" evaluation.
                    chosen = set(random.Random(f"{seed}/{db_id}/test_same_db").sample(range(len(records)), TEST_SAME_DB_PER_DATABASE))
                    held_out = [r for i, r in enumerate(records) if i in chosen]
                    records = [r for i, r in enumerate(records) if i not in chosen]
                    splits["test_same_db"] += held_out
                else:
                    # Sized by design before any result, drawn uniformly (hand-written and
                    # generic alike), so its mix of difficulty is the database's own.
                    chosen = set(random.Random(f"{seed}/{db_id}/dev").sample(range(len(records)), min(DEV_PER_DATABASE, len(records))))
                    records = [r for i, r in enumerate(records) if i in chosen]
                splits[split] += records
                skipped += [f"{db_id}: {_first(template['question'])}" for template in unused if not template.get("generic")]
                per_database[db_id] = {
                    "split": split,
                    "tables": len(content),
                    "rows": sum(len(table_rows) for table_rows in content.values()),
                    "questions": len(records),
                    "test_same_db": len(held_out),
                    "categories": dict(Counter(category for category, _, _ in questions)),
                }

        summary = _summary(out, seed, per_database, skipped, {split: len(records) for split, records in splits.items()})
        for split, filename in SPLITS.items():
            _write_json(staged / filename, splits[split])
            (staged / f"{split}_gold.sql").write_text(
                "".join(f"{ex['query']}\t{ex['db_id']}\n" for ex in splits[split]), encoding="utf-8")
        _write_json(staged / "tables.json", schemas)
        (staged / "README.md").write_text(_readme(summary), encoding="utf-8")
    return summary


def database_questions(con: sqlite3.Connection, module, seed: int) -> tuple[list[tuple[str, str, str]], list[dict]]:
    """A database's questions: its hand-written templates, then a seeded sample of the generic
    ones (demo/generic.py) that its ``ENTITIES`` annotation gives; and the unused templates."""
    db_id = module.DB_ID
    questions, unused = generate_questions(con, module.TEMPLATES, random.Random(f"{seed}/{db_id}/questions"))
    entities = getattr(module, "ENTITIES", None)
    if entities:
        generic, generic_unused = generate_questions(con, generic_templates(con, entities),
                                                     random.Random(f"{seed}/{db_id}/generic"), per_template=1,
                                                     seen={text for _, question, query in questions for text in (question, query)})
        rng = random.Random(f"{seed}/{db_id}/generic_sample")
        picked = sorted(rng.sample(range(len(generic)), min(GENERIC_PER_DATABASE, len(generic))))
        questions += [generic[i] for i in picked]
        unused += generic_unused
    return questions, unused


def _first(question: str | list[str]) -> str:
    return question[0] if isinstance(question, list) else question


def create_database(path: Path, schema: str, content: dict[str, list[tuple]]) -> sqlite3.Connection:
    """Create ``path`` from ``schema`` and ``content``; foreign keys are enforced while inserting."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    con.execute("PRAGMA page_size = 4096")
    con.execute("PRAGMA foreign_keys = ON")
    con.executescript(schema)
    with con:
        for table, table_rows in content.items():
            marks = ", ".join("?" * len(table_rows[0]))
            con.executemany(f"INSERT INTO {table} VALUES ({marks})", table_rows)
    return con


def spider_schema(con: sqlite3.Connection, db_id: str) -> dict[str, Any]:
    """The Spider ``tables.json`` entry of an open database, read from its catalog."""
    tables = [name for (name,) in con.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
    columns: list[tuple[int, str, str]] = [(-1, "*", "text")]
    index: dict[tuple[str, str], int] = {}
    primary_keys, references = [], []
    for t, table in enumerate(tables):
        for _cid, name, declared, _notnull, _default, pk in con.execute(f"PRAGMA table_info({table})"):
            index[(table, name)] = len(columns)
            if pk:
                primary_keys.append(len(columns))
            columns.append((t, name, spider_type(declared)))
        for row in con.execute(f"PRAGMA foreign_key_list({table})"):
            references.append(((table, row[3]), (row[2], row[4])))
    return {
        "column_names": [[t, _natural(name)] for t, name, _ in columns],
        "column_names_original": [[t, name] for t, name, _ in columns],
        "column_types": [kind for _, _, kind in columns],
        "db_id": db_id,
        "foreign_keys": [[index[source], index[target]] for source, target in references],
        "primary_keys": primary_keys,
        "table_names": [_natural(table) for table in tables],
        "table_names_original": tables,
    }


def spider_type(declared: str) -> str:
    """Spider's coarse column type (text/number/time/boolean/others) of a declared SQLite type."""
    declared = declared.upper()
    if "BOOL" in declared:
        return "boolean"
    if "DATE" in declared or "TIME" in declared:
        return "time"
    if any(word in declared for word in ("INT", "REAL", "NUM", "FLOA", "DOUB", "DEC")):
        return "number"
    if any(word in declared for word in ("CHAR", "TEXT", "CLOB")):
        return "text"
    return "others"


def generate_questions(con: sqlite3.Connection, templates: list[dict], rng: random.Random,
                       per_template: int = QUESTIONS_PER_TEMPLATE, seen: set[str] | None = None,
                       ) -> tuple[list[tuple[str, str, str]], list[dict]]:
    """Fill templates with slot values drawn from the data: ``(category, question, sql)`` list, unused templates.

    A filled query is kept only if it returns an informative answer (rows, not just
    NULL or 0) whose order, when it has ORDER BY, has no ties; questions and
    queries are deduplicated within the database.
    """
    kept, unused, seen = [], [], set(seen or ())
    for template in templates:
        candidates = _slot_values(con, template.get("slots"))
        rng.shuffle(candidates)
        count = 0
        for slots in candidates:
            if count == per_template:
                break
            # a list holds phrasings of one template (generic.py): one is drawn per question
            wording = rng.choice(template["question"]) if isinstance(template["question"], list) else template["question"]
            question = wording.format(**slots)
            query = template["query"].format(**slots)
            if question in seen or query in seen or not _is_good_answer(con, query):
                continue
            seen.update((question, query))
            kept.append((template["category"], question, query))
            count += 1
        if count == 0:
            unused.append(template)
    return kept, unused


def _slot_values(con: sqlite3.Connection, slots: str | list[dict] | None) -> list[dict]:
    if slots is None:
        return [{}]
    if isinstance(slots, str):
        cursor = con.execute(slots)
        names = [d[0] for d in cursor.description]
        values = [dict(zip(names, row)) for row in sorted(cursor.fetchall(), key=repr)]
    else:
        values = [dict(v) for v in slots]
    for value in values:
        if any(isinstance(v, str) and "'" in v for v in value.values()):
            raise ValueError(f"slot value with a quote: {value}; demo values must be quotable as '...'")
    return values


def _is_good_answer(con: sqlite3.Connection, query: str) -> bool:
    rows = con.execute(query).fetchall()
    if not any(v not in (None, 0) for row in rows for v in row):
        return False
    return _order_is_unambiguous(con, query)


def _order_is_unambiguous(con: sqlite3.Connection, query: str) -> bool:
    """False when tied ORDER BY keys make the gold row order (or the LIMIT cut) arbitrary.

    The evaluator compares ordered results in order, so a tie would let a correct
    prediction fail. Probe: select only the order keys (one more row than the LIMIT)
    and require adjacent keys to differ.
    """
    tree = sqlglot.parse_one(query, read="sqlite")
    order = tree.args.get("order")
    if not isinstance(tree, exp.Select) or order is None:
        return True
    probe = tree.copy()
    probe.set("expressions", [key.this.copy() for key in order.expressions])
    probe.set("distinct", None)
    limit = tree.args.get("limit")
    if limit is not None:
        probe = probe.limit(int(limit.expression.name) + 1)
    keys = con.execute(probe.sql(dialect="sqlite")).fetchall()
    return all(a != b for a, b in zip(keys, keys[1:]))


def _natural(name: str) -> str:
    return name.replace("_", " ").lower()


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def built_here(folder: Path) -> bool:
    """An earlier demo build (the whole folder is swapped), e.g. one `dvc pull` placed, holding
    nothing a user added: a rebuild must not take their runs or notes with it."""
    readme = folder / "README.md"
    if not (readme.is_file() and readme.read_text(encoding="utf-8", errors="replace").startswith(README_TITLE)):
        return False
    databases = [module.DB_ID for module in (*TRAIN_DATABASES, *DEV_DATABASES)]
    return holds_only_files(folder, ["README.md", "tables.json", *SPLITS.values(), *(f"{split}_gold.sql" for split in SPLITS),
                                     *(f"database/{db_id}/{db_id}.sqlite" for db_id in databases)])


def _summary(out: Path, seed: int, per_database: dict, skipped: list[str], split_sizes: dict[str, int]) -> dict[str, Any]:
    def split_categories(split: str) -> dict[str, int]:
        counts = Counter()
        for db in per_database.values():
            if db["split"] == split:
                counts.update(db["categories"])
        return {category: counts[category] for category in CATEGORIES}

    return {
        "out_dir": str(out),
        "seed": seed,
        "databases": len(per_database),
        "tables": sum(db["tables"] for db in per_database.values()),
        "rows": sum(db["rows"] for db in per_database.values()),
        "questions": split_sizes,
        "categories": {split: split_categories(split) for split in ("train", "dev")},
        "per_database": per_database,
        "skipped_templates": skipped,
    }


def _readme(summary: dict[str, Any]) -> str:
    db_lines = [f"| {db_id} | {db['split']} | {db['tables']} | {db['rows']} | {db['questions']} | {db['test_same_db']} |"
                for db_id, db in summary["per_database"].items()]
    train, dev = summary["categories"]["train"], summary["categories"]["dev"]
    category_lines = [f"| {category} | {train[category]} | {dev[category]} |" for category in CATEGORIES]
    return "\n".join([
        README_TITLE,
        "",
        "A small Text-to-SQL dataset in the Spider layout, generated by code so that the",
        "pipeline runs end to end without downloading anything. It is not a benchmark:",
        "use it for smoke tests, demos and CI; use Spider for real numbers.",
        "",
        "## How it was made",
        "",
        # The module paths below are those of the layout the dataset was published with: this README
        # is part of the dataset (hashed in data.dvc), so it names them as they were.
        f"`text2sql-mlops data demo --out DIR --seed {summary['seed']}` (module `text2sql_mlops.demo_data`).",
        "Each database is described as data in `text2sql_mlops/demo/<db_id>.py`: its `CREATE TABLE`",
        "statements (foreign keys declared), a content generator drawing from a seeded",
        "`random.Random`, and question/SQL templates. Templates are filled with values",
        "sampled from the database itself; a filled query is kept only if it executes,",
        "returns a non-trivial answer and, when ordered, has no ties in its ORDER BY keys.",
        "The same seed gives byte-identical files (with the same SQLite library version).",
        "`tables.json` is read back from the SQLite catalog, so it always matches the files.",
        "",
        "Besides each module's hand-written templates, every database gets the same generic",
        "question shapes (counts, value filters, comparisons, aggregates, arg-max, group-by,",
        "lookups, joins along each foreign key) phrased from its `ENTITIES` annotation",
        f"(`demo/generic.py`); {GENERIC_PER_DATABASE} of them per database, drawn with the seed.",
        "",
        "Three splits. `dev` is split by database, as in Spider: dev databases never appear in",
        f"train; it holds {DEV_PER_DATABASE} questions of each dev database, drawn uniformly with the seed.",
        f"`test_same_db` holds {TEST_SAME_DB_PER_DATABASE} questions of each training database that",
        "`train_spider.json` does not contain: the \"post-train a small model for your own",
        "database\" evaluation, reported apart from `dev`.",
        "",
        f"Questions: {summary['questions']['train']} train, {summary['questions']['test_same_db']} test_same_db, "
        f"{summary['questions']['dev']} dev.",
        "",
        "| db_id | split | tables | rows | questions | test_same_db |",
        "|---|---|---|---|---|---|",
        *db_lines,
        "",
        "| category | train | dev |",
        "|---|---|---|",
        *category_lines,
        "",
        "## Files",
        "",
        "- `train_spider.json`, `test_same_db.json`, `dev.json`: lists of `{\"db_id\", \"question\", \"query\"}`",
        "- `tables.json`: Spider schema entries for every database",
        "- `train_gold.sql`, `test_same_db_gold.sql`, `dev_gold.sql`: `SQL<TAB>db_id` per line (official evaluator format)",
        "- `database/<db_id>/<db_id>.sqlite`",
        "",
        "## License",
        "",
        "Apache-2.0, as the text2sql_mlops project. People, airlines, festivals, bands and all",
        "figures are synthetic; airports and aircraft models are real, with rounded figures.",
        "",
    ])
