"""``text2sql-mlops report <name>``: the reference project's analysis tables, over evaluation folders.

    text2sql-mlops report repair-breakdown --runs SFT=outputs/eval/sft/dev SFT+DPO=outputs/eval/sft_dpo/dev --out reports/repair
    text2sql-mlops report routing        --runs ... --out reports/routing
    text2sql-mlops report online-repair  --runs ... --out reports/online
    text2sql-mlops report column-errors  --runs ... --out reports/columns

Each reads the ``trajectories.jsonl`` of every run (an ``eval`` or ``rollout`` folder) and
writes ``<out>/<name>.json`` and ``<out>/<name>.md``. Every count is over the selected
candidate of each turn (greedy evaluation has one candidate per turn).

* ``repair-breakdown``: per first-turn error type, how many first answers failed with it and
  how many of those the final answer fixed: strict (where a gold-free run stops: the first
  turn whose answer ran) and oracle (the last turn of the verified run).
* ``routing``: which verifier can see each first-turn failure, by this rule:
  ``online`` when the query failed to run (SQLite itself reports it: plain online repair);
  ``guarded`` when it ran but raised a guard signal (empty result, cartesian product, looped
  full scan: ``online_guarded`` repair sees it without gold); ``offline`` when it ran cleanly
  and is still wrong (only gold or an external verifier can tell). With how many were fixed.
* ``online-repair``: first turn vs strict final answer per example: fixed, broken,
  still correct, still wrong.
* ``column-errors``: every first-turn ``no such column`` failure diagnosed against the
  database: ``alias_mis_binding`` (a table of the query has the column, under another alias),
  ``wrong_owner_table`` (only tables the query does not read have it: a join is missing),
  ``truly_missing`` (no table has it); ``extra_join`` counts those that also join a table used
  only in its own join condition. With up to three example cases per kind.
"""

from __future__ import annotations

import functools
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.cliutil import ArgParser, flag
from ..core.display import md_code, md_text
from ..core.errors import UserError
from ..core.fileio import atomic_folder, check_output_folder, holds_only, output_folder_type, write_json
from ..core.records import Candidate, Trajectory, read_trajectories
from ..data.guard import find_databases, rollout_db_roots
from ..rollout.metrics import strict_turn
from ..scoring.errors import unresolved_name
from ..sql.catalog import load_catalog
from ..sql.shape import column_owners, query_shape


def _final_strict(t: Trajectory) -> bool:
    return strict_turn(t).any_correct


def _final_oracle(t: Trajectory) -> bool:
    return t.last.any_correct


def repair_breakdown(trajectories: list[Trajectory]) -> dict[str, Any]:
    rows: dict[str, Counter] = defaultdict(Counter)
    for t in trajectories:
        first = t.first.answer
        if first.correct:
            continue
        row = rows[first.error_type or "other"]
        row["first_turn_errors"] += 1
        row["repaired_strict"] += _final_strict(t)
        row["repaired_oracle"] += _final_oracle(t)
    ordered = sorted(rows.items(), key=lambda item: (-item[1]["first_turn_errors"], item[0]))
    return {"examples": len(trajectories), "by_error_type": {kind: dict(counts) for kind, counts in ordered}}


def route(first: Candidate) -> str:
    """Which verifier sees a failing first answer (the rule in the module docstring)."""
    if not first.executed:
        return "online"
    guards = set(first.signals) & {"empty_result", "cartesian", "looped_full_scan"}
    return "guarded" if guards else "offline"


def routing(trajectories: list[Trajectory]) -> dict[str, Any]:
    counts: dict[str, Counter] = {name: Counter() for name in ("online", "guarded", "offline")}
    for t in trajectories:
        first = t.first.answer
        if first.correct:
            continue
        row = counts[route(first)]
        row["failures"] += 1
        row["fixed_strict"] += _final_strict(t)
        row["fixed_oracle"] += _final_oracle(t)
    return {"examples": len(trajectories), "first_turn_failures": sum(c["failures"] for c in counts.values()),
            "by_route": {name: {"failures": c["failures"], "fixed_strict": c["fixed_strict"], "fixed_oracle": c["fixed_oracle"]}
                         for name, c in counts.items()}}


def online_repair(trajectories: list[Trajectory]) -> dict[str, Any]:
    outcomes = Counter()
    for t in trajectories:
        before, after = t.first.answer.correct, _final_strict(t)
        outcomes["fixed" if after and not before else "broken" if before and not after
                 else "still_correct" if after else "still_wrong"] += 1
    return {"examples": len(trajectories), **{key: outcomes[key] for key in ("fixed", "broken", "still_correct", "still_wrong")}}


def column_errors(trajectories: list[Trajectory], catalog_of: Callable[[str], Any]) -> dict[str, Any]:
    kinds = ("alias_mis_binding", "wrong_owner_table", "truly_missing")
    counts, extra_join, cases = Counter(), 0, defaultdict(list)
    for t in trajectories:
        first = t.first.answer
        unresolved = unresolved_name(first.error)
        if not unresolved or unresolved[0] != "column":
            continue
        catalog = catalog_of(t.db_id)
        column = unresolved[1].rpartition(".")[2]
        shape = query_shape(first.sql, catalog)
        in_query = {table.lower() for table in shape.tables} if shape else set()
        owners = column_owners(catalog, column)
        if any(owner.lower() in in_query for owner in owners):
            kind = "alias_mis_binding"
        elif owners:
            kind = "wrong_owner_table"
        else:
            kind = "truly_missing"
        counts[kind] += 1
        extra_join += bool(shape and shape.join_only)
        if len(cases[kind]) < 3:
            cases[kind].append({"id": t.id, "db_id": t.db_id, "question": t.question, "sql": first.sql,
                                "error": first.error, "owners": owners, "gold": t.gold})
    return {"examples": len(trajectories), "no_such_column": sum(counts.values()),
            **{kind: counts[kind] for kind in kinds}, "extra_join": extra_join, "cases": {kind: cases[kind] for kind in kinds}}


