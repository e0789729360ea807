"""``pairs merge``: each filter, the exact fraction caps, determinism, the guard and the CLI."""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest

from text2sql_mlops.cli import main as cli_main
from text2sql_mlops.core.errors import UserError
from text2sql_mlops.core.records import Pair, read_pairs
from text2sql_mlops.pairs.build import build_pair
from text2sql_mlops.pairs.merge import MergeConfig, merge_pairs, parse_type_values
from text2sql_mlops.pairs.solver import solve_counts

REPAIR, GOLD, FIRST = "repair_correct_vs_repair_failed", "gold_vs_failed_attempt", "first_turn_correct_sample_vs_failed_sample"


def pair(tag: str, pair_type: str = REPAIR, chosen: str | None = None, rejected: str | None = None,
         chosen_reward: float = 1.0, rejected_reward: float = 0.0, db_id: str = "bike_1", turn: int = 1, question: str | None = None) -> Pair:
    question = question or f"Question {tag}?"
    return build_pair(
        [{"role": "user", "content": question}],
        chosen or f"SELECT name FROM t WHERE id = '{tag}'", rejected or f"SELECT nme FROM t WHERE id = '{tag}'",
        pair_type=pair_type, source="synthetic" if pair_type.startswith("synthetic_") else "natural",
        gold_fallback=pair_type == GOLD or pair_type.startswith("synthetic_"), example_id=f"ex-{tag}", db_id=db_id,
        question=question, gold_sql="SELECT 1", chosen_reward=chosen_reward, rejected_reward=rejected_reward, turn=turn,
        chosen_executable=True, rejected_executable=False, rejected_error_type="no_such_column",
    )


def many(n: int, pair_type: str, prefix: str) -> list[Pair]:
    return [pair(f"{prefix}{k}", pair_type) for k in range(n)]


def types(pairs: list[Pair]) -> Counter:
    return Counter(p.meta["pair_type"] for p in pairs)


def tags(pairs: list[Pair]) -> list[str]:
    return [p.meta["example_id"][3:] for p in pairs]


def write(path: Path, records: list[Pair | dict]) -> Path:
    """A pair file; a dict is written as it is (a broken record)."""
    path.write_text("".join(json.dumps(r.to_dict() if isinstance(r, Pair) else r) + "\n" for r in records))
    return path


# --------------------------------------------------------------------------- filters


def test_each_filter_removes_exactly_its_pairs():
    good = [pair(str(k)) for k in range(5)]
    same = pair("same", chosen="SELECT a FROM t", rejected="select   a from t;")  # same tokens: no preference
    weak = pair("weak", chosen_reward=1.0, rejected_reward=0.8)  # margin 0.2
    far = pair("far", chosen="SELECT count(*) FROM singer WHERE age > 20", rejected="SELECT name FROM concert")
    inputs = [[*good, same, weak, far, good[1]], [good[0], pair("other")]]
    out, stats = merge_pairs(inputs, MergeConfig(min_reward_margin=0.3, max_sql_edit_distance_ratio=0.5))
    assert tags(out) == ["0", "1", "2", "3", "4", "other"]
    assert stats["removed"] == {"input_limits": 0, "duplicates": 2, "same_sql": 1, "min_reward_margin": 1,
                                "max_sql_edit_distance_ratio": 1, "pair_type_limits": 0, "fraction_caps": 0, "max_pairs": 0}
    assert stats["pairs_in"] == 11 and stats["pairs_out"] == 6
    assert stats["inputs"] == [{"path": "input1", "in": 9, "out": 5}, {"path": "input2", "in": 2, "out": 1}]
    # Without the optional filters only duplicates and same-SQL pairs go; a ratio of 1 keeps everything.
    out, stats = merge_pairs(inputs, MergeConfig(max_sql_edit_distance_ratio=1.0))
    assert len(out) == 8 and stats["removed"]["duplicates"] == 2 and stats["removed"]["same_sql"] == 1


