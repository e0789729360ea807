"""``text2sql-mlops compare``: the comparison report across evaluated runs (the seed's table).

    text2sql-mlops compare --runs Base=outputs/eval_base SFT=outputs/eval/sft DPO=outputs/eval/dpo \\
        SFT+DPO=outputs/eval/sft_dpo --out outputs/compare

One row per run: first-turn EX (one-shot), final EX strict (gold-free repair), final
EX oracle (repair verified against gold: an upper bound, never a prediction),
repair success (of the examples wrong at turn 1, the share repair fixed), executable
rate of the final answers, and the final answers' error types; then EX by Spider
hardness. Strict and oracle numbers stay in separate columns, never one figure.

Refuses runs evaluated on different examples: their numbers are not comparable.
Writes compare.json, compare.md and ex_by_run.json (a flat table for ``dvc plots``), and
``ex_by_run.png`` (EX per run: one-shot, strict repair, oracle repair). With ``--splits``
each run folder holds one evaluated folder per split, and each split gets its own
report under ``OUT/<split>/`` plus ``OUT/metrics.json`` for MLflow; ``--training``
adds ``training_loss.png`` from the training stages' metrics.jsonl.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

from ..core.cliutil import ArgParser, flag
from ..core.display import md_text, plot_label, series_colors
from ..core.errors import UserError
from ..core.fileio import MARKER, atomic_folder, output_folder_type, read_jsonl
from ..core.records import Summary, read_summary

COLUMNS = (
    ("first_turn_ex", "first-turn EX"), ("final_ex_strict", "final EX strict"), ("final_ex_oracle", "final EX oracle"),
    ("repair_success_rate", "repair success"), ("final_executable_rate", "executable (final)"), ("examples", "examples"),
    # The reference project's definitions, for comparing with its tables: every candidate of
    # every turn, and an example repaired once any later turn has a correct candidate.
    ("executable_rate", "executable (all candidates)"), ("repair_success_rate_seed_rule", "repair success (seed rule)"),
)
# The reference project's two other settings (``eval --reference_settings``), in a table of their own.
REFERENCE_COLUMNS = (
    ("final_ex_oracle_result_status", "final EX oracle, result_status feedback (the reference's Final EX)"),
    ("final_ex_strict_verifier", "final EX strict, verifier-constrained (online_guarded + online_visible)"),
)


def load_run(folder: str) -> tuple[Summary, dict]:
    """(summary.json, analysis.json or {}) of an evaluated run folder."""
    path = Path(folder)
    if not path.is_dir():
        raise UserError(f"{folder}: {'not a folder' if path.exists() else 'not found'}; give a finished eval or rollout folder")
    if not (path / "summary.json").is_file():
        raise UserError(f"{folder}: no summary.json; give a finished eval or rollout folder")
    summary = read_summary(path / "summary.json")
    analysis_file = path / "analysis.json"
    try:
        analysis = json.loads(analysis_file.read_text(encoding="utf-8")) if analysis_file.is_file() else {}
    except (ValueError, OSError) as exc:
        raise UserError(f"{analysis_file}: not an eval's analysis ({exc}); rerun that eval") from None
    return summary, analysis


def row(summary: Summary, analysis: dict) -> dict[str, Any]:
    repaired = summary.configuration.get("max_turns") != 1  # a one-shot run tried no repair: no rate, not 0%
    return {
        "first_turn_ex": summary.first_turn_ex, "final_ex_strict": summary.final_ex_strict,
        "final_ex_oracle": summary.final_ex_oracle,
        "repair_success_rate": summary.repair["repair_success_rate"] if repaired else None,
        "final_executable_rate": summary.final_executable_rate, "examples": summary.examples,
        "executable_rate": summary.executable_rate,
        "repair_success_rate_seed_rule": summary.repair.get("repair_success_rate_seed_rule") if repaired else None,  # older runs lack it
        "final_error_types": summary.error_types["final"], "by_hardness": analysis.get("by_hardness", {}),
        "final_ex_strict_configuration": summary.final_ex_strict_configuration,
        "final_ex_oracle_configuration": summary.final_ex_oracle_configuration,
        "repair_model": summary.config.get("repair_adapter_path"),  # None: the run answered its own repair turns
        **{key: analysis["reference_settings"][key] for key, _ in REFERENCE_COLUMNS if key in analysis.get("reference_settings", {})},
    }


def compare(runs: dict[str, tuple[Summary, dict]]) -> dict[str, Any]:
    hashes = {name: s.config.get("examples_sha256") for name, (s, _) in runs.items()}
    if len(set(hashes.values())) > 1:
        raise UserError(f"the runs were evaluated on different examples ({hashes}); compare runs of one evaluation set")
    # The seed project's matcher and the official one give the same SQL different verdicts
    # (ORDER BY direction, DISTINCT): EX under the two is not one number.
    matchers = {name: s.config.get("matcher", "official") for name, (s, _) in runs.items()}
    if len(set(matchers.values())) > 1:
        raise UserError(f"the runs were judged by different matchers ({matchers}); compare runs judged one way "
                        "(rerun one with `eval --matcher ...`)")
    return {"runs": {name: row(s, a) for name, (s, a) in runs.items()}, "examples_sha256": next(iter(hashes.values()), None),
            "matcher": next(iter(matchers.values()), None)}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.2f}%" if isinstance(value, float) else str(value)


def render_markdown(report: dict[str, Any]) -> str:
    runs = report["runs"]
    lines = ["# Comparison", "", "| run | " + " | ".join(label for _, label in COLUMNS) + " |",
             "| --- |" + " ---: |" * len(COLUMNS)]
    lines += [f"| {md_text(name)} | " + " | ".join(_fmt(r[key]) for key, _ in COLUMNS) + " |" for name, r in runs.items()]
    lines += ["", "Strict = no gold information at inference; oracle = repair stops at the first candidate that matches "
              "gold (an upper bound). They are separate numbers by design.", ""]
    if report.get("matcher") not in (None, "official"):
        lines[-1:] = ["", f"Every run was judged by the `{report['matcher']}` matcher, not the official evaluator's.", ""]
    paired = [f"{name} (`{r['repair_model']}`)" for name, r in runs.items() if r.get("repair_model")]
    if paired:
        lines[-1:] = ["", f"Repair turns answered by a repair model (`eval --repair_adapter_path`), first turns by the "
                      f"run's own: {', '.join(paired)}. The other runs answer their own repair turns.", ""]
    reference = [(key, label) for key, label in REFERENCE_COLUMNS if any(key in r for r in runs.values())]
    if reference:
        lines += ["## The reference project's settings", "", "| run | " + " | ".join(label for _, label in reference) + " |",
                  "| --- |" + " ---: |" * len(reference)]
        lines += [f"| {md_text(name)} | " + " | ".join(_fmt(r.get(key)) for key, _ in reference) + " |" for name, r in runs.items()]
        lines += ["", "Each replays the run's own answers and repairs under the reference's setting "
                  "(`eval --reference_settings`); result_status feedback tells the model whether its result matches gold.", ""]
    levels = [lv for lv in ("easy", "medium", "hard", "extra", "unparsed") if any(lv in r["by_hardness"] for r in runs.values())]
    if levels:
        lines += ["## Final EX by hardness", "", "| run | " + " | ".join(levels) + " |", "| --- |" + " ---: |" * len(levels)]
        for name, r in runs.items():
            cells = [f"{_fmt(r['by_hardness'][lv]['final_ex'])} ({r['by_hardness'][lv]['examples']})" if lv in r["by_hardness"] else "n/a"
                     for lv in levels]
            lines.append(f"| {md_text(name)} | " + " | ".join(cells) + " |")
        lines.append("")
    kinds = sorted({k for r in runs.values() for k, v in r["final_error_types"].items() if v})
    if kinds:
        lines += ["## Final answers: error types", "", "| run | " + " | ".join(kinds) + " |", "| --- |" + " ---: |" * len(kinds)]
        lines += [f"| {md_text(name)} | " + " | ".join(str(r["final_error_types"].get(k, 0)) for k in kinds) + " |" for name, r in runs.items()]
        lines.append("")
    return "\n".join(lines)


def plot_table(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat rows for ``dvc plots``: one per (run, metric) with a value."""
    return [{"run": name, "metric": key, "value": r[key]} for name, r in report["runs"].items()
            for key, _ in COLUMNS[:4] if r[key] is not None]


