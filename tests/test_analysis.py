"""`report`: the reference project's analysis tables, on crafted trajectories with hand-computed numbers."""

from __future__ import annotations

import json
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
    from text2sql_mlops.mlops.report import _code

    assert _code("SELECT a FROM t") == "`SELECT a FROM t`"
    assert _code("SELECT `group` FROM t") == "``SELECT `group` FROM t``"
    assert _code("SELECT ``x`` FROM `t`") == "``` SELECT ``x`` FROM `t` ```"
