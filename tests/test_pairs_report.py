"""`pairs report`: the pair-quality numbers, worked out by hand, and the dashboard files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from text2sql_mlops import cli
from text2sql_mlops.core.errors import UserError
from text2sql_mlops.core.fileio import MARKER, read_jsonl
from text2sql_mlops.core.records import PAIR_SOURCE, Pair, read_pairs
from text2sql_mlops.pairs import report
from text2sql_mlops.pairs.build import build_pair

FIXTURE = Path(__file__).parent / "fixtures" / "report" / "pairs_small.jsonl"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# pairs_small.jsonl, 8 records (made with build_pair; edit ratios = token edits / longer token count):
#  #  pair_type                                   source     gold_fb margin       edit ratio  rej_exec rej_error
#  1  repair_correct_vs_repair_failed             natural    F       1.0-0.0=1.0  name->nme 1/4=0.25   F  no_such_column
#  2  first_turn_correct_sample_vs_failed_sample  natural    F       1.0-0.2=0.8  > -> <    1/8=0.125  T  wrong_result
#  3  gold_vs_failed_attempt                      natural    T       1.0-0.0=1.0  drop name 1/4=0.25   F  syntax
#  4  correct_low_cost_vs_correct_high_cost       natural    F       1.0-0.9=0.1  +DISTINCT 1/5=0.2    T  None (correct)
#  5  synthetic_drop_where                        synthetic  T       1.0-0.2=0.8  -WHERE..  4/8=0.5    T  wrong_row_count
#  6  synthetic_swap_column                       synthetic  T       1.0-0.2=0.8  name->country 1/4=0.25 T wrong_result
#  7  synthetic_drop_where                        synthetic  T       1.0-0.2=0.8  -WHERE..  4/8=0.5    T  wrong_row_count
#  8  exact copy of #1 (same id)
# Every chosen side is executable.
SMALL_EXPECTED = {
    "pairs": 8,
    "natural_pairs": 5,  # 1, 2, 3, 4, 8
    "synthetic_pairs": 3,  # 5, 6, 7
    "synthetic_fraction": 0.375,  # 3 / 8
    "gold_fallback_pairs": 1,  # 3 (5, 6 and 7 are synthetic: their chosen is gold by construction)
    "duplicate_pairs": 1,  # 8 repeats 1's id
    "duplicate_rate": 0.125,  # 1 / 8
    "mean_reward_margin": 0.7875,  # (1.0 + 0.8 + 1.0 + 0.1 + 0.8 + 0.8 + 0.8 + 1.0) / 8 = 6.3 / 8
    "min_reward_margin": 0.1,  # 4
    "max_reward_margin": 1.0,  # 1, 3, 8
    "pair_type_entropy_bits": 2.5,  # types 2,1,1,1,2,1 of 8: 2 * (1/4 * 2) + 4 * (1/8 * 3) = 1 + 1.5
    "mean_edit_ratio": 0.290625,  # (0.25 + 0.125 + 0.25 + 0.2 + 0.5 + 0.25 + 0.5 + 0.25) / 8 = 2.325 / 8
    "chosen_executable_rate": 1.0,  # 8 / 8
    "executable_hard_negative_rate": 0.625,  # rejected runs in 2, 4, 5, 6, 7: 5 / 8
    "pairs_with_assumed_values": 0,  # every pair records every number
    "pair_types": {  # natural types in NATURAL_PAIR_TYPES order, then synthetic ones sorted
        "repair_correct_vs_repair_failed": 2,
        "first_turn_correct_sample_vs_failed_sample": 1,
        "gold_vs_failed_attempt": 1,
        "correct_low_cost_vs_correct_high_cost": 1,
        "synthetic_drop_where": 2,
        "synthetic_swap_column": 1,
    },
    "pair_type_fractions": {
        "repair_correct_vs_repair_failed": 0.25,  # 2 / 8
        "first_turn_correct_sample_vs_failed_sample": 0.125,  # 1 / 8
        "gold_vs_failed_attempt": 0.125,
        "correct_low_cost_vs_correct_high_cost": 0.125,
        "synthetic_drop_where": 0.25,  # 2 / 8
        "synthetic_swap_column": 0.125,
    },
    "rejected_error_types": {  # scoring.errors.ERROR_TYPES order, then "correct"
        "no_such_column": 2,  # 1, 8
        "syntax": 1,  # 3
        "wrong_result": 2,  # 2, 6
        "wrong_row_count": 2,  # 5, 7
        "correct": 1,  # 4: a cost pair, rejected_error_type None
    },
}


def small_pairs() -> list[Pair]:
    return read_pairs(FIXTURE)


def small_records() -> list[dict]:
    """The fixture's records as the file holds them, to spoil."""
    return list(read_jsonl(FIXTURE))


