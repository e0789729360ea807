"""pairs mine: every pair type from crafted trajectories, and end to end from a mock rollout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from built_records import candidate as cand
from built_records import trajectory as built_trajectory
from built_records import turn

from text2sql_mlops.cli import main as cli
from text2sql_mlops.core.records import (
    NATURAL_PAIR_TYPES,
    Pair,
    Trajectory,
    Turn,
    pair_id,
    read_pairs,
    read_trajectories,
)
from text2sql_mlops.pairs.mine import MineConfig, mine, mine_trajectory
from text2sql_mlops.prompts import format_answer
from text2sql_mlops.rollout.command import run_rollout
from text2sql_mlops.rollout.config import RolloutConfig

GOLD = "SELECT name FROM singer WHERE age > 30"


def trajectory(*turns: Turn, gold_error=None) -> Trajectory:
    return built_trajectory(*turns, gold=GOLD, gold_error=gold_error)


def types(pairs) -> list[str]:
    return [p.meta["pair_type"] for p in pairs]


def test_repair_correct_vs_repair_failed_uses_the_repair_prompt():
    t = trajectory(
        turn(1, [cand("SELECT nme FROM singer", False, executed=False, reward=-0.2)] * 2),
        turn(2, [cand(GOLD, True, reward=0.7), cand("SELECT name FROM singer", False, reward=0.2),
                 cand("SELECT name FROM singer", False, reward=0.2)], selected=0),
    )
    pairs = [p for p in mine_trajectory(t, MineConfig()) if p.meta["pair_type"] == "repair_correct_vs_repair_failed"]
    assert len(pairs) == 1  # the two identical failed samples make one pair
    pair = pairs[0]
    assert pair.prompt == t.turns[1].messages and pair.meta["turn"] == 2
    assert pair.chosen == format_answer(GOLD) and pair.rejected == format_answer("SELECT name FROM singer")
    assert pair.meta["reward_margin"] == pytest.approx(0.5)
    assert pair.meta["rejected_error_type"] == "wrong_result" and pair.meta["source"] == "natural"
    assert Pair.from_dict(pair.to_dict(), "mined") == pair  # every meta key, each of its type
    assert pair.id == pair_id(pair.prompt, pair.chosen, pair.rejected)


def test_self_repair_pairs_each_failed_attempt_with_the_repaired_sql():
    t = trajectory(
        turn(1, [cand("SELECT nme FROM singer", False, executed=False, reward=-0.2)]),
        turn(2, [cand("SELECT name FROM singer", False, reward=0.2)]),
        turn(3, [cand(GOLD, True, reward=0.6)]),
    )
    pairs = mine_trajectory(t, MineConfig())
    assert types(pairs) == ["self_repair_success_vs_failed_attempt"] * 2
    assert [p.meta["turn"] for p in pairs] == [1, 2]
    assert [p.meta["rejected_sql"] for p in pairs] == ["SELECT nme FROM singer", "SELECT name FROM singer"]
    assert all(p.meta["chosen_sql"] == GOLD and p.meta["chosen_reward"] == 0.6 for p in pairs)
    assert [p.meta["rejected_executable"] for p in pairs] == [False, True]


def test_first_turn_samples_and_no_self_repair_when_solved_at_turn_one():
    t = trajectory(turn(1, [cand("SELECT name FROM singer", False, reward=0.2), cand(GOLD, True, reward=1.0)], selected=1))
    pairs = mine_trajectory(t, MineConfig())
    assert types(pairs) == ["first_turn_correct_sample_vs_failed_sample"]
    assert pairs[0].meta["chosen_reward"] == 1.0 and pairs[0].meta["reward_margin"] == pytest.approx(0.8)


def test_gold_pairs_only_when_asked_and_never_for_bad_gold_or_solved_examples():
    unsolved = trajectory(turn(1, [cand("SELECT x FROM singer", False, executed=False, reward=-0.5)]))
    assert mine_trajectory(unsolved, MineConfig()) == []
    pairs = mine_trajectory(unsolved, MineConfig(use_gold_when_failed=True))
    assert types(pairs) == ["gold_vs_failed_attempt"]
    assert pairs[0].meta["gold_fallback"] is True and pairs[0].meta["chosen_sql"] == GOLD
    assert pairs[0].meta["reward_margin"] == pytest.approx(1.5)
    bad_gold = trajectory(turn(1, [cand("SELECT x FROM singer", False, executed=False)]), gold_error="no such table")
    assert mine_trajectory(bad_gold, MineConfig(use_gold_when_failed=True)) == []


def test_gold_repair_pairs_use_each_repair_prompt_and_its_distinct_failed_answers():
    copy = "SELECT x FROM singer"
    unsolved = trajectory(turn(1, [cand(copy, False, executed=False, reward=-0.5)]),
                          turn(2, [cand(copy, False, executed=False, reward=-0.5)] * 2 + [cand("SELECT name FROM singer", False, reward=0.2)]))
    assert mine_trajectory(unsolved, MineConfig()) == []
    assert types(mine_trajectory(unsolved, MineConfig(use_gold_when_failed=True))) == ["gold_vs_failed_attempt"]  # opt-in
    pairs = mine_trajectory(unsolved, MineConfig(use_gold_when_failed=True, pair_types=NATURAL_PAIR_TYPES))
    assert types(pairs) == ["gold_vs_failed_attempt", "gold_vs_failed_repair", "gold_vs_failed_repair"]
    repairs = pairs[1:]
    assert all(p.prompt == unsolved.turns[1].messages and p.meta["turn"] == 2 and p.meta["gold_fallback"] for p in repairs)
    assert [p.meta["rejected_sql"] for p in repairs] == [copy, "SELECT name FROM singer"]
    solved = trajectory(turn(1, [cand(copy, False, executed=False)]), turn(2, [cand(GOLD, True, reward=0.7)]))
    assert "gold_vs_failed_repair" not in types(mine_trajectory(solved, MineConfig(use_gold_when_failed=True, pair_types=NATURAL_PAIR_TYPES)))


def test_cost_pairs_need_the_gap():
    cheap, costly = cand(GOLD, True, reward=1.0, cost=0.0), cand(GOLD + " ORDER BY name", True, reward=0.88, cost=-0.12)
    t = trajectory(turn(1, [costly, cheap]))
    pairs = mine_trajectory(t, MineConfig(min_cost_reward_gap=0.1))
    assert types(pairs) == ["correct_low_cost_vs_correct_high_cost"]
    assert pairs[0].meta["chosen_sql"] == GOLD and pairs[0].meta["rejected_error_type"] is None
    assert mine_trajectory(t, MineConfig(min_cost_reward_gap=0.2)) == []


def test_priority_order_cap_and_type_selection():
    t = trajectory(
        turn(1, [cand("SELECT nme FROM singer", False, executed=False, reward=-0.2), cand("SELECT age FROM singer", False, reward=0.2)]),
        turn(2, [cand(GOLD, True, reward=0.7), cand("SELECT name FROM singer", False, reward=-0.5)]),
    )
    pairs = mine_trajectory(t, MineConfig())
    assert types(pairs) == ["repair_correct_vs_repair_failed", "self_repair_success_vs_failed_attempt"]
    assert types(mine_trajectory(t, MineConfig(max_pairs_per_example=1))) == ["repair_correct_vs_repair_failed"]
    only = MineConfig(pair_types=("self_repair_success_vs_failed_attempt",))
    assert types(mine_trajectory(t, only)) == ["self_repair_success_vs_failed_attempt"]


def test_identical_chosen_and_rejected_sql_is_never_a_pair():
    t = trajectory(turn(1, [cand(GOLD, True, reward=1.0), cand(GOLD + " ;", False, reward=0.2)]))
    assert mine_trajectory(t, MineConfig()) == []


def test_mock_rollout_to_pairs_end_to_end(demo_dataset: Path, tmp_path: Path):
    """The mock's broken first turn + gold repair gives exactly one self-repair pair per example."""
    run = tmp_path / "run"
    summary = run_rollout(RolloutConfig(dataset_path=str(demo_dataset), output_dir=str(run), generator="mock",
                                        max_turns=3, limit=60, progress=False))
    out = tmp_path / "pairs.jsonl"
    assert cli(["pairs", "mine", "--trajectories", str(run), "--out", str(out), "--min_cost_reward_gap", "0.25",
                "--stats", str(tmp_path / "stats.json")]) == 0
    pairs = read_pairs(out)
    assert len(pairs) == summary.examples - summary.bad_gold
    stats = json.loads((tmp_path / "stats.json").read_text())  # the counts and the configuration that ran
    assert stats["pairs"] == len(pairs) and stats["trajectories"] == summary.examples
    assert stats["config"] == {"trajectories": [str(run)], "use_gold_when_failed": False, "min_cost_reward_gap": 0.25,
                               "max_pairs_per_example": None, "pair_types": list(MineConfig().pair_types), "eval_dataset": None,
                               "eval_split": "dev", "eval_same_db_split": None}
    assert {p.meta["pair_type"] for p in pairs} == {"self_repair_success_vs_failed_attempt"}
    trajectories = {t.id: t for t in read_trajectories(run)}
    for pair in pairs:
        t = trajectories[pair.meta["example_id"]]
        assert pair.prompt == t.first.messages  # the chat exactly as the model saw it
        assert pair.meta["chosen_sql"] == t.turns[1].answer.sql
    assert mine(list(trajectories.values()), MineConfig()) == pairs