def test_adding_the_quotes_a_reserved_word_needs_is_a_real_repair():
    """sqlglot gives the quoted identifier "group" and a bare group (a syntax error in SQLite)
    the same text: merge removed such a self-repair pair as same SQL."""
    from text2sql_mlops.pairs.similarity import edit_distance_ratio, sql_tokens

    quoted = pair("quoted", chosen='SELECT "group" FROM "order"', rejected='SELECT group FROM "order"')
    out, stats = merge_pairs([[quoted, pair("same", chosen='SELECT "a" FROM t', rejected='select "a" from t;')]], MergeConfig())
    assert tags(out) == ["quoted"] and stats["removed"]["same_sql"] == 1
    assert sql_tokens('SELECT "group"') != sql_tokens("SELECT group") and edit_distance_ratio('SELECT "group"', "SELECT group") > 0


def test_edit_distance_is_levenshtein_on_short_and_long_token_sequences():
    """The dashboard and merge's ratio filter computed it in pure Python, quadratic in tokens: one
    pair of 100 KB model SQL took almost 8 minutes. Long inputs go row by row in numpy; every
    path must give the textbook distance."""
    import random
    import time

    from text2sql_mlops.pairs.similarity import edit_distance

    def textbook(a, b):
        previous = list(range(len(b) + 1))
        for i, x in enumerate(a, 1):
            current = [i]
            for j, y in enumerate(b, 1):
                current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
            previous = current
        return previous[-1]

    rng = random.Random(7)
    for _ in range(400):
        words = [str(k) for k in range(rng.randint(1, 5))]
        a, b = (tuple(rng.choice(words) for _ in range(rng.randint(0, 120))) for _ in range(2))
        assert edit_distance(a, b) == edit_distance(b, a) == textbook(a, b), (a, b)
    assert edit_distance(("SELECT", "x"), ("SELECT", "x")) == 0 and edit_distance((), ("a",)) == 1
    long_a = tuple(rng.choice("abcdef") for _ in range(12_000))
    long_b = long_a[:5000] + tuple(reversed(long_a[5000:7000])) + long_a[7000:]
    started = time.perf_counter()
    assert edit_distance(long_a, long_b) == textbook(long_a[5000:7000], long_b[5000:7000])
    assert time.perf_counter() - started < 60  # pure Python: several minutes on this machine


def test_margin_is_inclusive():
    out, _ = merge_pairs([[pair("a", chosen_reward=0.8, rejected_reward=0.5), pair("b", chosen_reward=0.79, rejected_reward=0.5)]],
                         MergeConfig(min_reward_margin=0.3))
    assert tags(out) == ["a"]


def test_duplicates_keep_the_first_in_input_order_even_when_shuffled():
    first, again = pair("x", turn=1), pair("x", turn=2)  # same prompt, chosen, rejected: same id
    assert first.id == again.id
    for config in (MergeConfig(), MergeConfig(shuffle=True, seed=3)):
        out, stats = merge_pairs([[pair("a"), first], [again, pair("b")]], config)
        assert [p.meta["turn"] for p in out if p.id == first.id] == [1] and stats["removed"]["duplicates"] == 1


def test_input_limits_take_the_first_or_a_seeded_sample():
    a, b = many(10, REPAIR, "a"), many(10, FIRST, "b")
    out, stats = merge_pairs([a, b], MergeConfig(input_limits=[3, None]))
    assert tags(out) == ["a0", "a1", "a2", *[f"b{k}" for k in range(10)]] and stats["removed"]["input_limits"] == 7
    sampled, _ = merge_pairs([a, b], MergeConfig(input_limits=[3, 0], shuffle=True, seed=1))
    assert len(sampled) == 3 and set(tags(sampled)) <= {f"a{k}" for k in range(10)}
    assert merge_pairs([a, b], MergeConfig(input_limits=[3, 0], shuffle=True, seed=1))[0] == sampled


