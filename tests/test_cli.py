"""The CLI as users meet it: help, unknown commands, and model-free commands staying light."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

HEAVY = ("torch", "transformers", "peft", "trl", "mlflow", "pandas")


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "text2sql_mlops.cli", *args], capture_output=True, text=True, **kwargs)


def test_help_lists_every_command():
    from text2sql_mlops.cli import COMMANDS

    result = run("--help")
    assert result.returncode == 0
    for name in COMMANDS:
        assert f"  {name}" in result.stdout


def test_unknown_command_is_one_line_and_nonzero():
    result = run("frobnicate")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "unknown command 'frobnicate'" in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["exec", "--db", "{db}", "--sql", "SELECT name FROM singer"],
        ["data", "validate", "{root}"],
        ["score", "--gold", "{gold}", "--pred", "{gold_sql_only}", "--db", "{root}/database"],
        ["schema-recall", "--dataset", "{root}/train_spider.json", "--db-root", "{root}/database", "--mode", "bm25_fk", "--top-k", "2"],
    ],
    ids=["exec", "data", "score", "schema-recall"],
)
def test_model_free_commands_never_import_torch(spider_layout: Path, tmp_path: Path, argv: list[str]):
    examples = json.loads((spider_layout / "train_spider.json").read_text())
    gold = tmp_path / "gold.sql"
    gold.write_text("".join(f"{ex['query']}\t{ex['db_id']}\n" for ex in examples))
    preds = tmp_path / "pred.sql"
    preds.write_text("".join(f"{ex['query']}\n" for ex in examples))
    fill = {"db": str(spider_layout / "database/concert_singer/concert_singer.sqlite"), "root": str(spider_layout), "gold": str(gold), "gold_sql_only": str(preds)}
    args = [a.format(**fill) for a in argv]
    probe = (
        "import sys; from text2sql_mlops.cli import main; code = main(%r); "
        "heavy = [m for m in %r if m in sys.modules]; print('HEAVY', heavy, file=sys.stderr); sys.exit(code)" % (args, HEAVY)
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stderr


def test_exec_answers_in_under_a_second(spider_layout: Path):
    db = spider_layout / "database/concert_singer/concert_singer.sqlite"
    run("exec", "--db", str(db), "--sql", "SELECT 1")  # warm the OS file cache
    start = time.perf_counter()
    result = run("exec", "--db", str(db), "--sql", "SELECT name FROM singer ORDER BY name")
    elapsed = time.perf_counter() - start
    assert result.returncode == 0
    assert json.loads(result.stdout)["rows"] == [["Joe"], ["Justin"], ["Timbaland"]]
    assert elapsed < 1.0, f"exec took {elapsed:.2f}s"


def test_pair_commands_and_compare_never_import_torch(demo_dataset: Path, tmp_path: Path):
    """The preference engine and the reports need no model: they must not load torch and friends."""
    steps = [
        ["rollout", "--dataset_path", str(demo_dataset), "--output_dir", str(tmp_path / "run"), "--generator", "mock", "--limit", "6", "--no_progress"],
        ["pairs", "mine", "--trajectories", str(tmp_path / "run"), "--out", str(tmp_path / "natural.jsonl"), "--eval_dataset", str(demo_dataset)],
        ["pairs", "synth", "--dataset_path", str(demo_dataset), "--limit", "4", "--out", str(tmp_path / "synth.jsonl"), "--no_progress"],
        ["pairs", "merge", "--inputs", str(tmp_path / "natural.jsonl"), str(tmp_path / "synth.jsonl"), "--output", str(tmp_path / "m.jsonl"),
         "--input_fraction_limits", "1.0", "0.2"],
        ["pairs", "report", "--datasets", f"Merged={tmp_path / 'm.jsonl'}", "--out", str(tmp_path / "dash")],
        ["compare", "--runs", f"Mock={tmp_path / 'run'}", "--out", str(tmp_path / "cmp")],
        *(["report", name, "--runs", f"Mock={tmp_path / 'run'}", "--out", str(tmp_path / name)]
          for name in ("repair-breakdown", "routing", "online-repair", "column-errors")),
    ]
    probe = (
        "import sys; from text2sql_mlops.cli import main\n"
        f"for argv in {steps!r}:\n"
        "    assert main(argv) == 0, argv\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]; print('HEAVY', heavy, file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "HEAVY []" in result.stderr
    assert (tmp_path / "dash" / "pair_quality.html").is_file() and (tmp_path / "cmp" / "compare.md").is_file()


HELP_COMMANDS = [["model"], ["model", "prepare"], ["data", "validate"], ["exec"], ["score"], ["schema-recall"], ["rollout"],
                 ["rollout", "merge"], ["pairs", "mine"], ["pairs", "synth"], ["pairs", "merge"], ["pairs", "report"],
                 ["train", "sft"], ["train", "dpo"], ["eval"], ["compare"], ["report", "routing"], ["track"], ["register"]]


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=" ".join)
def test_every_command_prints_its_help(command, capsys):
    """argparse formats help text with %: an unescaped "10%" in one flag's help crashed `train sft --help`."""
    from text2sql_mlops import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