# --------------------------------------------------------------------------- Markdown


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(md_text(str(cell)) for cell in row) + " |" for row in rows)]


def markdown(name: str, results: dict[str, dict]) -> str:
    lines = [f"# {name}", ""]
    if name == "repair-breakdown":
        for run, result in results.items():
            lines += [f"## {md_text(run)} ({result['examples']} examples)", ""]
            lines += _table(["first-turn error", "errors", "repaired (strict)", "repaired (oracle)"],
                            [[kind, c.get("first_turn_errors", 0), c.get("repaired_strict", 0), c.get("repaired_oracle", 0)]
                             for kind, c in result["by_error_type"].items()]) + [""]
    elif name == "routing":
        lines += _table(["run", "route", "first-turn failures", "fixed (strict)", "fixed (oracle)"],
                        [[run, route_name, c["failures"], c["fixed_strict"], c["fixed_oracle"]]
                         for run, result in results.items() for route_name, c in result["by_route"].items()])
    elif name == "online-repair":
        lines += _table(["run", "examples", "fixed", "broken", "still correct", "still wrong"],
                        [[run, r["examples"], r["fixed"], r["broken"], r["still_correct"], r["still_wrong"]] for run, r in results.items()])
    else:
        lines += _table(["run", "no such column", "alias mis-binding", "wrong owner table", "truly missing", "+ extra join"],
                        [[run, r["no_such_column"], r["alias_mis_binding"], r["wrong_owner_table"], r["truly_missing"], r["extra_join"]]
                         for run, r in results.items()])
        for run, r in results.items():
            for kind, examples in r["cases"].items():
                for case in examples:
                    # question, error (it repeats the model's identifier) and SQL are untrusted text
                    lines += ["", f"- {md_text(run)}, {kind}: {md_text(case['question'])}  ",
                              f"  {md_code(case['sql'])} ({md_text(case['error'])}; owners: "
                              f"{md_text(', '.join(case['owners']) or 'none')})  ", f"  gold: {md_code(case['gold'])}"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- command line

REPORTS = ("repair-breakdown", "routing", "online-repair", "column-errors")


def _read_run(folder: Path) -> tuple[list[Trajectory], dict[str, Any]]:
    if not (folder / "trajectories.jsonl").is_file():
        raise UserError(f"{folder} holds no trajectories.jsonl; give an `eval` or `rollout` output folder")
    try:
        identity = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        identity = {}
    return read_trajectories(folder), identity


def _catalogs(folder: Path, identity: dict[str, Any]) -> Callable[[str], Any]:
    roots = rollout_db_roots([str(folder)])
    tables_json = identity.get("tables_json")
    cache: dict[str, Any] = {}

    def catalog_of(db_id: str):
        if db_id not in cache:
            found = find_databases(db_id, roots)
            if not found:
                raise UserError(f"{folder}: database {db_id!r} not found in {', '.join(roots) or 'no folder'} (from its run.json)")
            cache[db_id] = load_catalog(found[0], tables_json, db_id)
        return cache[db_id]

    return catalog_of


def reports_here(folder: Path, name: str | None = None) -> bool:
    """A folder `report` wrote: one report's JSON and Markdown (report ``name``'s, when given:
    `report routing --out` a repair-breakdown folder would replace the other report)."""
    return holds_only(folder, {f"{report}.{suffix}" for report in ([name] if name else REPORTS) for suffix in ("json", "md")})


def make_parser(prog: str | None = "text2sql-mlops report") -> ArgParser:
    parser = ArgParser(prog=prog, description="Analysis reports over evaluation folders: " + ", ".join(REPORTS))
    parser.add_argument("name", choices=REPORTS, help="which report")
    flag(parser, "runs", nargs="+", required=True, metavar="NAME=DIR", help="evaluation (or rollout) folders, named")
    flag(parser, "out", required=True, type=output_folder_type(reports_here), help="folder for <name>.json and <name>.md")
    return parser


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops report") -> int:
    args = make_parser(prog).parse_args(sys.argv[1:] if argv is None else argv)
    same_report = functools.partial(reports_here, name=args.name)
    check_output_folder(args.out, same_report)
    runs: dict[str, Path] = {}
    for item in args.runs:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise UserError(f"--runs must look like NAME=DIR, got {item!r}")
        if name in runs:
            raise UserError(f"--runs names {name!r} twice")
        runs[name] = Path(folder)
    results = {}
    for name, folder in runs.items():
        trajectories, identity = _read_run(folder)
        if args.name == "repair-breakdown":
            results[name] = repair_breakdown(trajectories)
        elif args.name == "routing":
            results[name] = routing(trajectories)
        elif args.name == "online-repair":
            results[name] = online_repair(trajectories)
        else:
            results[name] = column_errors(trajectories, _catalogs(folder, identity))
    with atomic_folder(args.out, same_report) as staged:
        staged.mkdir()
        write_json(staged / f"{args.name}.json", {"report": args.name, "runs": results})
        (staged / f"{args.name}.md").write_text(markdown(args.name, results), encoding="utf-8")
    print(json.dumps({"report": args.name, "out": args.out, "runs": list(results)}))
    return 0