def plot_rows(reports: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """``plot_table`` of every split, each row tagged with its split (the ``dvc plots`` file)."""
    return [{"split": split, **row} for split, report in reports.items() for row in plot_table(report)]


def metrics(reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The numbers MLflow and ``dvc metrics`` read: ``<split>.<run>.<column>``."""
    return {split: {name: {key: r[key] for key, _ in COLUMNS + REFERENCE_COLUMNS if r.get(key) is not None}
                    for name, r in report["runs"].items()}
            for split, report in reports.items()}


# --------------------------------------------------------------------------- pictures

BARS = (("first_turn_ex", "first-turn (one-shot)"), ("final_ex_strict", "+ repair, strict"),
        ("final_ex_oracle", "+ repair, oracle"))


def _png(draw, size: tuple[float, float]) -> bytes:
    """A PNG drawn on an explicit Agg canvas with matplotlib's default style, saved without
    metadata: the bytes depend only on the data (as the pair dashboard's)."""
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.style.context("default"):
        fig = Figure(figsize=size, dpi=100)
        FigureCanvasAgg(fig)
        draw(fig)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def ex_chart(reports: dict[str, dict[str, Any]]) -> bytes:
    """Grouped bars, one panel per split: EX of each run one-shot, after strict repair and
    after oracle repair (hatched: gold was used, an upper bound)."""
    import numpy as np

    def draw(fig):
        axes = fig.subplots(1, len(reports), squeeze=False, sharey=True)[0]
        for ax, (split, report) in zip(axes, reports.items()):
            names = list(report["runs"])
            width = 0.8 / len(BARS)
            for i, (key, label) in enumerate(BARS):
                measured = [report["runs"][n][key] for n in names]  # None: the run has no such number
                bars = ax.bar(np.arange(len(names)) + (i - 1) * width, [100 * (v or 0.0) for v in measured], width,
                              label=label, hatch="//" if key == "final_ex_oracle" else None, color=f"C{i}")
                ax.bar_label(bars, labels=["n/a" if v is None else f"{100 * v:.1f}" for v in measured], fontsize=7)
            examples = next(iter(report["runs"].values()))["examples"] if names else 0
            ax.set_xticks(np.arange(len(names)), [plot_label(n) for n in names])
            ax.set_title(plot_label(f"{split} ({examples} questions)"))
            ax.set_ylabel("execution accuracy (%)")
            ax.set_ylim(0, 120)  # headroom above 100% for the labels and the legend
            ax.set_yticks(range(0, 101, 20))
        axes[0].legend(fontsize=8, loc="upper left", ncol=len(BARS))

    return _png(draw, (5.5 * len(reports), 4.2))


def loss_chart(curves: dict[str, list[dict[str, Any]]]) -> bytes:
    """Training loss per optimizer step, one line per training run (metrics.jsonl rows)."""

    def draw(fig):
        ax = fig.add_subplot()
        drawn = False
        for color, (name, rows) in zip(series_colors(len(curves)), curves.items()):
            finite, diverged = [], []
            for row in rows:
                step, loss = row.get("step"), row.get("loss")
                if _number(step) and _number(loss):
                    (finite.append((step, loss)) if math.isfinite(loss) and abs(loss) < 1e30 else diverged.append(step))
            if finite:
                ax.plot(*zip(*finite), marker="o", markersize=3, label=plot_label(name), color=color)
            if diverged:  # NaN or infinite losses: a diverged run must not look healthy
                ax.plot(diverged, [1.0] * len(diverged), "x", transform=ax.get_xaxis_transform(), color=color,
                        clip_on=False, label=plot_label(f"{name}: loss NaN/inf ({len(diverged)} steps)"))
            drawn = drawn or bool(finite or diverged)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("training loss")
        ax.set_title("Training loss")
        if drawn:
            ax.legend()
        else:
            ax.text(0.5, 0.5, "no loss values", ha="center", va="center", transform=ax.transAxes)

    return _png(draw, (7, 4.2))


COMPARE_FILES = {"compare.json", "compare.md", "ex_by_run.json"}  # per split folder, or at the top without splits


def compared_here(folder: Path) -> bool:
    """A folder `compare` wrote: its files and per-split folders, nothing else."""
    top = COMPARE_FILES | {"ex_by_run.png", "training_loss.png", "metrics.json", MARKER}
    return all(p.name in top if p.is_file() else p.is_dir() and {q.name for q in p.iterdir()} <= COMPARE_FILES
               for p in folder.iterdir())


def _named(items: list[str], flag_name: str) -> dict[str, str]:
    named: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value or name in named:
            raise UserError(f"--{flag_name} takes distinct NAME=PATH items, got {item!r}")
        named[name] = value
    return named


def make_parser(prog: str | None = "text2sql-mlops compare") -> ArgParser:
    parser = ArgParser(prog=prog, description="Compare evaluated runs: first-turn EX, final EX strict and oracle, "
                       "repair success, executable rate, error types, EX by hardness; per evaluation split, with charts.")
    flag(parser, "runs", nargs="+", required=True, metavar="NAME=DIR", help="evaluated run folders, in table order")
    flag(parser, "splits", nargs="+", metavar="SPLIT",
         help="evaluation splits: each run folder holds one evaluated folder per split (DIR/<split>); one report "
              "per split goes to OUT/<split>/ (default: the run folders are the evaluated folders, one report in OUT)")
    flag(parser, "training", nargs="+", default=[], metavar="NAME=JSONL",
         help="training metrics.jsonl files whose loss curves go into training_loss.png")
    flag(parser, "out", required=True, type=output_folder_type(compared_here),
         help="folder for compare.json, compare.md, ex_by_run.json and the charts (replaced as a whole)")
    return parser


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops compare") -> int:
    args = make_parser(prog).parse_args(argv)
    folders = _named(args.runs, "runs")
    # "none": a profile without a same-database split (params.yaml names the splits as strings)
    chosen = [split for split in args.splits or () if split.lower() not in ("none", "null")]
    splits = chosen or [None]
    reports = {split or "all": compare({name: load_run(str(Path(folder) / split) if split else folder)
                                        for name, folder in folders.items()}) for split in splits}
    curves = {name: list(read_jsonl(path)) for name, path in _named(args.training, "training").items()}
    with atomic_folder(args.out, compared_here) as staged:
        staged.mkdir()
        for split, report in reports.items():
            where = staged / split if chosen else staged
            where.mkdir(exist_ok=True)
            (where / "compare.json").write_text(json.dumps(report, indent=2) + "\n")
            (where / "compare.md").write_text(render_markdown(report))
            (where / "ex_by_run.json").write_text(json.dumps(plot_table(report), indent=2) + "\n")
        if chosen:
            (staged / "metrics.json").write_text(json.dumps(metrics(reports), indent=2) + "\n")
            (staged / "ex_by_run.json").write_text(json.dumps(plot_rows(reports), indent=2) + "\n")
        (staged / "ex_by_run.png").write_bytes(ex_chart(reports))
        if curves:
            (staged / "training_loss.png").write_bytes(loss_chart(curves))
    for split, report in reports.items():
        print(f"{split}:" if chosen else "", render_markdown(report).split("\n\n")[1], sep="\n" if chosen else "")
    return 0
