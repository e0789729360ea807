"""``text2sql-mlops pairs report``: the pair-quality dashboard.

    text2sql-mlops pairs report --datasets Raw=raw.jsonl Filtered=merged.jsonl --out DIR

Reads pair files (``records.Pair`` JSONL) and writes, side by side with one column
per dataset in the order given:

    DIR/pair_quality.json   the numbers (``pair_quality`` of each dataset)
    DIR/pair_quality.md     the same as Markdown tables
    DIR/pair_quality.html   one self-contained page: tables and plots inlined as base64 PNG
    DIR/pair_types.png, reward_margin.png, edit_ratio.png   the plots, for MLflow

DIR is built in a temporary folder and renamed into place, so a failed run leaves
nothing behind. The PNGs carry no timestamp or version, so identical inputs give
identical bytes (DVC sees no change). Prints a one-line JSON summary on stdout.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

from ..core.cliutil import ArgParser, flag
from ..core.display import md_code, md_text, plain, plot_label, series_colors
from ..core.errors import UserError
from ..core.fileio import atomic_folder, holds_only, output_folder_type, write_json
from ..core.records import NATURAL_PAIR_TYPES, Pair
from ..scoring.errors import ERROR_TYPES
from .build import read_pair_file
from .similarity import edit_distance_ratio

PLOTS = ("pair_types.png", "reward_margin.png", "edit_ratio.png")
OUTPUTS = ("pair_quality.json", "pair_quality.md", "pair_quality.html", *PLOTS)
CORRECT = "correct"  # the rejected side's "error type" when it is correct (cost pairs)
# ... when the pair file never said: a reference dpo_pairs.json pair (meta.assumed lists it)
UNKNOWN = "not recorded"
HIST_BINS = 20

# the rows of the summary table: (label, key in pair_quality, number format)
ROWS = (
    ("pairs", "pairs", "d"), ("natural pairs", "natural_pairs", "d"), ("synthetic pairs", "synthetic_pairs", "d"),
    ("synthetic fraction", "synthetic_fraction", ".3f"), ("gold-fallback pairs", "gold_fallback_pairs", "d"),
    ("duplicate pairs", "duplicate_pairs", "d"), ("duplicate rate", "duplicate_rate", ".3f"),
    ("mean reward margin", "mean_reward_margin", ".3f"), ("min reward margin", "min_reward_margin", ".3f"),
    ("max reward margin", "max_reward_margin", ".3f"), ("pair-type entropy (bits)", "pair_type_entropy_bits", ".3f"),
    ("mean SQL edit-distance ratio", "mean_edit_ratio", ".3f"),
    ("chosen executable rate", "chosen_executable_rate", ".3f"),
    ("executable hard-negative rate", "executable_hard_negative_rate", ".3f"),
    ("pairs with assumed measurements", "pairs_with_assumed_values", "d"),
)


# --------------------------------------------------------------------------- the numbers (pure)


# What a rollout measured of a pair, which a converter can only assume (its ids and texts can be empty)
MEASURED = frozenset({"chosen_reward", "rejected_reward", "chosen_executable", "rejected_executable", "rejected_error_type"})


def assumed(pair: Pair) -> set[str]:
    """The measured fields the pair file did not hold and a converter filled in (a reference
    ``dpo_pairs.json`` pair: ``meta.assumed``): never counted as measured."""
    return set(pair.meta.get("assumed") or ()) & MEASURED


def pair_series(pairs: list[Pair]) -> dict[str, list[float]]:
    """Per-pair values the averages and histograms use, in file order; a margin whose rewards
    were assumed is left out (it is the converter's default, the same for every such pair)."""
    return {
        "reward_margin": [float(p.meta["reward_margin"]) for p in pairs if not assumed(p) & {"chosen_reward", "rejected_reward"}],
        "edit_ratio": [edit_distance_ratio(p.meta["chosen_sql"], p.meta["rejected_sql"]) for p in pairs],
    }


def _order(keys, first=()) -> list[str]:
    """``first`` in its own order, then the rest sorted."""
    keys = set(keys)
    return [k for k in first if k in keys] + sorted(keys - set(first))


def pair_quality(pairs: list[Pair], series: dict[str, list[float]] | None = None) -> dict[str, Any]:
    """The quality numbers of one dataset. Rates are over all pairs, duplicates included; with
    no pairs they are None and the counts 0. A number a pair file did not record (``assumed``)
    is left out of its rate or mean, which is over the pairs that recorded it (None if none did)."""
    series = series if series is not None else pair_series(pairs)
    n = len(pairs)
    metas = [p.meta for p in pairs]
    unrecorded = [assumed(p) for p in pairs]

    def rate(count: int, of: int = n) -> float | None:
        return round(count / of, 6) if of else None

    def mean(values: list[float]) -> float | None:
        return round(math.fsum(values) / len(values), 6) if values else None

    def measured_rate(key: str) -> float | None:
        recorded = [m[key] for m, missing in zip(metas, unrecorded) if key not in missing]
        return rate(sum(recorded), len(recorded))

    seen: set[str] = set()
    duplicates = 0
    types: dict[str, int] = {}
    errors: dict[str, int] = {}
    for pair, meta, missing in zip(pairs, metas, unrecorded):
        duplicates += pair.id in seen
        seen.add(pair.id)
        types[meta["pair_type"]] = types.get(meta["pair_type"], 0) + 1
        error = UNKNOWN if "rejected_error_type" in missing else meta["rejected_error_type"] or CORRECT
        errors[error] = errors.get(error, 0) + 1
    synthetic = sum(m["source"] == "synthetic" for m in metas)
    type_order = _order(types, NATURAL_PAIR_TYPES)
    return {
        "pairs": n,
        "natural_pairs": n - synthetic,
        "synthetic_pairs": synthetic,
        "synthetic_fraction": rate(synthetic),
        # Natural pairs whose chosen side is the gold SQL; every synthetic pair's chosen is gold by
        # construction, so counting those would only repeat synthetic_pairs.
        "gold_fallback_pairs": sum(m["gold_fallback"] and m["source"] != "synthetic" for m in metas),
        "duplicate_pairs": duplicates,
        "duplicate_rate": rate(duplicates),
        "mean_reward_margin": mean(series["reward_margin"]),
        "min_reward_margin": round(min(series["reward_margin"]), 6) if series["reward_margin"] else None,
        "max_reward_margin": round(max(series["reward_margin"]), 6) if series["reward_margin"] else None,
        # How evenly the pairs spread over their types: 0 when one type has them all.
        "pair_type_entropy_bits": round(abs(-math.fsum(c / n * math.log2(c / n) for c in types.values())), 6) if n else None,
        "mean_edit_ratio": mean(series["edit_ratio"]),
        "chosen_executable_rate": measured_rate("chosen_executable"),
        "executable_hard_negative_rate": measured_rate("rejected_executable"),
        "pairs_with_assumed_values": sum(bool(missing) for missing in unrecorded),
        "pair_types": {t: types[t] for t in type_order},
        "pair_type_fractions": {t: rate(types[t]) for t in type_order},
        "rejected_error_types": {e: errors[e] for e in _order(errors, (*ERROR_TYPES, CORRECT, UNKNOWN))},
    }


def build_report(datasets: dict[str, tuple[str, list[Pair]]], series: dict[str, dict] | None = None) -> dict:
    """``{"datasets": [names in order], "paths": {name: path}, "quality": {name: pair_quality}}``."""
    series = series or {}
    return {
        "datasets": list(datasets),
        "paths": {name: path for name, (path, _) in datasets.items()},
        "quality": {name: pair_quality(pairs, series.get(name)) for name, (_, pairs) in datasets.items()},
    }


# --------------------------------------------------------------------------- rendering (pure)


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "n/a"
    if fmt.endswith("f") and abs(value) >= 1e9:  # a margin near the float limits printed 300 digits
        return format(value, ".3e")
    return format(value, fmt)


def _tables(report: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of each table: one column per dataset, in order."""
    names, quality = report["datasets"], [report["quality"][n] for n in report["datasets"]]
    header = ["metric", *names]
    summary = [[label, *(_cell(q[key], fmt) for q in quality)] for label, key, fmt in ROWS]
    types = _order({t for q in quality for t in q["pair_types"]}, NATURAL_PAIR_TYPES)

    def type_cell(q: dict, t: str) -> str:  # "count (fraction)"; an empty dataset has no fractions
        fraction = q["pair_type_fractions"].get(t, 0.0 if q["pairs"] else None)
        return f"{q['pair_types'].get(t, 0)} ({_cell(fraction, '.1%')})"

    type_rows = [[t, *(type_cell(q, t) for q in quality)] for t in types]
    errors = _order({e for q in quality for e in q["rejected_error_types"]}, (*ERROR_TYPES, CORRECT, UNKNOWN))
    error_rows = [[e, *(str(q["rejected_error_types"].get(e, 0)) for q in quality)] for e in errors]
    return [("Summary", header, summary), ("Pair types (count, fraction)", ["pair type", *names], type_rows),
            ("Rejected side: error type", ["error type", *names], error_rows)]


def render_markdown(report: dict) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(map(md_text, cells)) + " |"

    out = ["# Pair quality", ""]
    out += [f"- **{md_text(name)}**: {md_code(report['paths'][name])}" for name in report["datasets"]]
    for title, header, rows in _tables(report):
        out += ["", f"## {title}", "", line(header), "| --- |" + " ---: |" * (len(header) - 1)]
        out += [line(row) for row in rows]
    out += ["", "## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in PLOTS]
    return "\n".join(out) + "\n"


_CSS = ("body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
        "th,td{border:1px solid #ccc;padding:.3em .7em}td+td,th+th{text-align:right}th{background:#f3f3f3}"
        "img{max-width:100%;display:block;margin:1em 0}code{background:#f3f3f3}")


def render_html(report: dict, images: dict[str, bytes]) -> str:
    """One self-contained page: no external resources, plots as ``data:`` URIs."""
    esc = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8"><title>Pair quality</title>',
           f"<style>{_CSS}</style></head><body>", "<h1>Pair quality</h1>", "<ul>"]
    out += [f"<li><b>{esc(plain(n))}</b>: <code>{esc(plain(report['paths'][n]))}</code></li>" for n in report["datasets"]]
    out.append("</ul>")
    for title, header, rows in _tables(report):
        out += [f"<h2>{esc(title)}</h2>", "<table>", "<tr>" + "".join(f"<th>{esc(plain(h))}</th>" for h in header) + "</tr>"]
        out += ["<tr>" + "".join(f"<td>{esc(plain(c))}</td>" for c in row) + "</tr>" for row in rows]
        out.append("</table>")
    out.append("<h2>Plots</h2>")
    for name, data in images.items():
        encoded = base64.b64encode(data).decode("ascii")
        out.append(f'<img alt="{esc(Path(name).stem)}" src="data:image/png;base64,{encoded}">')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- plots


def render_plots(report: dict, series: dict[str, dict[str, list[float]]]) -> dict[str, bytes]:
    """The three PNGs, by file name. Drawn on an explicit Agg canvas with matplotlib's default
    style (no global backend switch, no user matplotlibrc) and saved without metadata, so the
    bytes depend only on the data (and the matplotlib/FreeType versions)."""
    import matplotlib.style
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = report["datasets"]
    quality = report["quality"]
    labels = {n: plot_label(f"{n} (n={quality[n]['pairs']})") for n in names}
    colors = dict(zip(names, series_colors(len(names))))

    def png(draw) -> bytes:
        with matplotlib.style.context("default"):
            fig = Figure(figsize=(8, 4.5), dpi=100)
            FigureCanvasAgg(fig)
            draw(fig.add_subplot())
            fig.tight_layout()
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", metadata={"Software": None})
        return buffer.getvalue()

    def no_data(ax, what: str = "no pairs", key: str | None = None) -> bool:
        if any(series[n][key] if key else quality[n]["pairs"] for n in names):
            return False
        ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes)
        return True

    def pair_types(ax):
        types = _order({t for n in names for t in quality[n]["pair_types"]}, NATURAL_PAIR_TYPES)
        height = 0.8 / max(len(names), 1)
        for i, name in enumerate(names):
            fractions = [quality[name]["pair_type_fractions"].get(t) or 0.0 for t in types]
            ax.barh(np.arange(len(types)) + i * height, fractions, height=height, label=labels[name], color=colors[name])
        ax.set_yticks(np.arange(len(types)) + height * (len(names) - 1) / 2, [plot_label(t) for t in types], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("fraction of pairs")
        ax.set_title("Pair types")
        if not no_data(ax):
            ax.legend()

    def histogram(key: str, title: str, xlabel: str, fixed: tuple[float, float] | None):
        def draw(ax):
            values = [v for n in names for v in series[n][key]]
            lo, hi = fixed or ((min(values), max(values)) if values else (0.0, 1.0))
            if lo == hi:
                lo, hi = lo - 0.5, hi + 0.5
            ax.set_xlabel(xlabel)
            ax.set_ylabel("fraction of pairs")
            ax.set_title(title)
            if not math.isfinite(hi - lo):  # margins near the float limits: no bin width to draw with
                ax.text(0.5, 0.5, "values too large to plot", ha="center", va="center", transform=ax.transAxes)
                return
            bins = np.linspace(lo, hi, HIST_BINS + 1)
            for name in names:
                data = series[name][key]
                if data:  # fraction of the dataset's pairs per bin, so sizes compare
                    ax.hist(data, bins=bins, weights=[1 / len(data)] * len(data), histtype="step",
                            linewidth=1.5, label=labels[name], color=colors[name])
            if not no_data(ax, "no pairs" if not any(quality[n]["pairs"] for n in names) else "no recorded values", key):
                ax.legend()
        return draw

    return {
        "pair_types.png": png(pair_types),
        "reward_margin.png": png(histogram("reward_margin", "Reward margin (chosen - rejected)",
                                           "reward margin", None)),
        "edit_ratio.png": png(histogram("edit_ratio", "SQL edit-distance ratio (chosen vs rejected)",
                                        "token edit distance / longer length", (0.0, 1.0))),
    }


# --------------------------------------------------------------------------- command line


def parse_datasets(specs: list[str]) -> dict[str, str]:
    datasets: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise UserError(f"--datasets takes NAME=PATH, got {spec!r}; e.g. --datasets Raw=pairs.jsonl")
        if name in datasets:
            raise UserError(f"--datasets names {name!r} twice; give each dataset its own name")
        datasets[name] = path
    return datasets


def reported_here(folder: Path) -> bool:
    """A folder `pairs report` wrote: only report files."""
    return holds_only(folder, OUTPUTS)


def make_parser(prog: str | None = None) -> ArgParser:
    parser = ArgParser(prog=prog, description="Pair-quality dashboard: JSON, Markdown and a self-contained HTML page "
                                              "with plots, one column per pair file.")
    flag(parser, "datasets", nargs="+", required=True, metavar="NAME=PATH",
         help="pair files (JSONL of records.Pair, or the reference project's dpo_pairs.json), each with a column name, "
              "e.g. Raw=raw.jsonl Filtered=merged.jsonl")
    flag(parser, "out", "--output_dir", "--output-dir", required=True, metavar="DIR", type=output_folder_type(reported_here),
         help="folder for the report; replaced as a whole (only a previous report may be there)")
    return parser


def main(argv: list[str] | None = None, prog: str = "text2sql-mlops pairs report") -> int:
    args = make_parser(prog).parse_args(argv)
    out = Path(args.out).resolve()
    datasets = {name: (path, read_pair_file(path, "pairs report")) for name, path in parse_datasets(args.datasets).items()}
    series = {name: pair_series(pairs) for name, (_, pairs) in datasets.items()}
    report = build_report(datasets, series)
    images = render_plots(report, series)
    with atomic_folder(out, reported_here) as staged:
        staged.mkdir()
        write_json(staged / "pair_quality.json", report)
        (staged / "pair_quality.md").write_text(render_markdown(report), encoding="utf-8")
        (staged / "pair_quality.html").write_text(render_html(report, images), encoding="utf-8")
        for name, data in images.items():
            (staged / name).write_bytes(data)
    keys = ("pairs", "synthetic_fraction", "duplicate_rate", "mean_reward_margin", "mean_edit_ratio")
    print(json.dumps({"out": args.out, "datasets": {name: {k: q[k] for k in keys}
                                                    for name, q in report["quality"].items()}}))
    return 0
