"""A user's files are never destroyed: every output flag of every command, the atomic
writers underneath them, and the rollout folder lock."""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from text2sql_mlops.cli import COMMANDS
from text2sql_mlops.cli import main as cli
from text2sql_mlops.core.errors import UserError
from text2sql_mlops.core.fileio import MARKER, atomic_file, atomic_folder, mark_folder, remove_stale_temps, write_json

# --------------------------------------------------------------------------- every command's output flags


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """'command [action]' -> its parser, for every command of the CLI (actions included)."""
    found: dict[str, argparse.ArgumentParser] = {}
    for name, (module_name, _) in COMMANDS.items():
        module = importlib.import_module(module_name)
        if hasattr(module, "ACTIONS"):  # pairs, train: one module per action
            for action, (action_module, _) in module.ACTIONS.items():
                found[f"{name} {action}"] = importlib.import_module(action_module).make_parser()
            continue
        parser = module.make_parser()
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        for sub in subparsers:
            for action, subparser in sub.choices.items():
                found[f"{name} {action}"] = subparser
        if not subparsers:
            found[name] = parser
        if name == "rollout":
            found["rollout merge"] = module.make_merge_parser()
    return found


def _output_flags() -> dict[tuple[str, str], str]:
    """(command, --flag) -> 'file' or 'folder', for every flag declared as an output."""
    flags = {}
    for command, parser in _parsers().items():
        for action in parser._actions:
            kind = getattr(action.type, "output_kind", None)
            if kind:
                flags[(command, action.option_strings[0])] = kind
    return flags


OUTPUT_NAMES = {"out", "output", "output_dir", "stats", "record", "metrics_out", "plots_out", "per_example", "dest", "local_dir"}
# Outputs checked in the command rather than by the flag's type, and why.
CHECKED_IN_COMMAND = {("model prepare", "--out"): "with --source local it names the user's own model folder, only read"}

# A command line per output flag; {out} is replaced by the path under test. Other arguments
# only need to parse: the output is refused while parsing, before anything runs.
CASES = {
    ("data validate", "--out"): ["data", "validate", "x", "--out", "{out}"],
    ("data import-spider", "--dest"): ["data", "import-spider", "x", "--dest", "{out}", "--force"],
    ("data demo", "--out"): ["data", "demo", "--out", "{out}"],
    ("score", "--per_example"): ["score", "--gold", "g", "--pred", "p", "--db", "d", "--per-example", "{out}"],
    ("schema-recall", "--out"): ["schema-recall", "--dataset", "x", "--out", "{out}"],
    ("schema-recall", "--per_example"): ["schema-recall", "--dataset", "x", "--per_example", "{out}"],
    ("rollout", "--output_dir"): ["rollout", "--dataset_path", "x", "--output_dir", "{out}"],
    ("rollout merge", "--output_dir"): ["rollout", "merge", "--inputs", "a", "b", "--output_dir", "{out}"],
    ("pairs mine", "--out"): ["pairs", "mine", "--trajectories", "x", "--out", "{out}"],
    ("pairs mine", "--stats"): ["pairs", "mine", "--trajectories", "x", "--out", "m.jsonl", "--stats", "{out}"],
    ("pairs synth", "--out"): ["pairs", "synth", "--dataset_path", "x", "--out", "{out}"],
    ("pairs synth", "--stats"): ["pairs", "synth", "--dataset_path", "x", "--out", "s.jsonl", "--stats", "{out}"],
    ("pairs synth", "--output_dir"): ["pairs", "synth", "--dataset_path", "x", "--output_dir", "{out}"],
    ("pairs merge", "--output"): ["pairs", "merge", "--inputs", "x", "--output", "{out}"],
    ("pairs merge", "--stats"): ["pairs", "merge", "--inputs", "x", "--output", "m.jsonl", "--stats", "{out}"],
    ("pairs report", "--out"): ["pairs", "report", "--datasets", "A=x", "--out", "{out}"],
    ("train sft", "--out"): ["train", "sft", "--model", "m", "--trajectories", "x", "--out", "{out}"],
    ("train dpo", "--out"): ["train", "dpo", "--model", "m", "--pairs", "x", "--out", "{out}"],
    ("eval", "--output_dir"): ["eval", "--dataset_path", "x", "--generator", "mock", "--output_dir", "{out}"],
    ("compare", "--out"): ["compare", "--runs", "A=x", "--out", "{out}"],
    ("report", "--out"): ["report", "routing", "--runs", "A=x", "--out", "{out}"],
    ("track", "--record"): ["track", "--stage", "s", "--record", "{out}"],
    ("track", "--metrics_out"): ["track", "--stage", "s", "--metrics_out", "{out}"],
    ("track", "--plots_out"): ["track", "--stage", "s", "--plots_out", "{out}"],
    ("register", "--out"): ["register", "--run", "r", "--eval", "e", "--out", "{out}"],
    ("model prepare", "--out"): ["model", "prepare", "--out", "{out}"],
    ("model download", "--local_dir"): ["model", "download", "--repo_id", "org/m", "--local_dir", "{out}"],
}


