"""`report`: the reference project's analysis tables, on crafted trajectories with hand-computed numbers."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from built_records import candidate, turn
from built_records import trajectory as built_trajectory

from text2sql_mlops.cli import main as cli
from text2sql_mlops.core.records import Candidate, Trajectory
from text2sql_mlops.mlops.report import column_errors, online_repair, repair_breakdown, routing


def trajectory(i: int, *answers: Candidate, db_id: str = "flight_network", gold: str = "SELECT 1") -> Trajectory:
    """One candidate per turn."""
    return built_trajectory(*(turn(k + 1, [c]) for k, c in enumerate(answers)), index=i, id=f"e{i}", db_id=db_id,
                            question=f"Question {i}?", gold=gold)


NO_COLUMN = dict(executed=False, error="no such column: airport_id", error_type="no_such_column")
# e0: correct at once; e1: fails to run, repaired; e2: runs, empty (guard), repaired only by the
# verified (oracle) run; e3: runs cleanly and wrong, never fixed; e4: fails to run, never fixed.
TRAJECTORIES = [
    trajectory(0, candidate("SELECT 1", True)),
    trajectory(1, candidate("SELECT COUNT(*) FROM flight WHERE airport_id = 'LHR'", False, **NO_COLUMN), candidate("SELECT 1", True)),
    trajectory(2, candidate("SELECT 2", False, error_type="empty_result", signals=("empty_result",)), candidate("SELECT 1", True)),
    trajectory(3, candidate("SELECT 3", False, error_type="wrong_result"), candidate("SELECT 4", False, error_type="wrong_result")),
    trajectory(4, candidate("SELECT nope FROM flight", False, executed=False, error="no such column: nope", error_type="no_such_column"),
               candidate("SELECT nope FROM flight", False, executed=False, error="no such column: nope", error_type="no_such_column")),
]


def test_repair_breakdown_counts_first_turn_errors_and_their_repairs():
    result = repair_breakdown(TRAJECTORIES)
    assert result["by_error_type"] == {
        "no_such_column": {"first_turn_errors": 2, "repaired_strict": 1, "repaired_oracle": 1},
        "empty_result": {"first_turn_errors": 1, "repaired_strict": 0, "repaired_oracle": 1},
        "wrong_result": {"first_turn_errors": 1, "repaired_strict": 0, "repaired_oracle": 0},
    }


def test_routing_assigns_each_failure_to_the_verifier_that_sees_it():
    result = routing(TRAJECTORIES)
    assert result["first_turn_failures"] == 4
    assert result["by_route"] == {"online": {"failures": 2, "fixed_strict": 1, "fixed_oracle": 1},
                                  "guarded": {"failures": 1, "fixed_strict": 0, "fixed_oracle": 1},
                                  "offline": {"failures": 1, "fixed_strict": 0, "fixed_oracle": 0}}


def test_online_repair_compares_the_strict_final_answer_with_the_first():
    assert online_repair(TRAJECTORIES) == {"examples": 5, "fixed": 1, "broken": 0, "still_correct": 1, "still_wrong": 3}


def test_column_errors_are_diagnosed_against_the_database(demo_dataset: Path):
    from text2sql_mlops.sql.catalog import load_catalog

    catalog = load_catalog(str(demo_dataset / "database" / "flight_network" / "flight_network.sqlite"))
    misbound = trajectory(5, candidate("SELECT T1.name FROM flight AS T1 JOIN airline AS T2 ON T1.airline_id = T2.airline_id", False,
                                       executed=False, error="no such column: T1.name", error_type="no_such_column"))
    result = column_errors([*TRAJECTORIES, misbound], lambda db_id: catalog)
    # airport_id lives in airport, which the query does not read; nope is nowhere; name is in airline (T2)
    assert (result["no_such_column"], result["wrong_owner_table"], result["truly_missing"], result["alias_mis_binding"]) == (3, 1, 1, 1)
    assert result["cases"]["wrong_owner_table"][0]["owners"] == ["airport"]
    assert result["cases"]["alias_mis_binding"][0]["id"] == "e5"


def test_report_command_writes_json_and_markdown_per_run(tmp_path: Path, demo_dataset: Path, capsys):
    run = tmp_path / "eval_sft"
    run.mkdir()
    (run / "trajectories.jsonl").write_text("".join(json.dumps(t.to_dict()) + "\n" for t in TRAJECTORIES))
    (run / "run.json").write_text(json.dumps({"dataset_path": str(demo_dataset)}))
    for name in ("repair-breakdown", "routing", "online-repair", "column-errors"):
        out = tmp_path / name
        assert cli(["report", name, "--runs", f"SFT={run}", "--out", str(out)]) == 0
        report = json.loads((out / f"{name}.json").read_text())
        assert report["report"] == name and list(report["runs"]) == ["SFT"]
        assert (out / f"{name}.md").read_text().startswith(f"# {name}\n")
    assert json.loads((tmp_path / "online-repair" / "online-repair.json").read_text())["runs"]["SFT"]["fixed"] == 1
    capsys.readouterr()
    assert cli(["report", "routing", "--runs", f"SFT={tmp_path / 'nowhere'}", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "holds no trajectories.jsonl" in err and err.count("\n") == 1 and not (tmp_path / "x").exists()
    # a report replaces its own earlier output, never another report's
    before = (tmp_path / "routing" / "routing.json").read_bytes()
    assert cli(["report", "routing", "--runs", f"SFT={run}", "--out", str(tmp_path / "routing")]) == 0
    assert cli(["report", "routing", "--runs", f"SFT={run}", "--out", str(tmp_path / "repair-breakdown")]) == 2
    assert "nothing was changed" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "repair-breakdown").iterdir() if p.name != ".text2sql-mlops") == [
        "repair-breakdown.json", "repair-breakdown.md"]
    assert (tmp_path / "routing" / "routing.json").read_bytes() == before


@pytest.mark.parametrize("runs", [["SFT"], ["A=x", "A=y"]])
def test_report_runs_must_be_named_once(tmp_path: Path, capsys, runs):
    assert cli(["report", "routing", "--runs", *runs, "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith("error: --runs")


def test_sql_with_backticks_stays_one_inline_code_span():
    """column-errors.md put gold SQL holding `group` inside single backticks, which ended the span."""
    from text2sql_mlops.core.display import md_code as _code

    assert _code("SELECT a FROM t") == "`SELECT a FROM t`"
    assert _code("SELECT `group` FROM t") == "``SELECT `group` FROM t``"
    assert _code("SELECT ``x`` FROM `t`") == "``` SELECT ``x`` FROM `t` ```"
    assert _code("SELECT a\n\n# Heading\nFROM t") == "`SELECT a # Heading FROM t`"  # a blank line ended the span


HOSTILE = "</script><script>alert(1)</script> <img src=x onerror=alert(2)> | [x](javascript:alert(3)) *b* \u202eRTL"


def rendered(markdown_text: str) -> str:
    """Markdown as a viewer that allows inline HTML renders it (CommonMark with GFM tables)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(markdown_text)