def test_seed_prompt_style_runs_through_rollout_pairs_and_sft_targets(demo_dataset: Path, tmp_path: Path):
    """--prompt_style seed: one message per generation, repairs included, and the pairs and SFT
    targets made from them answer in that style (plain SQL, no fence)."""
    from text2sql_mlops.data.load import load_examples
    from text2sql_mlops.pairs.synth import SynthConfig, synthesize
    from text2sql_mlops.schema.select import PromptConfig
    from text2sql_mlops.training.datasets import dataset_targets, sft_targets

    run = tmp_path / "run"
    run_rollout(RolloutConfig(dataset_path=str(demo_dataset), output_dir=str(run), generator="mock", max_turns=2, limit=4,
                              prompt_style="seed", schema_format="seed", progress=False))
    trajectories = read_trajectories(run)
    for t in trajectories:
        assert t.prompt_style == "seed"
        first, repair = t.turns
        assert [m["role"] for m in first.messages] == [m["role"] for m in repair.messages] == ["user"]
        assert first.messages[0]["content"].endswith(f"Question: {t.question}\nSQL:")
        rule_at, schema_at = repair.messages[0]["content"].find("Column-Minimal Repair"), repair.messages[0]["content"].find("Schema:\nTable ")
        assert 0 < rule_at < schema_at and f"Previous SQL:\n{first.answer.sql}\n" in repair.messages[0]["content"]
    pairs = mine(trajectories, MineConfig())
    assert pairs and all(p.chosen == p.meta["chosen_sql"] and p.rejected == p.meta["rejected_sql"] for p in pairs)
    assert all(len(p.prompt) == 1 and p.prompt[0]["content"].endswith("SQL:") for p in pairs)
    targets, counts = sft_targets(trajectories, [])
    assert counts["gold"] == len(trajectories) and all("```" not in answer for _, answer in targets)
    examples = load_examples(demo_dataset, None, "train")[:4]
    gold, _ = dataset_targets(examples, PromptConfig(schema_format="seed", prompt_style="seed"), None)
    assert [answer for _, answer in gold] == [e.query.strip().rstrip(";").strip() for e in examples]
    assert [messages for messages, _ in gold] == [t.first.messages for t in trajectories]  # one code path
    synthetic, _ = synthesize(examples, SynthConfig(prompt_style="seed", schema_format="seed"), progress=False)
    prompts = {e.id: messages for e, (messages, _) in zip(examples, gold, strict=True)}
    assert synthetic and all(p["prompt"] == prompts[p["meta"]["example_id"]] and p["chosen"] == p["meta"]["chosen_sql"]
                             for p in synthetic)


