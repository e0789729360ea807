"""Untrusted text (model SQL, SQLite errors, dataset questions, names from a command line)
made safe to show in Markdown reports and matplotlib charts.

Reports are read in viewers that render Markdown with HTML (MLflow's artifact view, editors,
Git hosting): a question holding ``<img onerror=...>``, a blank line that ends a code span,
or a ``|`` that adds a table column must show as text. Charts parse ``$...$`` as math (a
stray one raised a parse error) and leave out legend labels starting with ``_``. Bidi
controls (U+202E) reverse the text after them, which can disguise a name, in either.
"""

from __future__ import annotations

import re

# Bidi embeddings, overrides and isolates, and the other C0/C1 controls (tab and newline handled apart)
_CONTROLS = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile(r"\s*[\r\n\u2028\u2029]+\s*")
# Characters Markdown or inline HTML give a meaning inside a line; each is escaped to show as itself.
_MARKDOWN = re.compile(r"([\\`*\[\]<>|&])")
# A line start that opens a block: a heading, a list item, a setext underline or thematic break
_BLOCK_START = re.compile(r"^(\s*)(#{1,6}(?=\s|$)|[-+](?=\s|$)|[-=]+\s*$)|^(\s*\d{1,9})([.)])(?=\s|$)")


def plain(text: str) -> str:
    """``text`` on one line without control characters: line breaks become one space."""
    return _CONTROLS.sub("", _LINE_BREAKS.sub(" ", str(text))).replace("\t", " ")


def md_text(text: str) -> str:
    """``text`` as literal Markdown text on one line (a table cell, a list item, a heading)."""
    escaped = _MARKDOWN.sub(lambda m: {"<": "&lt;", ">": "&gt;", "&": "&amp;"}.get(m[1], "\\" + m[1]), plain(text))
    # "# x", "- x", "1. x", "===" at the start of a list item or a heading's line would open a block
    return _BLOCK_START.sub(lambda m: f"{m[1]}\\{m[2]}" if m[2] else f"{m[3]}\\{m[4]}", escaped, count=1)


def md_code(text: str) -> str:
    """``text`` as Markdown inline code on one line: fenced with more backticks than it holds
    in a row (SQL quotes MySQL-style names as `group`, which closed a one-backtick span early)."""
    text = plain(text)
    if not text.strip():
        return "(empty)"  # a code span needs a character; two bare backticks show as themselves
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def series_colors(count: int) -> list:
    """One matplotlib colour per plotted series (dataset, run), the same in every chart of a
    report: the default cycle's 10, or tab20's 20 for more (repeating only past 20)."""
    import matplotlib

    palette = [f"C{i}" for i in range(10)] if count <= 10 else [matplotlib.colormaps["tab20"](i) for i in range(20)]
    return [palette[i % len(palette)] for i in range(count)]


def plot_label(text: str) -> str:
    """``text`` as a matplotlib label drawn as written: no math mode, shown in legends."""
    text = plain(text).replace("$", r"\$")
    return " " + text if text.startswith("_") else text