def test_untrusted_text_in_column_errors_md_renders_as_text(demo_dataset: Path):
    """The question, the SQLite error (it repeats the model's identifier) and the SQL went into
    column-errors.md raw: a viewer rendering it ran <img onerror>, and SQL with a blank line broke
    out of its code span into headings and tables of its own."""
    from text2sql_mlops.mlops.report import markdown
    from text2sql_mlops.sql.catalog import load_catalog

    catalog = load_catalog(str(demo_dataset / "database" / "flight_network" / "flight_network.sqlite"))
    sql = f"SELECT `{HOSTILE}` FROM flight\n\n# Heading\n| a | b |\n|---|---|\n<img src=y onerror=alert(4)>"
    hostile = trajectory(6, candidate(sql, False, executed=False, error=f"no such column: {HOSTILE}", error_type="no_such_column"))
    hostile = replace(hostile, question=f"Which?\n\n# Injected {HOSTILE}")
    result = column_errors([hostile], lambda db_id: catalog)
    page = rendered(markdown("column-errors", {f"run {HOSTILE}": result}))
    for tag in ("<script", "<img", "<h2", "<a ", "<em>"):
        assert tag not in page, (tag, page)
    assert page.count("<table>") == 1 and page.count("<h1>") == 1 and "\u202e" not in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page  # shown, as text


@pytest.mark.parametrize("text", ["# Injected", "- item", "1. item", "12) item", "+ item", "===", "---", "<b>x</b>", "a | b"])
def test_md_text_never_opens_a_block_or_a_tag_where_a_line_starts(text: str):
    """A run name starts its list item in column-errors.md: "# x" became a heading inside it."""
    from text2sql_mlops.core.display import md_code, md_text

    alone, in_item = rendered(md_text(text)), rendered(f"- {md_text(text)}, rest")
    assert alone.startswith("<p>") and alone.count("<") == 2, alone  # one paragraph of text, no other element
    assert in_item.replace("\n", "").startswith("<ul><li>") and in_item.count("<") == 4, in_item  # ul, li and their ends
    assert md_code("") == md_code("  ") == "(empty)"