def test_pair_type_limits_cap_counts_and_wildcards():
    inputs = [many(5, REPAIR, "r") + many(5, GOLD, "g"), many(4, "synthetic_a", "sa") + many(4, "synthetic_b", "sb")]
    out, stats = merge_pairs(inputs, MergeConfig(pair_type_limits={GOLD: 2, "synthetic_*": 3}))
    assert types(out) == {REPAIR: 5, GOLD: 2, "synthetic_a": 3}
    assert tags(out)[5:] == ["g0", "g1", "sa0", "sa1", "sa2"] and stats["removed"]["pair_type_limits"] == 8
    out, _ = merge_pairs(inputs, MergeConfig(pair_type_limits={"synthetic_*": 5, "synthetic_a": 1}))  # nested
    assert types(out) == {REPAIR: 5, GOLD: 5, "synthetic_a": 1, "synthetic_b": 4}


# --------------------------------------------------------------------------- fraction caps


def test_input_fraction_cap_holds_exactly_and_keeps_all_uncapped_pairs():
    natural, synthetic = many(100, REPAIR, "n"), many(30, "synthetic_a", "sa") + many(30, "synthetic_b", "sb")
    out, stats = merge_pairs([natural, synthetic], MergeConfig(input_fraction_limits=[1.0, 0.2]))
    assert len(out) == 125 and types(out) == {REPAIR: 100, "synthetic_a": 13, "synthetic_b": 12}  # 25 / 125 = 0.2
    assert stats["removed"]["fraction_caps"] == 35
    assert stats["fraction_caps"] == [{"cap": "input input2", "max_fraction": 0.2, "pairs": 25, "fraction": 0.2}]
    assert tags(out)[100:] == [f"sa{k}" for k in range(13)] + [f"sb{k}" for k in range(12)]  # the first of each group
    # the same cap written as a pair-type wildcard
    out, _ = merge_pairs([natural, synthetic], MergeConfig(pair_type_max_fractions={"synthetic_*": 0.2}))
    assert types(out) == {REPAIR: 100, "synthetic_a": 13, "synthetic_b": 12}


def test_combined_caps_drop_only_from_over_represented_groups():
    natural = many(70, REPAIR, "r") + many(30, GOLD, "g")
    synthetic = many(20, "synthetic_a", "sa") + many(40, "synthetic_b", "sb")
    config = MergeConfig(input_fraction_limits=[1, 0.2], pair_type_max_fractions={GOLD: 0.2},
                         min_reward_margin=0.3, max_sql_edit_distance_ratio=1.0)  # the Synth20 recipe
    out, stats = merge_pairs([natural, synthetic], config)
    # N <= 70 / 0.6: the largest N with floor(0.2 N) gold and synthetic pairs is 116 = 70 + 23 + 23
    assert len(out) == 116 and types(out) == {REPAIR: 70, GOLD: 23, "synthetic_a": 8, "synthetic_b": 15}
    assert [cap["pairs"] for cap in stats["fraction_caps"]] == [23, 23]
    # a cap that does not bind drops nothing from its groups
    out, _ = merge_pairs([many(95, REPAIR, "r") + many(5, GOLD, "g"), synthetic], config)
    assert types(out)[GOLD] == 5 and len(out) == 125


def test_nested_type_caps_and_the_proportional_share():
    natural = many(80, REPAIR, "r")
    synthetic = many(30, "synthetic_a", "sa") + many(10, "synthetic_b", "sb")
    out, _ = merge_pairs([natural, synthetic], MergeConfig(pair_type_max_fractions={"synthetic_*": 0.2, "synthetic_b": 0.01}))
    # synthetic_* <= floor(0.2 N) with N = 80 + 20 = 100; synthetic_b <= floor(0.01 * 100) = 1
    assert types(out) == {REPAIR: 80, "synthetic_a": 19, "synthetic_b": 1}
    out, _ = merge_pairs([natural, synthetic], MergeConfig(input_fraction_limits=[1, 0.2]))
    assert types(out) == {REPAIR: 80, "synthetic_a": 15, "synthetic_b": 5}  # each keeps half its pairs


def test_fraction_zero_drops_the_group():
    out, _ = merge_pairs([many(5, REPAIR, "r"), many(5, "synthetic_a", "s")], MergeConfig(input_fraction_limits=[1, 0]))
    assert types(out) == {REPAIR: 5}