def test_guard_refuses_evaluation_trajectories_and_writes_nothing(demo_dataset: Path, tmp_path: Path, capsys):
    run = tmp_path / "run"
    run_rollout(RolloutConfig(dataset_path=str(demo_dataset), output_dir=str(run), generator="mock", max_turns=2, limit=5, progress=False))
    out = tmp_path / "pairs.jsonl"
    assert cli(["pairs", "mine", "--trajectories", str(run), "--out", str(out), "--eval_dataset", str(demo_dataset)]) == 0  # dev: clean
    out.unlink()
    capsys.readouterr()
    code = cli(["pairs", "mine", "--trajectories", str(run), "--out", str(out), "--eval_dataset", str(demo_dataset), "--eval_split", "train"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "evaluation set" in err[0] and not out.exists()


@pytest.mark.parametrize("content, message", [("{\"id\": 1}\n", "trajectories.jsonl:1: trajectory record lacks index"), ("not json\n", "invalid JSON")])
def test_bad_trajectory_files_give_one_line(tmp_path: Path, capsys, content: str, message: str):
    bad = tmp_path / "trajectories.jsonl"
    bad.write_text(content)
    assert cli(["pairs", "mine", "--trajectories", str(bad), "--out", str(tmp_path / "p.jsonl")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert cli(["pairs", "mine", "--trajectories", str(tmp_path / "nowhere"), "--out", str(tmp_path / "p.jsonl")]) == 2
    assert cli(["pairs", "mine", "--trajectories", str(bad), "--out", "x", "--pair_types", "bogus"]) == 2


def test_every_natural_type_has_a_miner():
    from text2sql_mlops.pairs.mine import MINERS

    assert tuple(MINERS) == NATURAL_PAIR_TYPES


def test_the_no_pairs_note_names_the_cause(demo_dataset: Path, tmp_path: Path, capsys):
    """An empty trajectories file was told "a pair needs a correct and a failed answer"; an
    empty synth (every example an evaluation example) blamed the mutations."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert cli(["pairs", "mine", "--trajectories", str(empty), "--out", str(tmp_path / "p.jsonl")]) == 0
    assert "hold no trajectories" in capsys.readouterr().err
    assert cli(["pairs", "synth", "--dataset_path", str(demo_dataset), "--split", "dev", "--eval_dataset", str(demo_dataset),
                "--out", str(tmp_path / "s.jsonl"), "--no_progress"]) == 0
    assert "--eval_dataset left out every example" in capsys.readouterr().err