def test_every_output_flag_is_declared_as_one_and_has_a_case():
    declared = _output_flags()
    undeclared = []
    for command, parser in _parsers().items():
        for action in parser._actions:
            if action.dest in OUTPUT_NAMES and (command, action.option_strings[0]) not in declared:
                undeclared.append((command, action.option_strings[0]))
    assert sorted(undeclared) == sorted(CHECKED_IN_COMMAND)
    assert set(CASES) == set(declared) | set(CHECKED_IN_COMMAND)


def _users_folder(root: Path) -> Path:
    folder = root / "mine"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "keep.txt").write_text("precious\n")
    (folder / "notes.md").write_text("mine\n")
    return folder


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", sorted(CASES), ids=lambda c: f"{c[0]} {c[1]}")
def test_no_output_flag_touches_a_users_folder(case, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = _users_folder(tmp_path)
    before = _snapshot(folder)
    code = cli([arg.replace("{out}", str(folder)) for arg in CASES[case]])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and str(folder) in err, err
    assert "nothing was" in err
    assert _snapshot(folder) == before


@pytest.mark.parametrize("case", sorted(set(CASES) - set(CHECKED_IN_COMMAND)), ids=lambda c: f"{c[0]} {c[1]}")
def test_no_output_goes_inside_a_dataset_the_tool_built(case, tmp_path: Path, capsys, monkeypatch):
    """A run written into data/demo made DVC see the dataset modified; `make repro`'s `dvc pull`
    then failed, and its --force would have deleted the run. Outputs stay outside datasets."""
    monkeypatch.chdir(tmp_path)
    dataset = tmp_path / "demo"
    dataset.mkdir()
    mark_folder(dataset)
    (dataset / "tables.json").write_text("[]")
    (dataset / "database").mkdir()
    inside = dataset / "runs" / "x"
    assert cli([arg.replace("{out}", str(inside)) for arg in CASES[case]]) == 2
    err = capsys.readouterr().err
    assert f"is inside the dataset {dataset}" in err and err.count("\n") == 1, err
    assert sorted(p.name for p in dataset.iterdir()) == [MARKER, "database", "tables.json"]


@pytest.mark.parametrize("case", sorted(c for c, kind in _output_flags().items() if kind == "folder"),
                         ids=lambda c: f"{c[0]} {c[1]}")
def test_folder_outputs_refuse_a_file(case, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "report.txt"
    target.write_text("mine\n")
    assert cli([arg.replace("{out}", str(target)) for arg in CASES[case]]) == 2
    assert "is a file" in capsys.readouterr().err
    assert target.read_text() == "mine\n"


def _bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _a_rollouts_folder(root: Path) -> Path:
    """A folder as `rollout` leaves it: the marker (naming the rollout's own files), run.json and trajectories."""
    from text2sql_mlops.rollout.store import OWN_NAMES

    folder = root / "rollout"
    folder.mkdir()
    mark_folder(folder, owns=OWN_NAMES)
    (folder / "run.json").write_text('{"split": "train"}\n')
    (folder / "trajectories.jsonl").write_text('{"index": 0}\n')
    return folder


def _a_trained_folder(root: Path) -> Path:
    """A folder written as a whole, as `train` leaves it: its files, and the marker listing them."""
    folder = root / "sft"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    (folder / "training_summary.json").write_text("{}")
    mark_folder(folder, list_files=True)
    return folder


@pytest.mark.parametrize("where", ["rollout's own file", "inside a training"])
@pytest.mark.parametrize("case", sorted(set(CASES) - set(CHECKED_IN_COMMAND)), ids=lambda c: f"{c[0]} {c[1]}")
def test_no_output_goes_inside_another_commands_output(case, where: str, tmp_path: Path, capsys, monkeypatch):
    """`pairs mine --out <a rollout>/trajectories.jsonl` replaced the rollout's trajectories, and
    anything written inside a folder written as a whole is deleted when its command reruns.
    Both are refused while parsing, naming the folder."""
    monkeypatch.chdir(tmp_path)
    owner = _a_rollouts_folder(tmp_path) if where == "rollout's own file" else _a_trained_folder(tmp_path)
    before = _bytes(owner)
    inside = owner / ("trajectories.jsonl" if where == "rollout's own file" else "new")
    if case == ("track", "--record") and where == "inside a training":
        return  # the one file allowed there (test_track_writes_its_record_beside_a_trained_adapter...)
    assert cli([arg.replace("{out}", str(inside)) for arg in CASES[case]]) == 2
    err = capsys.readouterr().err
    if inside.is_file() and _output_flags()[case] == "folder":
        expected = "is a file, and this output is a folder"
    elif where == "rollout's own file":
        expected = f"is {owner}'s own trajectories.jsonl, the output of a text2sql-mlops command"
    else:
        expected = f"is inside {owner}, the output of a text2sql-mlops command"
    assert expected in err and err.count("\n") == 1, err
    assert _bytes(owner) == before


def test_track_writes_its_record_beside_a_trained_adapter_and_nowhere_else_inside_an_output(tmp_path: Path):
    """`track --record outputs/train/sft/mlflow_run.json` is how the pipeline finds a trained
    adapter's run (`register --run`): the one file allowed inside another command's output."""
    from text2sql_mlops.mlops.tracking import make_parser

    trained = tmp_path / "sft"
    trained.mkdir()
    mark_folder(trained)
    (trained / "adapter_config.json").write_text("{}")
    record = str(trained / "mlflow_run.json")
    assert make_parser().parse_args(["--stage", "s", "--record", record]).record == record
    compared = tmp_path / "cmp"
    compared.mkdir()
    (compared / "compare.json").write_text("{}")
    mark_folder(compared, list_files=True)
    assert cli(["track", "--stage", "s", "--record", str(compared / "mlflow_run.json")]) == 2
    assert cli(["track", "--stage", "s", "--record", str(_a_rollouts_folder(tmp_path) / "summary.json")]) == 2


FOLDER_CASES = sorted(c for c, kind in _output_flags().items() if kind == "folder") + sorted(CHECKED_IN_COMMAND)
DATASET_KIND = {("data demo", "--out"), ("data import-spider", "--dest")}  # a dataset may replace a dataset


@pytest.mark.parametrize("case", FOLDER_CASES, ids=lambda c: f"{c[0]} {c[1]}")
def test_no_folder_output_replaces_another_commands_output(case, demo_dataset: Path, tmp_path: Path, capsys, monkeypatch):
    """The marker says "this tool wrote it", not which command: `compare --out data/demo` once
    replaced the dataset with a comparison. Each command replaces only its own kind of output."""
    monkeypatch.chdir(tmp_path)
    if case in DATASET_KIND:
        folder = _a_rollouts_folder(tmp_path)
    else:
        folder = tmp_path / "demo"
        cli(["data", "demo", "--out", str(folder)])  # a dataset this tool built: marked
        assert (folder / MARKER).is_file()
    before = _bytes(folder)
    code = cli([arg.replace("{out}", str(folder)) for arg in CASES[case]])
    err = capsys.readouterr().err.splitlines()[-1]
    assert code == 2
    assert "holds the output of another text2sql-mlops command" in err and "nothing was changed" in err, err
    assert _bytes(folder) == before


# --------------------------------------------------------------------------- the writers underneath


def test_atomic_file_refuses_a_folder_that_appears_while_writing(tmp_path: Path):
    target = tmp_path / "out.json"
    with pytest.raises(UserError, match="is a folder"):
        with atomic_file(target) as staged:
            staged.write_text("new")
            target.mkdir()
            (target / "keep").write_text("precious")
    assert (target / "keep").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no temporary left


def test_atomic_file_keeps_the_old_file_on_error_and_uses_normal_permissions(tmp_path: Path):
    target = tmp_path / "out.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_file(target) as staged:
            staged.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == '{\n  "v": 1\n}\n'
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_an_output_folder_stopped_or_raced_between_its_two_renames_is_never_lost(tmp_path: Path, monkeypatch):
    """Replacing a folder is two renames (old aside, new in). Stopped between them (SIGTERM), the
    cleanup deleted the old copy with the temporary: no output at all. Killed there, the next
    run's stale-temporary sweep deleted it. Two runs finishing at once: the second crashed
    with an OSError traceback (Directory not empty)."""
    from text2sql_mlops.core import fileio
    from text2sql_mlops.core.fileio import remove_stale_temps

    target = tmp_path / "report"
    with atomic_folder(target) as staged:
        staged.mkdir()
        (staged / "a.json").write_text("old")
    real = os.rename

    signals = [KeyboardInterrupt]

    def stopped(src, dst):
        if Path(dst) == target and signals:
            raise signals.pop()  # the signal lands after the old folder went aside (once)
        return real(src, dst)

    monkeypatch.setattr(fileio.os, "rename", stopped)
    with pytest.raises(KeyboardInterrupt):
        with atomic_folder(target) as staged:
            staged.mkdir()
            (staged / "a.json").write_text("new")
    monkeypatch.setattr(fileio.os, "rename", real)
    assert (target / "a.json").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["report"]

    # killed there: the temporary of a dead process holds the old folder, which goes back
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".report.{dead}.abc123.tmp"
    stale.mkdir()
    real(target, stale / "replaced")
    assert remove_stale_temps(tmp_path, "report") == 1
    assert (target / "a.json").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["report"]

    # another run puts its folder in place between our check and our rename: one error line
    shutil.rmtree(target)
    other = tmp_path / "other"
    with atomic_folder(other) as staged:
        staged.mkdir()
        (staged / "a.json").write_text("other")

    def raced(src, dst):
        if Path(dst) == target and not target.exists():
            real(other, target)  # the other run's rename lands first
        return real(src, dst)

    monkeypatch.setattr(fileio.os, "rename", raced)
    with pytest.raises(UserError, match="was written by another run at the same time"):
        with atomic_folder(target) as staged:
            staged.mkdir()
            (staged / "a.json").write_text("mine")
    monkeypatch.setattr(fileio.os, "rename", real)
    assert (target / "a.json").read_text() == "other" and sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_atomic_folder_replaces_only_its_own_folder(tmp_path: Path):
    target = tmp_path / "report"
    with atomic_folder(target) as staged:
        staged.mkdir()
        (staged / "a.json").write_text("1")
    assert (target / MARKER).is_file() and (target / "a.json").read_text() == "1"
    with atomic_folder(target) as staged:  # ours: replaced as a whole
        staged.mkdir()
        (staged / "b.json").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "b.json"]

    users = _users_folder(tmp_path)
    before = _snapshot(users)
    with pytest.raises(UserError, match="did not write"):
        with atomic_folder(users) as staged:
            staged.mkdir()
    assert _snapshot(users) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic_folder(empty) as staged:  # an empty folder holds nothing to lose
        staged.mkdir()
    assert (empty / MARKER).is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_temporaries_of_dead_processes_are_removed_live_ones_kept(tmp_path: Path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    (tmp_path / f".out.json.{dead_pid}.abc123.tmp").write_text("half")
    (tmp_path / f".adapter.{dead_pid}.x_y.tmp").mkdir()
    (tmp_path / f".out.json.{os.getpid()}.def456.tmp").write_text("in flight")
    (tmp_path / ".notes.tmp").write_text("not ours: no pid")
    write_json(tmp_path / "out.json", {})
    assert (tmp_path / f".adapter.{dead_pid}.x_y.tmp").exists()  # only the target's own temporaries
    assert remove_stale_temps(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".notes.tmp", f".out.json.{os.getpid()}.def456.tmp", "out.json"])


def test_dvc_ignores_temporaries_and_the_lock(tmp_path: Path):
    repo = Path(__file__).resolve().parents[1]
    dvc = Path(sys.executable).parent / "dvc"
    (tmp_path / ".dvcignore").write_text((repo / ".dvcignore").read_text())
    subprocess.run([str(dvc), "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    out = tmp_path / "outputs" / "rollout"
    out.mkdir(parents=True)
    paths = ["outputs/rollout/.summary.json.123.ab12.tmp", "outputs/rollout/.text2sql-mlops.lock",
             "outputs/.sft.text2sql-mlops.lock", "outputs/rollout/run.json"]
    for path in paths:
        (tmp_path / path).write_text("x")
    result = subprocess.run([str(dvc), "check-ignore", *paths], cwd=tmp_path, capture_output=True, text=True)
    assert result.stdout.split() == paths[:3]


def test_a_second_training_into_a_busy_output_fails_at_once(tiny_llama: Path, demo_dataset: Path, tmp_path: Path, capsys):
    """Two trainings into one --out would both succeed, the later replacing the earlier's
    result: the one that finds the output held refuses, naming the holder."""
    from text2sql_mlops.core.fileio import output_lock

    out = tmp_path / "sft"
    with output_lock(out, "training"):
        assert cli(["train", "sft", "--model", str(tiny_llama), "--dataset", str(demo_dataset), "--max_steps", "1",
                    "--per_device_train_batch_size", "1", "--max_length", "4096", "--out", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err == f"error: {out} is being written by another training (pid {os.getpid()}); wait for it to finish or give another output"
    assert not out.exists() and list(tmp_path.iterdir()) == []  # the holder removed its lock file too


def test_a_rerun_replaces_its_folder_only_while_it_holds_the_files_it_was_written_with(
        tiny_llama: Path, demo_dataset: Path, tmp_path: Path, capsys, monkeypatch):
    """A training's folder is replaced as a whole by the next training into it: notes a user
    put there were deleted with it. Its marker now lists the files it was written with (and
    `track --record` adds its record there), so a folder holding anything else is refused."""
    from text2sql_mlops.core.fileio import listed_files

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "sft"
    train = ["train", "sft", "--model", str(tiny_llama), "--dataset", str(demo_dataset), "--max_steps", "1",
             "--per_device_train_batch_size", "1", "--max_length", "4096", "--out", str(out)]
    assert cli(train) == 0
    assert sorted(listed_files(out)) == sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != MARKER)
    assert cli(["track", "--stage", "sft", "--no_parent", "--record", str(out / "mlflow_run.json")]) == 0
    assert "mlflow_run.json" in listed_files(out)
    assert cli(train) == 0  # its own files, the record included: replaced
    (out / "NOTES.md").write_text("lr 1e-4 diverged at step 300\n")
    capsys.readouterr()
    assert cli(train) == 2
    err = capsys.readouterr().err
    assert "or files added to one" in err and err.count("\n") == 1, err
    assert (out / "NOTES.md").read_text() == "lr 1e-4 diverged at step 300\n"


# --------------------------------------------------------------------------- one rollout per folder


def _rollout_args(demo: Path, out: Path, *extra: str) -> list[str]:
    return ["rollout", "--dataset_path", str(demo), "--split", "dev", "--limit", "4", "--output_dir", str(out),
            "--no_progress", *extra]


def test_a_second_rollout_into_a_busy_folder_fails_at_once(demo_dataset: Path, tmp_path: Path, capsys):
    from text2sql_mlops.rollout.store import RunFolder

    out = tmp_path / "run"
    with RunFolder(out):  # another run holds the folder
        assert cli(_rollout_args(demo_dataset, out)) == 2
        assert f"in use by another rollout or eval (pid {os.getpid()})" in capsys.readouterr().err
        assert cli(_rollout_args(demo_dataset, out, "--overwrite")) == 2
    assert not (out / "run.json").exists()
    assert cli(_rollout_args(demo_dataset, out)) == 0  # free again


def test_two_rollout_processes_one_folder(demo_dataset: Path, tmp_path: Path):
    out = tmp_path / "run"
    procs = [subprocess.Popen([sys.executable, "-m", "text2sql_mlops.cli", *_rollout_args(demo_dataset, out, "--max_turns", str(turns), "--limit", "all")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for turns in (1, 3)]
    results = [(p.wait(), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    # Either one refused while the other ran, or they ran one after the other and the second
    # found other settings there: never two exit-0 runs writing one folder.
    assert codes == [0, 2], results
    from text2sql_mlops.rollout.store import RunFolder

    folder = RunFolder(out)
    assert folder.identity() == folder.summary().config


def test_a_failed_start_leaves_nothing_that_blocks_the_rerun(demo_dataset: Path, tmp_path: Path):
    from dataclasses import replace

    from text2sql_mlops.generation import create_generator
    from text2sql_mlops.rollout.command import config_from_args, make_parser, run_rollout

    out = tmp_path / "run"
    config = config_from_args(make_parser().parse_args(_rollout_args(demo_dataset, out)[1:]))

    class Broken:
        def __getattr__(self, name):
            raise RuntimeError("database exploded")

    with pytest.raises(RuntimeError):
        run_rollout(config, generator=Broken())
    assert not out.exists()  # the folder it created held only its marker and lock: gone with the run
    out.mkdir()  # a folder that was there before the run stays
    with pytest.raises(RuntimeError):
        run_rollout(config, generator=Broken())
    assert out.is_dir() and not (out / "run.json").exists()
    # A corrected rerun with other settings is not refused as "a rollout with other settings".
    summary = run_rollout(replace(config, max_turns=1), generator=create_generator("mock"))
    assert summary.examples == 4


def test_a_killed_runs_temporaries_are_removed_by_the_next_run(demo_dataset: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert cli(_rollout_args(demo_dataset, out, "--max_turns", "1")) == 0
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = out / f".trajectories.jsonl.{int(dead.stdout)}.ab12cd.tmp"
    leftover.write_text("half")
    assert cli(_rollout_args(demo_dataset, out, "--max_turns", "1")) == 0
    assert not leftover.exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="uses /proc, where no file can be created, as the unwritable place")
def test_an_unwritable_output_location_is_one_error_line(demo_dataset: Path, tmp_path: Path, capsys):
    run = tmp_path / "run"
    assert cli(_rollout_args(demo_dataset, run, "--max_turns", "1")) == 0
    capsys.readouterr()
    for argv in (["pairs", "mine", "--trajectories", str(run), "--out", "/proc/t2s-pairs.jsonl"],  # a file
                 ["data", "demo", "--out", "/proc/t2s-demo"],  # a folder swapped in whole
                 _rollout_args(demo_dataset, Path("/proc/t2s-rollout"))):  # a run folder written in place
        assert cli(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: cannot write") and err.count("\n") == 1 and "/proc/t2s-" in err, err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="uses /proc, where no file can be created, as the unwritable place")
def test_an_unwritable_output_is_refused_before_any_work(tmp_path: Path, capsys, monkeypatch):
    """track and register write their --record / --out after logging to the MLflow store, and
    training writes its folder after training: the place is checked first, so "nothing was
    written" is true (no run logged, no version registered, no minutes of training)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    write_json(tmp_path / "m.json", {"ex": 0.5})
    write_json(tmp_path / "run.json", {"run_id": "0" * 32})
    for argv in (["track", "--stage", "x", "--no_parent", "--metrics", "m.json", "--record", "/proc/t2s-record.json"],
                 ["track", "--stage", "x", "--no_parent", "--metrics", "m.json", "--metrics_out", "/proc/t2s/metrics.json"],
                 ["register", "--run", "run.json", "--eval", "m.json", "--promote", "--out", "/proc/t2s-decision.json"],
                 ["train", "sft", "--model", "no-model-here", "--dataset", "data", "--out", "/proc/t2s-sft"]):
        assert cli(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: cannot write /proc/t2s") and err.count("\n") == 1, err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m.json", "run.json"]  # no mlruns/ store, no temporaries


def test_an_output_that_is_one_of_the_inputs_is_refused(demo_dataset: Path, tmp_path: Path, capsys):
    run = tmp_path / "run"
    assert cli(_rollout_args(demo_dataset, run, "--max_turns", "1")) == 0
    gold, pred = tmp_path / "gold.sql", tmp_path / "pred.sql"
    gold.write_text("SELECT 1\tdemo_db\n")
    pred.write_text("SELECT 1\n")
    kept = {path: path.read_bytes() for path in (run / "trajectories.jsonl", pred)}
    capsys.readouterr()
    for argv in (["pairs", "mine", "--trajectories", str(run), "--out", str(run / "trajectories.jsonl")],
                 ["pairs", "mine", "--trajectories", str(run / "trajectories.jsonl"), "--out", str(run / "trajectories.jsonl")],
                 ["score", "--gold", str(gold), "--pred", str(pred), "--db", str(demo_dataset / "database"),
                  "--per_example", str(pred)]):
        assert cli(argv) == 2, argv
        err = capsys.readouterr().err
        assert ("would overwrite the input" in err or f"is {run}'s own" in err) and err.count("\n") == 1, err
    assert all(path.read_bytes() == data for path, data in kept.items())
    # a new file beside the rollout's own is fine (the reference project mines <rollout>/dpo_pairs.jsonl)
    assert cli(["pairs", "mine", "--trajectories", str(run), "--out", str(run / "dpo_pairs.jsonl")]) == 0
    assert cli(["pairs", "mine", "--trajectories", str(run), "--out", str(run / "dpo_pairs.jsonl")]) == 0  # and again
    assert cli([*_rollout_args(demo_dataset, run, "--max_turns", "2"), "--overwrite"]) == 0
    assert (run / "dpo_pairs.jsonl").is_file()  # --overwrite discards the rollout's own files only


def test_pairs_schema_recall_validate_and_merge_refuse_to_write_over_their_inputs_or_each_other(
        demo_dataset: Path, tmp_path: Path, capsys):
    """A careless-use probe found these replacing what they read, with exit 0: `pairs merge`
    in place (40 pairs cut to 5), `pairs synth --out` the training set or `--stats` tables.json,
    `schema-recall --per_example` an eval's trajectories, `data validate --out` dev.json, two
    outputs on one path (the stats written over the pairs), and `rollout merge --overwrite`
    over one of its shards. Each is now one line, and every byte stays."""
    data = tmp_path / "demo"
    data.mkdir()
    for entry in demo_dataset.iterdir():  # a user's copy (no marker) whose files the test may watch
        if entry.name != MARKER:
            (data / entry.name).symlink_to(entry) if entry.is_dir() else (data / entry.name).write_bytes(entry.read_bytes())
    run = tmp_path / "run"
    assert cli(_rollout_args(data, run, "--max_turns", "1")) == 0
    pairs = tmp_path / "pairs.jsonl"
    assert cli(["pairs", "mine", "--trajectories", str(run), "--out", str(pairs), "--use_gold_when_failed"]) == 0
    shards = [tmp_path / f"shard{i}" for i in (1, 2)]
    for i, shard in enumerate(shards, 1):
        assert cli(_rollout_args(data, shard, "--max_turns", "1", "--shard", f"{i}/2")) == 0
    watched = [data / "dev.json", data / "train_spider.json", data / "tables.json", run / "trajectories.jsonl", pairs]
    kept = {path: path.read_bytes() for path in watched} | {f"{shard}/{k}": v for shard in shards for k, v in _bytes(shard).items()}
    capsys.readouterr()
    synth = ["pairs", "synth", "--dataset_path", str(data), "--limit", "2", "--no_progress"]
    for argv in ([*synth, "--out", str(data / "train_spider.json")],
                 [*synth, "--out", str(tmp_path / "s.jsonl"), "--stats", str(data / "tables.json")],
                 [*synth, "--out", str(tmp_path / "s.jsonl"), "--stats", str(tmp_path / "s.jsonl")],
                 ["pairs", "merge", "--inputs", str(pairs), "--out", str(pairs), "--max_pairs", "1"],
                 ["pairs", "merge", "--inputs", str(pairs), "--out", str(tmp_path / "m.jsonl"), "--stats", str(pairs)],
                 ["pairs", "mine", "--trajectories", str(run), "--out", str(tmp_path / "p.jsonl"), "--stats", str(tmp_path / "p.jsonl")],
                 ["schema-recall", "--trajectories", str(run), "--per_example", str(run / "trajectories.jsonl")],
                 ["schema-recall", "--dataset", str(data), "--split", "dev", "--out", str(data / "dev.json")],
                 ["schema-recall", "--dataset", str(data), "--out", str(tmp_path / "r.json"), "--per_example", str(tmp_path / "r.json")],
                 ["data", "validate", str(data), "--split", "dev", "--out", str(data / "dev.json")],
                 ["rollout", "merge", "--inputs", *map(str, shards), "--output_dir", str(shards[0]), "--overwrite"]):
        assert cli(argv) == 2, argv
        err = capsys.readouterr().err
        assert ("would overwrite" in err or f"is {run}'s own" in err) and err.count("\n") == 1, (argv, err)
    assert {path: path.read_bytes() for path in watched} | {f"{shard}/{k}": v for shard in shards for k, v in _bytes(shard).items()} == kept
    assert not any((tmp_path / name).exists() for name in ("s.jsonl", "m.jsonl", "p.jsonl", "r.json"))
    # beside their inputs, the same commands write
    assert cli([*synth, "--out", str(tmp_path / "s.jsonl"), "--stats", str(tmp_path / "s_stats.json")]) == 0
    assert cli(["pairs", "merge", "--inputs", str(pairs), "--out", str(tmp_path / "m.jsonl"), "--max_pairs", "1"]) == 0
    assert cli(["rollout", "merge", "--inputs", *map(str, shards), "--output_dir", str(tmp_path / "merged")]) == 0


def test_train_register_and_track_refuse_an_output_that_is_an_input(tiny_llama: Path, tmp_path: Path, capsys, monkeypatch):
    """Continuing a training into its own folder would replace the weights it starts from;
    register's decision or track's files written over the record or metrics they read, or over
    each other, lose them. Each is refused with one line before anything runs."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    earlier = tmp_path / "sft"  # an earlier training output, which --out may replace in general
    earlier.mkdir()
    mark_folder(earlier)
    write_json(earlier / "training_summary.json", {"method": "sft"})
    (earlier / "pairs.jsonl").write_text("{}\n")
    write_json(tmp_path / "m.json", {"ex": 0.5})
    write_json(tmp_path / "run.json", {"run_id": "0" * 32})
    (tmp_path / "steps.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    kept = _bytes(tmp_path)
    for argv in (["train", "sft", "--model", str(tiny_llama), "--init_adapter", str(earlier), "--out", str(earlier)],
                 ["train", "dpo", "--model", str(tiny_llama), "--pairs", str(earlier / "pairs.jsonl"), "--out", str(earlier)],
                 ["register", "--run", "run.json", "--eval", "m.json", "--out", "m.json"],
                 ["track", "--stage", "x", "--no_parent", "--metrics", "m.json", "--metrics_out", "m.json"],
                 ["track", "--stage", "x", "--no_parent", "--steps", "steps.jsonl", "--plots_out", "steps.jsonl"],
                 ["track", "--stage", "x", "--no_parent", "--config", "c=m.json", "--record", "m.json"],
                 ["track", "--stage", "x", "--no_parent", "--metrics", "m.json", "--record", "r.json", "--metrics_out", "r.json"]):
        assert cli(argv) == 2, argv
        err = capsys.readouterr().err
        assert "would overwrite" in err and err.count("\n") == 1, (argv, err)
    assert _bytes(tmp_path) == kept and not (tmp_path / "mlruns").exists()


def test_a_file_output_writes_into_a_device_or_pipe_and_through_a_link_without_replacing_them(demo_dataset: Path, tmp_path: Path):
    """`--out /dev/null` renamed a plain file over the device: as root that broke /dev/null for
    the whole machine. A device or pipe is written in place; a link to a file keeps the link and
    replaces the file it points to; a block device or socket is refused."""
    import socket
    import stat
    import threading

    validate = ["data", "validate", str(demo_dataset), "--split", "dev", "--out"]
    if os.geteuid() == 0:  # a private copy of /dev/null: the test must not risk the real one
        null = tmp_path / "null"
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        assert cli([*validate, str(null)]) == 0
        assert stat.S_ISCHR(os.stat(null).st_mode) and null.read_bytes() == b""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert cli([*validate, str(fifo)]) == 0
    reader.join(timeout=30)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and b'"examples"' in received[0]
    real = tmp_path / "kept" / "summary.json"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert cli([*validate, str(link)]) == 0
    assert link.is_symlink() and b'"examples"' in real.read_bytes()
    assert sorted(p.name for p in real.parent.iterdir()) == ["summary.json"]  # no temporary left beside it
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "sock"))
        assert cli([*validate, str(tmp_path / "sock")]) == 2


@pytest.mark.parametrize("case", sorted(c for c, kind in _output_flags().items() if kind == "folder"), ids=lambda c: f"{c[0]} {c[1]}")
@pytest.mark.parametrize("given", [".", "..", "new/.."])
def test_a_folder_output_is_never_the_current_folder_or_one_above_it(case, given: str, tmp_path: Path, capsys, monkeypatch):
    """`compare --out .` (or `..`) in an empty folder ended in a FileExistsError traceback: the
    swap cannot place a folder named "." or "..". Refused with one line while parsing."""
    here = tmp_path / "a" / "b"
    here.mkdir(parents=True)
    monkeypatch.chdir(here)
    assert cli([arg.replace("{out}", given) for arg in CASES[case]]) == 2
    err = capsys.readouterr().err
    assert "is the current folder or holds it" in err and err.count("\n") == 1, err
    assert not any(here.iterdir()) and sorted(p.name for p in tmp_path.iterdir()) == ["a"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="/dev/full is Linux's always-full device")
def test_a_full_disk_is_one_error_line(demo_dataset: Path, capsys):
    """A full disk (ENOSPC from a write) ended in an OSError traceback; /dev/full fails every
    write with it, as a full disk does."""
    assert cli(["data", "validate", str(demo_dataset), "--split", "dev", "--out", "/dev/full"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: No space left on device") and "free some space" in err and err.count("\n") == 1, err


def test_a_long_output_name_is_written(demo_dataset: Path, tmp_path: Path):
    """A valid 240-character --out failed with "File name too long": the temporary's name adds
    about 30 characters to the output's. The name inside a temporary is cut short."""
    from text2sql_mlops.core.fileio import output_lock

    long = "r" * 235
    assert cli(["data", "validate", str(demo_dataset), "--split", "dev", "--out", str(tmp_path / f"{long}.json")]) == 0
    assert cli(["compare", "--runs", "A=nowhere", "--out", str(tmp_path / long)]) == 2  # parsed: the run is missing
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{long}.json"]
    with output_lock(tmp_path / long, "training"), pytest.raises(UserError, match="being written by another"):
        with output_lock(tmp_path / long, "training"):
            pass


def test_score_names_a_gold_file_that_is_not_the_official_format(demo_dataset: Path, tmp_path: Path, capsys):
    """`score --gold dev.json` said the line counts differ; it is the wrong file."""
    pred = tmp_path / "pred.sql"
    pred.write_text("SELECT 1\n")
    assert cli(["score", "--gold", str(demo_dataset / "dev.json"), "--pred", str(pred), "--db", str(demo_dataset / "database")]) == 2
    err = capsys.readouterr().err
    assert "dev.json:1: expected 'SQL<TAB>db_id' (the official gold file" in err and err.count("\n") == 1, err


def test_out_dev_stdout_writes_through_the_shells_redirect(demo_dataset: Path, tmp_path: Path):
    """`--out /dev/stdout > log.txt`: /dev/stdout leads to the shell's regular file, which the
    rename replaced, so everything else the command printed went to a deleted file."""
    log = tmp_path / "log.txt"
    with open(log, "w") as handle:
        inode = os.fstat(handle.fileno()).st_ino
        result = subprocess.run([sys.executable, "-m", "text2sql_mlops.cli", "data", "validate", str(demo_dataset), "--split", "dev",
                                 "--out", "/dev/stdout"], stdout=handle, stderr=subprocess.PIPE, text=True)
    assert result.returncode == 0, result.stderr
    assert os.stat(log).st_ino == inode
    text = log.read_text()
    assert '"questions_per_db"' in text and text.count('"examples"') == 2  # the --out JSON and the printed summary