def test_size_is_not_monotone_in_the_caps():
    half = [Fraction(1, 2)] * 2
    caps = {0: half[0], 1: half[1]}
    assert solve_counts([(0, REPAIR), (1, REPAIR)], [3, 3], [False, False], 6, caps, {}) == [3, 3]
    assert solve_counts([(0, REPAIR), (1, REPAIR)], [3, 2], [False, False], 5, caps, {}) == [2, 2]  # 5 is infeasible
    out, _ = merge_pairs([many(3, REPAIR, "a"), many(3, FIRST, "b")], MergeConfig(input_fraction_limits=[0.5, 0.5], max_pairs=5))
    assert types(out) == {REPAIR: 2, FIRST: 2}


def test_crossing_input_and_type_caps_still_reach_the_largest_output():
    # input 1 and type T both capped at 0.1; the pair in both caps is the one to give up
    keys = [(0, GOLD), (0, REPAIR), (1, GOLD), (2, FIRST)]
    counts = solve_counts(keys, [10, 10, 10, 100], [False, False, False, True], 130, {0: Fraction(1, 10)}, {GOLD: Fraction(1, 10)})
    assert counts == [2, 10, 10, 100]  # N = 122: floor(12.2) = 12 under each cap


def covered(pattern: str, pair_type: str) -> bool:
    return pair_type.startswith(pattern[:-1]) if pattern.endswith("*") else pair_type == pattern


def within_caps(keys, counts, input_caps, type_caps) -> bool:
    n = sum(counts)
    return (all(sum(c for (i, _), c in zip(keys, counts) if i == cap) <= f * n for cap, f in input_caps.items())
            and all(sum(c for (_, t), c in zip(keys, counts) if covered(p, t)) <= f * n for p, f in type_caps.items()))


def test_solver_finds_the_largest_output_on_random_instances():
    """Against brute force over every count vector: the size is the largest feasible one and the caps hold."""
    rng = random.Random(0)
    type_names = ["synthetic_a", "synthetic_b", GOLD]
    for _ in range(60):
        keys = [(i, t) for i in range(2) for t in type_names if rng.random() < 0.7] or [(0, GOLD)]
        sizes = [rng.randint(1, 3) for _ in keys]
        input_caps = {i: Fraction(rng.randint(0, 9), 10) for i in range(2) if rng.random() < 0.6}
        type_caps = {p: Fraction(rng.randint(0, 9), 10) for p in ("synthetic_*", "synthetic_a", GOLD) if rng.random() < 0.4}
        fixed = [i not in input_caps and not any(covered(p, t) for p in type_caps) for i, t in keys]
        upper = sum(sizes) if rng.random() < 0.7 else rng.randint(0, sum(sizes))
        if sum(s for s, whole in zip(sizes, fixed) if whole) > upper:
            fixed = [False] * len(keys)
        counts = solve_counts(keys, sizes, fixed, upper, input_caps, type_caps)
        best = max(sum(option) for option in itertools.product(*[[s] if whole else range(s + 1) for s, whole in zip(sizes, fixed)])
                   if sum(option) <= upper and within_caps(keys, option, input_caps, type_caps))
        assert sum(counts) == best, (keys, sizes, fixed, upper, input_caps, type_caps, counts)
        assert within_caps(keys, counts, input_caps, type_caps)
        assert all(0 <= c <= s for c, s in zip(counts, sizes)) and all(c == s for c, s, whole in zip(counts, sizes, fixed) if whole)


def test_max_pairs_keeps_the_caps_and_the_mix():
    natural = many(80, REPAIR, "r") + many(20, GOLD, "g")
    out, stats = merge_pairs([natural, many(60, "synthetic_a", "s")],
                             MergeConfig(input_fraction_limits=[1, 0.2], pair_type_max_fractions={GOLD: 0.2}, max_pairs=50))
    assert len(out) == 50 and types(out) == {REPAIR: 32, GOLD: 8, "synthetic_a": 10}
    assert stats["removed"]["fraction_caps"] == 35 and stats["removed"]["max_pairs"] == 75
    out, _ = merge_pairs([many(30, REPAIR, "r"), many(10, FIRST, "f")], MergeConfig(max_pairs=8))  # no caps: the same share of each
    assert tags(out) == ["r0", "r1", "r2", "r3", "r4", "r5", "f0", "f1"]