def write_pairs(path: Path, pairs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    return path


def run_cli(*argv: str) -> int:
    return cli.main(["pairs", "report", *argv])


def test_pair_quality_of_the_hand_built_fixture():
    assert report.pair_quality(small_pairs()) == SMALL_EXPECTED


def test_fixture_is_what_pair_create_makes():
    """The fixture's margins and ids are build_pair's, so the report reads real pair records."""
    for record in small_records():
        meta = record["meta"]
        rebuilt = build_pair(record["prompt"], meta["chosen_sql"], meta["rejected_sql"],
                              **{k: v for k, v in meta.items() if k not in ("chosen_sql", "rejected_sql")})
        assert rebuilt.to_dict() == record


def test_empty_dataset_gives_zeros_and_none():
    assert report.pair_quality([]) == {
        "pairs": 0, "natural_pairs": 0, "synthetic_pairs": 0, "synthetic_fraction": None,
        "gold_fallback_pairs": 0, "duplicate_pairs": 0, "duplicate_rate": None,
        "mean_reward_margin": None, "min_reward_margin": None, "max_reward_margin": None,
        "pair_type_entropy_bits": None, "mean_edit_ratio": None,
        "chosen_executable_rate": None, "executable_hard_negative_rate": None, "pairs_with_assumed_values": 0,
        "pair_types": {}, "pair_type_fractions": {}, "rejected_error_types": {},
    }


def test_duplicates_are_counted_within_a_dataset():
    first, second = small_pairs()[:2]
    quality = report.pair_quality([first, second, first, first, second])
    assert quality["duplicate_pairs"] == 3  # the 3rd, 4th and 5th repeat an earlier id
    assert quality["duplicate_rate"] == 0.6  # 3 / 5
    assert quality["pairs"] == 5  # duplicates still count as pairs: the rate shows them


def test_two_datasets_side_by_side_in_the_order_given(tmp_path, capsys):
    pairs = small_records()
    filtered = write_pairs(tmp_path / "filtered.jsonl", [pairs[0], pairs[4]])  # pairs 1 and 5
    out = tmp_path / "report"
    assert run_cli("--datasets", f"Raw={FIXTURE}", f"Filtered={filtered}", "--out", str(out)) == 0

    data = json.loads((out / "pair_quality.json").read_text())
    assert data["datasets"] == ["Raw", "Filtered"]
    assert list(data["quality"]) == ["Raw", "Filtered"]
    assert data["paths"] == {"Raw": str(FIXTURE), "Filtered": str(filtered)}
    assert data["quality"]["Raw"] == SMALL_EXPECTED
    filtered_q = data["quality"]["Filtered"]
    assert filtered_q["pairs"] == 2
    assert filtered_q["synthetic_fraction"] == 0.5  # 1 / 2
    assert filtered_q["gold_fallback_pairs"] == 0  # pair 5 is synthetic, pair 1 the model's own
    assert filtered_q["mean_reward_margin"] == 0.9  # (1.0 + 0.8) / 2
    assert filtered_q["pair_type_entropy_bits"] == 1.0  # two types, one pair each
    assert filtered_q["mean_edit_ratio"] == 0.375  # (0.25 + 0.5) / 2
    assert filtered_q["executable_hard_negative_rate"] == 0.5  # pair 5 only: 1 / 2
    assert filtered_q["duplicate_rate"] == 0.0

    md = (out / "pair_quality.md").read_text()
    assert "| metric | Raw | Filtered |" in md
    assert "| pairs | 8 | 2 |" in md
    assert "| synthetic fraction | 0.375 | 0.500 |" in md
    assert "| mean SQL edit-distance ratio | 0.291 | 0.375 |" in md
    assert "| synthetic_swap_column | 1 (12.5%) | 0 (0.0%) |" in md  # absent types show as 0
    assert "| correct | 1 | 0 |" in md
    assert sorted(p.name for p in out.iterdir()) == sorted([*report.OUTPUTS, MARKER])

    summary = capsys.readouterr().out.strip().splitlines()
    assert len(summary) == 1
    assert json.loads(summary[0])["datasets"]["Filtered"]["pairs"] == 2


def test_html_is_self_contained(tmp_path):
    out = tmp_path / "report"
    assert run_cli("--datasets", f"Raw={FIXTURE}", "--out", str(out)) == 0
    page = (out / "pair_quality.html").read_text()
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == len(report.PLOTS)
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "href=" not in page and "<script" not in page and "<link" not in page
    assert "url(" not in page and "@import" not in page
    assert "<td>0.375</td>" in page  # the summary table is there too


def test_pngs_are_valid_and_byte_identical_across_runs(tmp_path):
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        assert run_cli("--datasets", f"Raw={FIXTURE}", f"Again={FIXTURE}", "--out", str(out)) == 0
    for name in report.OUTPUTS:  # every output, plots and pages alike
        first, second = ((out / name).read_bytes() for out in outs)
        assert first == second, name
    for name in report.PLOTS:
        data = (outs[0] / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
        assert b"tEXt" not in data and b"tIME" not in data  # no Software/date chunks


def test_empty_dataset_through_the_cli(tmp_path):
    empty = write_pairs(tmp_path / "empty.jsonl", [])
    out = tmp_path / "report"
    assert run_cli("--datasets", f"Empty={empty}", f"Raw={FIXTURE}", "--out", str(out)) == 0
    assert run_cli("--datasets", f"Empty={empty}", "--out", str(tmp_path / "only_empty")) == 0
    data = json.loads((out / "pair_quality.json").read_text())
    assert data["quality"]["Empty"]["pairs"] == 0
    assert "| mean reward margin | n/a | 0.787 |" in (out / "pair_quality.md").read_text()
    for name in report.PLOTS:
        assert (tmp_path / "only_empty" / name).read_bytes().startswith(PNG_SIGNATURE)


def test_rerun_replaces_a_previous_report(tmp_path):
    out = tmp_path / "report"
    assert run_cli("--datasets", f"Raw={FIXTURE}", "--out", str(out)) == 0
    assert run_cli("--datasets", f"Other={FIXTURE}", "--out", str(out)) == 0
    assert json.loads((out / "pair_quality.json").read_text())["datasets"] == ["Other"]


def bad_record(tmp_path: Path) -> list[str]:
    pairs = small_records()
    del pairs[2]["meta"]["source"]
    return [f"Raw={write_pairs(tmp_path / 'bad.jsonl', pairs)}"]


def bad_json(tmp_path: Path) -> list[str]:
    path = tmp_path / "broken.jsonl"
    path.write_text(FIXTURE.read_text() + "{not json\n")
    return [f"Raw={path}"]


@pytest.mark.parametrize("datasets, message", [
    (lambda tmp: [str(FIXTURE)], "NAME=PATH"),
    (lambda tmp: [f"={FIXTURE}"], "NAME=PATH"),
    (lambda tmp: [f"Raw={FIXTURE}", f"Raw={FIXTURE}"], "twice"),
    (lambda tmp: [f"Raw={tmp / 'missing.jsonl'}"], "not found"),
    (bad_record, "bad.jsonl:3: pair record lacks meta.source"),
    (bad_json, "invalid JSON"),
], ids=["no-equals", "no-name", "duplicate-name", "missing-file", "bad-record", "bad-json"])
def test_bad_input_is_one_error_line_and_leaves_nothing(tmp_path, capsys, datasets, message):
    out = tmp_path / "out" / "report"
    assert run_cli("--datasets", *datasets(tmp_path), "--out", str(out)) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], captured.err
    assert captured.out == ""
    assert not (tmp_path / "out").exists()  # not even the parent, nor a temporary


def test_refuses_to_replace_a_folder_with_other_files(tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert run_cli("--datasets", f"Raw={FIXTURE}", "--out", str(out)) == 2
    assert (out / "notes.txt").read_text() == "keep me"
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_bad_meta_values_are_named():
    # The report reads pair files through the one validator, records.Pair.from_dict.
    pair = small_records()[0]
    pair["meta"]["reward_margin"] = "high"
    with pytest.raises(UserError, match=rf'^p.jsonl:1: meta.reward_margin must be a finite number, got "high"; {PAIR_SOURCE}$'):
        Pair.from_dict(pair, "p.jsonl:1")
    pair["meta"]["reward_margin"] = True
    with pytest.raises(UserError, match="finite number"):
        Pair.from_dict(pair, "p.jsonl:1")
    with pytest.raises(UserError, match="pair record lacks id, prompt, chosen, rejected, meta.pair_type"):
        Pair.from_dict({"meta": {}}, "p.jsonl:1")
    Pair.from_dict(small_records()[3], "p.jsonl:1")  # rejected_error_type None is fine


def test_nan_margin_is_refused_not_averaged(tmp_path, capsys):
    pairs = small_records()
    pairs[1]["meta"]["reward_margin"] = float("nan")  # json writes NaN, and reads it back
    path = write_pairs(tmp_path / "nan.jsonl", pairs)
    assert run_cli("--datasets", f"Raw={path}", "--out", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert err == f"error: {path}:2: meta.reward_margin must be a finite number, got NaN; {PAIR_SOURCE}\n"
    assert not (tmp_path / "out").exists()


def test_reference_pairs_show_only_what_they_recorded(tmp_path, capsys):
    """The reference's dpo_pairs.json records lack rewards, executability and error types; the
    converter fills defaults (meta.assumed), which the dashboard showed as measured: margin 1.0,
    chosen executable 1.000, hard negatives 0.000, and every rejected answer "correct"."""
    reference = [
        {"prompt": "Question: Names?\nSQL:", "chosen": "SELECT name FROM singer", "rejected": "SELECT nme FROM singer",
         "chosen_reward": 1.0, "rejected_reward": -0.5, "chosen_executable": True, "rejected_executable": False,
         "rejected_error_type": "no_such_column", "source": "natural", "gold_fallback": False, "id": "q1", "db_id": "singers",
         "question": "Names?", "gold": "SELECT name FROM singer", "pair_type": "repair_correct_vs_repair_failed", "turn": 2},
        {"prompt": "Question: Ages?\nSQL:", "chosen": "SELECT age FROM singer", "rejected": "SELECT agee FROM singer"},
        {"prompt": "Question: Count?\nSQL:", "chosen": "SELECT count(*) FROM singer", "rejected": "SELECT 1"},
    ]
    (tmp_path / "dpo_pairs.json").write_text(json.dumps(reference))
    out = tmp_path / "report"
    assert run_cli("--datasets", f"Ref={tmp_path / 'dpo_pairs.json'}", "--out", str(out)) == 0  # read as merge reads it
    assert "3 reference pairs converted" in capsys.readouterr().err
    quality = json.loads((out / "pair_quality.json").read_text())["quality"]["Ref"]
    assert quality["pairs"] == 3 and quality["pairs_with_assumed_values"] == 2
    assert quality["mean_reward_margin"] == quality["min_reward_margin"] == quality["max_reward_margin"] == 1.5  # pair 1 only
    assert quality["chosen_executable_rate"] == 1.0 and quality["executable_hard_negative_rate"] == 0.0  # pair 1 only
    assert quality["rejected_error_types"] == {"no_such_column": 1, report.UNKNOWN: 2}  # never "correct"
    md = (out / "pair_quality.md").read_text()
    assert f"| {report.UNKNOWN} | 2 |" in md and "| pairs with assumed measurements | 2 |" in md
    # a rejected error type recorded as null is a correct rejected side (a cost pair), not an unrecorded one
    cost = {**reference[0], "rejected_error_type": None, "rejected_executable": True, "question": "Cost?", "rejected": "SELECT 2"}
    (tmp_path / "cost.json").write_text(json.dumps([cost]))
    assert run_cli("--datasets", f"Ref={tmp_path / 'cost.json'}", "--out", str(tmp_path / "r3")) == 0
    quality = json.loads((tmp_path / "r3" / "pair_quality.json").read_text())["quality"]["Ref"]
    assert quality["rejected_error_types"] == {report.CORRECT: 1} and quality["pairs_with_assumed_values"] == 0
    # none recorded: no number at all
    only_assumed = tmp_path / "assumed.json"
    only_assumed.write_text(json.dumps(reference[1:]))
    assert run_cli("--datasets", f"Ref={only_assumed}", "--out", str(tmp_path / "r2")) == 0
    quality = json.loads((tmp_path / "r2" / "pair_quality.json").read_text())["quality"]["Ref"]
    assert quality["mean_reward_margin"] is None and quality["chosen_executable_rate"] is None
    assert quality["executable_hard_negative_rate"] is None and quality["rejected_error_types"] == {report.UNKNOWN: 2}
    assert "| mean reward margin | n/a |" in (tmp_path / "r2" / "pair_quality.md").read_text()
