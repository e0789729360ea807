"""``text2sql-mlops compare``: the comparison report across evaluated runs (the seed's table).

    text2sql-mlops compare --runs Base=outputs/eval_base SFT=outputs/eval/sft DPO=outputs/eval/dpo \\
        SFT+DPO=outputs/eval/sft_dpo --out outputs/compare

One row per run: first-turn EX (one-shot), final EX strict (gold-free repair), final
EX oracle (repair verified against gold: an upper bound, never a prediction),
repair success (of the examples wrong at turn 1, the share repair fixed), executable
rate of the final answers, and the final answers' error types; then EX by Spider
hardness. Strict and oracle numbers stay in separate columns, never one figure.

Refuses runs evaluated on different examples: their numbers are not comparable.
Writes compare.json, compare.md and ex_by_run.json (a flat table for ``dvc plots``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .cliutil import ArgParser, flag
from .errors import UserError
from .fileio import output_folder_type

COLUMNS = (
    ("first_turn_ex", "first-turn EX"), ("final_ex_strict", "final EX strict"), ("final_ex_oracle", "final EX oracle"),
    ("repair_success_rate", "repair success"), ("final_executable_rate", "executable (final)"), ("examples", "examples"),
)


def load_run(folder: str) -> tuple[dict, dict]:
    """(summary.json, analysis.json or {}) of an evaluated run folder."""
    path = Path(folder)
    try:
        summary = json.loads((path / "summary.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{folder}: no readable summary.json ({exc}); is it a finished eval/rollout folder?") from None
    analysis_file = path / "analysis.json"
    analysis = json.loads(analysis_file.read_text()) if analysis_file.is_file() else {}
    return summary, analysis


def row(summary: dict, analysis: dict) -> dict[str, Any]:
    return {
        "first_turn_ex": summary["first_turn_ex"], "final_ex_strict": summary["final_ex_strict"],
        "final_ex_oracle": summary["final_ex_oracle"], "repair_success_rate": summary["repair"]["repair_success_rate"],
        "final_executable_rate": summary["final_executable_rate"], "examples": summary["examples"],
        "final_error_types": summary["error_types"]["final"], "by_hardness": analysis.get("by_hardness", {}),
        "final_ex_strict_configuration": summary.get("final_ex_strict_configuration"),
        "final_ex_oracle_configuration": summary.get("final_ex_oracle_configuration"),
    }


def compare(runs: dict[str, tuple[dict, dict]]) -> dict[str, Any]:
    hashes = {name: s["config"].get("examples_sha256") for name, (s, _) in runs.items()}
    if len(set(hashes.values())) > 1:
        raise UserError(f"the runs were evaluated on different examples ({hashes}); compare runs of one evaluation set")
    return {"runs": {name: row(s, a) for name, (s, a) in runs.items()}, "examples_sha256": next(iter(hashes.values()), None)}


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.2f}%" if isinstance(value, float) else str(value)


def render_markdown(report: dict[str, Any]) -> str:
    runs = report["runs"]
    lines = ["# Comparison", "", "| run | " + " | ".join(label for _, label in COLUMNS) + " |",
             "| --- |" + " ---: |" * len(COLUMNS)]
    lines += [f"| {name} | " + " | ".join(_fmt(r[key]) for key, _ in COLUMNS) + " |" for name, r in runs.items()]
    lines += ["", "Strict = no gold information at inference; oracle = repair stops at the first candidate that matches "
              "gold (an upper bound). They are separate numbers by design.", ""]
    levels = [lv for lv in ("easy", "medium", "hard", "extra", "unparsed") if any(lv in r["by_hardness"] for r in runs.values())]
    if levels:
        lines += ["## Final EX by hardness", "", "| run | " + " | ".join(levels) + " |", "| --- |" + " ---: |" * len(levels)]
        for name, r in runs.items():
            cells = [f"{_fmt(r['by_hardness'][lv]['final_ex'])} ({r['by_hardness'][lv]['examples']})" if lv in r["by_hardness"] else "n/a"
                     for lv in levels]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    kinds = sorted({k for r in runs.values() for k, v in r["final_error_types"].items() if v})
    if kinds:
        lines += ["## Final answers: error types", "", "| run | " + " | ".join(kinds) + " |", "| --- |" + " ---: |" * len(kinds)]
        lines += [f"| {name} | " + " | ".join(str(r["final_error_types"].get(k, 0)) for k in kinds) + " |" for name, r in runs.items()]
        lines.append("")
    return "\n".join(lines)


def plot_table(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat rows for ``dvc plots``: one per (run, metric) with a value."""
    return [{"run": name, "metric": key, "value": r[key]} for name, r in report["runs"].items()
            for key, _ in COLUMNS[:4] if r[key] is not None]


def compared_here(folder: Path) -> bool:
    """A folder `compare` wrote before folders carried the fileio marker."""
    return {p.name for p in folder.iterdir()} <= {"compare.json", "compare.md", "ex_by_run.json"}


def make_parser(prog: str | None = "text2sql-mlops compare") -> ArgParser:
    parser = ArgParser(prog=prog, description="Compare evaluated runs: first-turn EX, final EX strict and oracle, "
                       "repair success, executable rate, error types, EX by hardness.")
    flag(parser, "runs", nargs="+", required=True, metavar="NAME=DIR", help="evaluated run folders, in table order")
    flag(parser, "out", required=True, type=output_folder_type(compared_here),
         help="folder for compare.json, compare.md and ex_by_run.json (replaced as a whole)")
    return parser


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops compare") -> int:
    from .fileio import atomic_folder

    args = make_parser(prog).parse_args(argv)
    runs = {}
    for item in args.runs:
        name, sep, folder = item.partition("=")
        if not sep or not name or name in runs:
            raise UserError(f"--runs takes distinct NAME=DIR items, got {item!r}")
        runs[name] = load_run(folder)
    report = compare(runs)
    with atomic_folder(args.out, compared_here) as staged:
        staged.mkdir()
        (staged / "compare.json").write_text(json.dumps(report, indent=2) + "\n")
        (staged / "compare.md").write_text(render_markdown(report))
        (staged / "ex_by_run.json").write_text(json.dumps(plot_table(report), indent=2) + "\n")
    print(render_markdown(report).split("\n\n")[1])
    return 0