def test_order_is_input_order_or_seeded_shuffle():
    inputs = [many(20, REPAIR, "r"), many(20, "synthetic_a", "s")]
    plain, _ = merge_pairs(inputs, MergeConfig())
    assert tags(plain) == [f"r{k}" for k in range(20)] + [f"s{k}" for k in range(20)]
    config = MergeConfig(input_fraction_limits=[1, 0.2], shuffle=True, seed=0)
    first, second = merge_pairs(inputs, config)[0], merge_pairs(inputs, config)[0]
    other, _ = merge_pairs(inputs, MergeConfig(input_fraction_limits=[1, 0.2], shuffle=True, seed=1))
    assert first == second and tags(first) != tags(other)
    assert types(first) == types(other) == {REPAIR: 20, "synthetic_a": 5}
    assert tags(first) != sorted(tags(first), key=tags(plain).index)  # shuffled across inputs


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("config, message", [
    (MergeConfig(input_limits=[1]), "--input_limits has 1 values for 2 inputs"),
    (MergeConfig(input_fraction_limits=[1, 1, 1]), "--input_fraction_limits has 3 values for 2 inputs"),
    (MergeConfig(input_fraction_limits=[1, 1.5]), "must lie in [0, 1]"),
    (MergeConfig(pair_type_max_fractions={"synthetic_*": -0.1}), "must lie in [0, 1]"),
    (MergeConfig(pair_type_max_fractions={"gold_vs_failed": 0.2}), "unknown pair type 'gold_vs_failed'"),
    (MergeConfig(pair_type_limits={"synthetic_a": -1}), "must be an integer >= 0"),
    (MergeConfig(max_pairs=-1), "--max_pairs must be >= 0"),
])
def test_bad_settings_are_one_line_errors(config: MergeConfig, message: str):
    with pytest.raises(UserError, match=None) as error:
        merge_pairs([[pair("a")], [pair("b")]], config)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("item", ["synthetic_*", "=0.2", "synthetic_*=lots", "synthetic_*:0.2"])
def test_bad_type_values_syntax(item: str):
    with pytest.raises(UserError, match=r"expects TYPE=F \(e\.g\. synthetic_\*=0\.2\)"):
        parse_type_values([item], "pair_type_max_fractions", float)
    assert parse_type_values(["synthetic_*=0.2", f"{GOLD}=0.1"], "x", float) == {"synthetic_*": 0.2, GOLD: 0.1}


def test_bad_record_names_file_line_and_field(tmp_path: Path):
    broken = pair("b").to_dict()
    del broken["meta"]["reward_margin"]
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(pair("a").to_dict()) + "\n\n" + json.dumps(broken) + "\n")
    with pytest.raises(UserError, match=rf"{path}:3: pair record lacks meta.reward_margin"):
        read_pairs(str(path))
    path.write_text(json.dumps({"id": "x", "prompt": [], "chosen": "a", "meta": {}}) + "\n")
    with pytest.raises(UserError, match=rf"{path}:1: pair record lacks rejected, meta.pair_type"):
        read_pairs(str(path))