def test_the_pair_dashboard_shows_hostile_names_and_types_as_text_and_draws_them(tmp_path: Path):
    """Pair types and error types come from pair files, dataset names from the command line:
    `$\\frac{a}$` crashed the plots (matplotlib's math parser), `_name` vanished from legends, raw
    HTML and line breaks reached the Markdown tables, and margins near 1e308 crashed a histogram."""
    from text2sql_mlops.pairs import report as dashboard
    from text2sql_mlops.pairs.build import build_pair

    def pair(tag: str, pair_type: str, error_type: str | None, margin: float) -> dict:
        meta = {"example_id": tag, "db_id": "d", "question": "q?", "gold_sql": "SELECT 1", "turn": 1, "pair_type": pair_type,
                "chosen_reward": margin, "rejected_reward": 0.0, "chosen_executable": True, "rejected_executable": True,
                "rejected_error_type": error_type, "source": "natural", "gold_fallback": False}
        return build_pair([{"role": "user", "content": tag}], "SELECT 1", f"SELECT {tag}", **meta).to_dict()

    records = [pair("a", r"cost $\frac{a}$ x", f"bad\n{HOSTILE}", 1e308), pair("b", f"type {HOSTILE}\n| x |", None, -1e308),
               pair("c", "price $5 and $6", "wrong_result", 0.5)]
    path = tmp_path / "hostile.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "dash"
    name = "_hidden </script><script>alert(1)</script> <img src onerror> | \u202eRTL"  # a name holds no '='
    assert cli(["pairs", "report", "--datasets", f"{name}={path}", "--out", str(out)]) == 0
    page = rendered((out / "pair_quality.md").read_text())
    assert "<script" not in page and page.count("<img") == 3 and "<a " not in page and "\u202e" not in page  # the 3 plots
    summary_rows = len(dashboard.ROWS)
    assert page.count("<tr>") == summary_rows + 1 + (3 + 1) + (3 + 1)  # each table: its header and its rows, no more
    html_page = (out / "pair_quality.html").read_text()
    assert "<script" not in html_page and "<img src=x" not in html_page and "\u202e" not in html_page
    assert "1.000e+308" in (out / "pair_quality.md").read_text()  # not a 309-digit number
    assert all((out / name).stat().st_size > 1000 for name in dashboard.PLOTS)


def test_compare_charts_say_n_a_for_a_missing_number_and_mark_a_diverged_loss(monkeypatch):
    """The EX chart drew a run's missing oracle EX (an online-scope eval) as a measured 0.0 bar;
    the loss chart dropped NaN/inf losses silently (a diverged run looked healthy) and a 1e308
    loss crashed it."""
    from text2sql_mlops.mlops import compare

    drawn = {}

    def keep(draw, size):
        from matplotlib.figure import Figure

        fig = Figure(figsize=size)
        draw(fig)
        fig.canvas.draw()
        drawn["texts"] = [t.get_text() for ax in fig.axes for t in ax.texts] + [
            t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        return b""

    monkeypatch.setattr(compare, "_png", keep)
    runs = {"Online": {"first_turn_ex": 0.25, "final_ex_strict": 0.5, "final_ex_oracle": None, "examples": 4},
            "$x$_run": {"first_turn_ex": 0.5, "final_ex_strict": 0.5, "final_ex_oracle": 0.75, "examples": 4}}
    compare.ex_chart({"all": {"runs": runs}})
    assert "n/a" in drawn["texts"] and "75.0" in drawn["texts"] and "0.0" not in drawn["texts"]
    compare.loss_chart({"ok": [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}],
                        "diverged": [{"step": 1, "loss": 2.0}, {"step": 2, "loss": float("nan")}, {"step": 3, "loss": float("inf")},
                                     {"step": 4, "loss": 1e308}, {"step": 5, "loss": "abc"}]})
    assert "diverged: loss NaN/inf (3 steps)" in drawn["texts"]
    compare.loss_chart({"empty": [{"step": 1}]})
    assert drawn["texts"] == ["no loss values"]