# Every command that writes a file or folder names it --out (the seed's spellings stay aliases).
OUTPUT_COMMANDS = [["model", "prepare"], ["data", "import-spider"], ["data", "validate"], ["data", "demo"], ["schema-recall"], ["rollout"],
                   ["rollout", "merge"], ["pairs", "mine"], ["pairs", "synth"], ["pairs", "merge"], ["pairs", "report"],
                   ["train", "sft"], ["train", "dpo"], ["eval"], ["compare"], ["report", "routing"], ["register"]]


@pytest.mark.parametrize("command", OUTPUT_COMMANDS, ids=" ".join)
def test_every_command_that_writes_takes_out(command, capsys):
    from text2sql_mlops import cli

    with pytest.raises(SystemExit):
        cli.main([*command, "--help"])
    assert re.search(r"(^|[ ,])--out\b(?!_)", capsys.readouterr().out, re.MULTILINE), f"{' '.join(command)} has no --out"


def test_settings_become_flags_and_read_back_typed():
    """One declaration per setting: default, help and argparse options on the dataclass field;
    lists, mappings (KEY=VALUE words), tuples and on/off switches read back as declared."""
    from dataclasses import dataclass

    from text2sql_mlops.core.cliutil import ArgParser, add_flags, from_args, setting
    from text2sql_mlops.core.errors import UserError

    @dataclass
    class Settings:
        steps: int = setting(3, "how many steps", type=int)
        names: list = setting(["a", "b"], "names", nargs="+")
        caps: dict = setting({"x": 1}, "TYPE=N caps", nargs="+", action="extend", metavar="TYPE=N")
        shape: tuple = setting((2, 4), "two numbers", nargs=2, type=int)
        packed: bool | None = setting(None, "pack rows", auto=True)

    parser = ArgParser(prog="t")
    add_flags(parser, Settings)
    text = parser.format_help()
    assert "how many steps (default: 3)" in text and "two numbers (default: 2 4)" in text and "--no_packed" in text

    defaults = from_args(Settings, parser.parse_args([]))
    assert (defaults.steps, defaults.names, defaults.caps, defaults.shape, defaults.packed) == (3, ["a", "b"], ["x=1"], (2, 4), None)
    assert Settings().caps == {"x": 1} and Settings().caps is not Settings().caps  # no shared mutable default

    given = from_args(Settings, parser.parse_args(["--steps", "5", "--names", "c", "--caps", "y=2", "--shape", "1", "3", "--no-packed"]))
    assert (given.steps, given.names, given.caps, given.shape, given.packed) == (5, ["c"], ["x=1", "y=2"], [1, 3], False)
    assert from_args(Settings, parser.parse_args([]), steps=9).steps == 9
    with pytest.raises(UserError, match="argument --steps"):
        parser.parse_args(["--steps", "many"])


def test_pairs_merge_flags_read_back_into_its_config(tmp_path):
    from text2sql_mlops.pairs.merge import MergeConfig, make_parser

    args = make_parser().parse_args(["--inputs", "a.jsonl", "b.jsonl", "--out", str(tmp_path / "o.jsonl"),
                                     "--input_fraction_limits", "1=0.2", "--pair_type_max_fractions", "synthetic_*=0.5",
                                     "--input_limits", "all", "7", "--shuffle", "--seed", "3"])
    config = MergeConfig.from_flags(args, 2)
    assert config.input_fraction_limits == [1.0, 0.2] and config.input_limits == [None, 7]
    assert config.pair_type_max_fractions == {"synthetic_*": 0.5} and config.pair_type_limits == {}
    assert (config.shuffle, config.seed, config.min_reward_margin) == (True, 3, None)


def test_sigterm_is_handled_as_ctrl_c_and_leaves_no_temporary(tmp_path: Path):
    """`kill` (or a scheduler stopping a job) ended Python at once: `data demo` left its
    .demo.<pid>.<random>.tmp folder and printed nothing. It now cleans up as Ctrl-C does."""
    probe = ("import os, signal, sys\n"
             "from text2sql_mlops.cli import main\n"
             "import text2sql_mlops.data.demo.build as build\n"
             "build._readme = lambda summary: os.kill(os.getpid(), signal.SIGTERM) or ''  # after every database\n"
             f"sys.exit(main(['data', 'demo', '--out', {str(tmp_path / 'demo')!r}]))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 143, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "error: terminated (SIGTERM)"
    assert list(tmp_path.iterdir()) == []  # no demo, no temporary