@pytest.mark.parametrize("spoil, message", [
    (lambda r: r.update(chosen=None), "chosen must be a non-empty string, got null"),
    (lambda r: r.update(rejected=""), 'rejected must be a non-empty string, got ""'),
    (lambda r: r["meta"].update(reward_margin=float("nan")), "meta.reward_margin must be a finite number, got NaN"),
    (lambda r: r["meta"].update(chosen_reward=float("inf")), "meta.chosen_reward must be a finite number, got Infinity"),
    (lambda r: r["meta"].update(rejected_reward="0"), 'meta.rejected_reward must be a finite number, got "0"'),
    (lambda r: r.update(prompt=[]), "prompt must be a non-empty list of chat messages"),
    (lambda r: r["prompt"].append({"role": "user"}), 'prompt[1] must be a message object with "role" and "content"'),
    (lambda r: r["prompt"][0].update(content=None), "prompt[0].content must be a string, got null"),
    (lambda r: r.update(meta=[]), "pair record lacks meta (an object)"),
    (lambda r: r["meta"].update(pair_type=""), 'meta.pair_type must be a non-empty string, got ""'),
])
def test_one_pair_validator_names_file_line_and_field(tmp_path: Path, capsys, spoil, message: str):
    broken = pair("b").to_dict()
    spoil(broken)
    with pytest.raises(UserError, match=None) as error:
        Pair.from_dict(broken, "x.jsonl:7")
    assert str(error.value).startswith(f"x.jsonl:7: {message}") and "\n" not in str(error.value)
    # merge, report and training read pair files through it
    path = write(tmp_path / "p.jsonl", [pair("a"), broken])
    out = tmp_path / "out.jsonl"
    assert cli_main(["pairs", "merge", "--inputs", str(path), "--output", str(out)]) == 2
    assert cli_main(["pairs", "report", "--datasets", f"Raw={path}", "--out", str(tmp_path / "report")]) == 2
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")  # pairs are read before any model file is
    assert cli_main(["train", "dpo", "--model", str(tmp_path / "model"), "--pairs", str(path), "--out", str(tmp_path / "dpo")]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 3 and all(line.startswith(f"error: {path}:2: {message}") for line in errors), errors
    assert not out.exists() and not (tmp_path / "report").exists()


def test_pair_from_dict_returns_the_pair():
    record = pair("a").to_dict()
    assert Pair.from_dict(record, "here").to_dict() == record


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_min_reward_margin_must_be_finite(tmp_path: Path, capsys, value: str):
    a = write(tmp_path / "a.jsonl", many(3, REPAIR, "a"))
    out = tmp_path / "out.jsonl"
    assert cli_main(["pairs", "merge", "--inputs", str(a), "--output", str(out), f"--min_reward_margin={value}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --min_reward_margin must be a finite number") and err.count("\n") == 1 and not out.exists()


def test_the_same_input_twice_is_refused(tmp_path: Path, capsys):
    # Before: pairs_in counted it twice, every pair of the copy went to "duplicates", and the
    # per-input summary (keyed by path) showed one input. Refused: a file merged with itself adds nothing.
    a = write(tmp_path / "a.jsonl", many(3, REPAIR, "a"))
    b = write(tmp_path / "b.jsonl", many(3, "synthetic_a", "b"))
    out = tmp_path / "out.jsonl"
    for inputs in ([str(a), str(b), str(a)], [str(a), str(tmp_path / "." / "a.jsonl")]):
        assert cli_main(["pairs", "merge", "--inputs", *inputs, "--output", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --inputs: ") and "give each pair file once" in err and err.count("\n") == 1
        assert not out.exists()


# --------------------------------------------------------------------------- the command line


def test_cli_writes_pairs_stats_and_a_summary_line(tmp_path: Path, capsys):
    natural = write(tmp_path / "natural.jsonl", many(100, REPAIR, "n"))
    synthetic = write(tmp_path / "synth.jsonl", many(60, "synthetic_a", "s"))
    out, stats = tmp_path / "out" / "pairs.jsonl", tmp_path / "stats.json"
    code = cli_main(["pairs", "merge", "--inputs", str(natural), str(synthetic), "--output", str(out),
                     "--input_fraction_limits", "1.0", "0.2", "--pair-type-max-fractions", f"{GOLD}=0.2",
                     "--min_reward_margin", "0.3", "--max_sql_edit_distance_ratio", "1.0", "--input_limits", "all", "50",
                     "--shuffle", "--seed", "7", "--stats", str(stats)])
    assert code == 0
    pairs = read_pairs(out)
    assert len(pairs) == 125 and types(pairs) == {REPAIR: 100, "synthetic_a": 25}
    summary = json.loads(capsys.readouterr().out.strip())
    assert summary["pairs_out"] == 125 and summary["inputs"] == {str(natural): 100, str(synthetic): 25}
    report = json.loads(stats.read_text())
    assert report["output"] == str(out) and report["removed"]["input_limits"] == 10 and report["removed"]["fraction_caps"] == 25
    assert report["pair_types"] == {REPAIR: {"in": 100, "out": 100}, "synthetic_a": {"in": 60, "out": 25}}
    assert report["config"]["pair_type_max_fractions"] == {GOLD: 0.2} and report["config"]["seed"] == 7


def test_cli_accepts_the_reference_projects_index_value_limits(tmp_path: Path, capsys):
    """The reference wrote per-input limits as INDEX=VALUE (--input_fraction_limits 1=0.20,
    --input_limits 0=308 1=150); they mean the same as the positional lists."""
    natural = write(tmp_path / "natural.jsonl", many(100, REPAIR, "n"))
    synthetic = write(tmp_path / "synth.jsonl", many(60, "synthetic_a", "s"))
    outputs = []
    for limits in (["--input_fraction_limits", "1=0.20", "--input_limits", "0=80", "1=50"],
                   ["--input_fraction_limits", "1.0", "0.2", "--input_limits", "80", "50"]):
        out = tmp_path / f"out{len(outputs)}.jsonl"
        assert cli_main(["pairs", "merge", "--inputs", str(natural), str(synthetic), "--output", str(out), *limits]) == 0
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1] and types(read_pairs(tmp_path / "out0.jsonl")) == {REPAIR: 80, "synthetic_a": 20}


@pytest.mark.parametrize("extra, message", [
    (["--input_fraction_limits", "2=0.2"], "names input '2'; inputs are numbered 0 to 1"),
    (["--input_limits", "0=5", "7"], "not both"),
    (["--input_limits", "5"], "--input_limits has 1 values for 2 inputs"),
    (["--input_fraction_limits", "1", "2"], "must lie in [0, 1]"),
    (["--pair_type_max_fractions", "synthetic_*"], "expects TYPE=F"),
    (["--pair_type_limits", "synthetic_*=0.5"], "expects TYPE=N"),
    (["--pair_type_max_fractions", "synthetic=0.5"], "unknown pair type 'synthetic'"),
    (["--input_limits", "x", "1"], "expected a count or 'all'"),
    (["--bogus"], "unrecognized arguments"),
])
def test_cli_errors_are_one_line_and_leave_no_output(tmp_path: Path, capsys, extra: list[str], message: str):
    a, b = write(tmp_path / "a.jsonl", many(3, REPAIR, "a")), write(tmp_path / "b.jsonl", many(3, "synthetic_a", "b"))
    out = tmp_path / "out.jsonl"
    assert cli_main(["pairs", "merge", "--inputs", str(a), str(b), "--output", str(out), "--stats", str(tmp_path / "s.json"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert not out.exists() and not (tmp_path / "s.json").exists()


def test_cli_bad_record_fails_whole(tmp_path: Path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(pair("a").to_dict()) + "\n" + json.dumps({"id": "x"}) + "\n")
    out = tmp_path / "out.jsonl"
    assert cli_main(["pairs", "merge", "--inputs", str(bad), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: pair record lacks prompt, chosen, rejected, meta" in err and err.count("\n") == 1 and not out.exists()


def test_guard_refuses_pairs_from_the_evaluation_set(spider_layout: Path, tmp_path: Path, capsys):
    from conftest import make_db

    for name in ("bike_1", "flight_2"):  # training databases beside the evaluation one: the guard compares schemas
        make_db(spider_layout / "database" / name / f"{name}.sqlite", f"CREATE TABLE {name} (id INTEGER);")
    clean = write(tmp_path / "clean.jsonl", [pair("a", db_id="bike_1"), pair("b", db_id="flight_2")])
    leaky = write(tmp_path / "leaky.jsonl", [pair("c"), pair("d", db_id="concert_singer"), pair("e", db_id="concert_singer")])
    out = tmp_path / "out.jsonl"
    guard = ["--eval_dataset", str(spider_layout), "--eval_split", "dev"]
    assert cli_main(["pairs", "merge", "--inputs", str(clean), str(leaky), "--output", str(out), *guard]) == 2
    err = capsys.readouterr().err
    assert f"error: {leaky}: 2 pairs belong to the evaluation set" in err and "first: #2" in err and err.count("\n") == 1
    assert not out.exists()
    assert cli_main(["pairs", "merge", "--inputs", str(clean), "--output", str(out), *guard]) == 0
    assert len(out.read_text().splitlines()) == 2


def test_an_empty_result_says_why(tmp_path, capsys):
    """Only capped groups (gold fallback + synthetic, 0.2 each): the only size where both caps hold is 0."""
    from text2sql_mlops.cli import main as cli
    from text2sql_mlops.pairs.build import build_pair

    def pair(i: int, pair_type: str, source: str) -> dict:
        return build_pair([{"role": "user", "content": f"q{i}"}], "SELECT 1", f"SELECT {i + 2}", pair_type=pair_type,
                           source=source, gold_fallback=True, example_id=f"e{i}", db_id="d", question=f"q{i}", gold_sql="SELECT 1",
                           chosen_reward=1.0, rejected_reward=-0.2, turn=1, chosen_executable=True, rejected_executable=True,
                           rejected_error_type="wrong_result").to_dict()

    natural, synth = tmp_path / "n.jsonl", tmp_path / "s.jsonl"
    natural.write_text("".join(json.dumps(pair(i, "gold_vs_failed_attempt", "natural")) + "\n" for i in range(5)))
    synth.write_text("".join(json.dumps(pair(i + 10, "synthetic_wrong_column", "synthetic")) + "\n" for i in range(5)))
    out = tmp_path / "out.jsonl"
    assert cli(["pairs", "merge", "--inputs", str(natural), str(synth), "--output", str(out), "--input_fraction_limits", "1.0", "0.2",
                "--pair_type_max_fractions", "gold_vs_failed_attempt=0.2"]) == 0
    assert out.read_text() == "" and "no pair survived (10 removed by fraction_caps)" in capsys.readouterr().err


def test_cli_reads_the_reference_projects_dpo_pairs_json(tmp_path: Path, capsys):
    """The reference's builder wrote dpo_pairs.json: one JSON list, plain-string prompts. merge
    converts each record, says which fields were missing and what they got, and merges it with ours."""
    reference = [
        {"prompt": "Schema: singer(name)\nQuestion: Names?\nSQL:", "chosen": "SELECT name FROM singer",
         "rejected": "SELECT nme FROM singer", "db_id": "concert_singer", "question": "Names?", "gold": "SELECT name FROM singer",
         "pair_type": "repair_correct_vs_repair_failed", "chosen_reward": 1.0, "rejected_reward": -0.5},
        {"prompt": "Question: Ages?\nSQL:", "chosen": "SELECT age FROM singer", "rejected": "SELECT agee FROM singer"},
    ]
    (tmp_path / "dpo_pairs.json").write_text(json.dumps(reference, indent=2))
    ours = write(tmp_path / "ours.jsonl", many(2, REPAIR, "n"))
    out = tmp_path / "train.jsonl"
    assert cli_main(["pairs", "merge", "--inputs", str(tmp_path / "dpo_pairs.json"), str(ours), "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert "2 reference pairs converted" in err
    assert "chosen_reward=1.0 (1)" in err and "pair_type='reference_pair' (1)" in err and "db_id='' (1)" in err
    merged = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(merged) == 4
    first = next(p for p in merged if p["meta"].get("converted_from"))
    assert first["prompt"] == [{"role": "user", "content": reference[0]["prompt"]}]
    assert first["chosen"] == "SELECT name FROM singer"  # the reference's training target, unchanged
    assert first["meta"]["reward_margin"] == 1.5 and first["meta"]["gold_sql"] == "SELECT name FROM singer"
    assert first["meta"]["chosen_sql"] == "SELECT name FROM singer" and "chosen_reward" not in first["meta"]["assumed"]
    for record in merged:
        Pair.from_dict(record, "merged")


def test_a_reference_pair_without_a_prompt_is_one_error_line(tmp_path: Path, capsys):
    (tmp_path / "dpo_pairs.json").write_text(json.dumps([{"chosen": "SELECT 1", "rejected": "SELECT 2"}]))
    out = tmp_path / "train.jsonl"
    assert cli_main(["pairs", "merge", "--inputs", str(tmp_path / "dpo_pairs.json"), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dpo_pairs.json[0]: a reference pair needs a non-empty string 'prompt'" in err
    assert not out.exists()
