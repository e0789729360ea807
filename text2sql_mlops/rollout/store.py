"""The output folder of a rollout: its identity, durable progress, the final files, merging shards.

Files in ``--output_dir``:

  run.json             the run's identity: every setting that changes results and a
                       hash of the selected example ids (``rollout.run_identity``)
  rollout.work.jsonl   one JSON line per finished chunk, appended, flushed and fsynced
                       as the chunk finishes; removed once the final files exist
  trajectories.jsonl   one line per example, in dataset order
  grpo_rollouts.jsonl  one line per (example, turn): prompt, completions, rewards
  summary.json         written last, so its presence means the run is complete
  examples.jsonl,      ``eval``'s reports, written after the run's files; ``--overwrite``
  analysis.json        removes them with those, so no report of the old run stays beside a new one

Resuming: a run started again with the same identity skips the chunks in the work
file and computes the rest; a line cut short by a kill is dropped (its chunk is
computed again). Chunks are fixed slices of the example list and each is
generated with its own seeds, so the final files do not depend on where a run was
interrupted. Any other identity in the folder is refused unless ``--overwrite``.

One run per folder: a run holds an exclusive lock (``LOCK_FILE``, holding its pid)
from its first check to its last write, so a second run into the same folder fails
at once instead of mixing files. ``run.json`` is written with the first finished
chunk, so a run that fails before finishing anything leaves nothing that blocks a
corrected rerun. Temporaries of a killed run are removed by the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..core.fileio import (
    MARKER,
    check_output_folder,
    make_folder,
    mark_folder,
    marked_command,
    output_folder_type,
    remove_stale_temps,
    write_json,
    write_jsonl,
)
from ..core.records import Summary, Trajectory, read_summary, read_trajectories
from ..data.guard import EVAL_COMMAND

LOCK_FILE = ".text2sql-mlops.lock"  # ignored by DVC (.dvcignore), like the marker's temporaries
RUN_FILE = "run.json"
WORK_FILE = "rollout.work.jsonl"
TRAJECTORIES = "trajectories.jsonl"
GRPO = "grpo_rollouts.jsonl"
SUMMARY = "summary.json"
FILES = (RUN_FILE, WORK_FILE, TRAJECTORIES, GRPO, SUMMARY)
EVAL_REPORTS = ("examples.jsonl", "analysis.json")  # mlops/evaluate.py writes them from the trajectories
# What a rollout (or eval) folder holds of its own; other files may sit beside them (the
# reference project mines <rollout>/dpo_pairs.jsonl), and --overwrite leaves those alone.
OWN_NAMES = (*FILES, *EVAL_REPORTS, LOCK_FILE, "result_status", "verifier")  # the last two: eval --reference_settings


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n), 1 <= i <= n."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise UserError(f"--shard must look like i/n (e.g. 1/4), got {text!r}") from None
    if not 1 <= index <= count:
        raise UserError(f"--shard {text}: i must be between 1 and n")
    return index, count


def grpo_records(trajectories: list[Trajectory]) -> Iterator[dict]:
    """One group per (example, turn): the prompt, its sampled completions and their total rewards.

    Gold fallback targets are not completions of the model and never appear here.
    """
    for trajectory in trajectories:
        for turn in trajectory.turns:
            yield {
                "id": trajectory.id,
                "turn": turn.turn,
                "prompt": turn.messages,
                "completions": [c.text for c in turn.candidates],
                "rewards": [c.total_reward for c in turn.candidates],
            }


def rollout_here(folder: Path) -> bool:
    """A folder a rollout (or eval) wrote, also one killed before its first result: the marker
    and a rollout's files, or (written before the marker existed) a rollout's run.json. A folder
    of the user's that merely holds a run.json is theirs: `--overwrite` replaced its files."""
    if (folder / MARKER).is_file():
        return any((folder / name).is_file() for name in (RUN_FILE, WORK_FILE, LOCK_FILE))
    try:
        stored = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(stored, dict) and "examples_sha256" in stored


# argparse type of --output_dir: a new or empty folder, or a rollout's
output_dir = output_folder_type(rollout_here)


class RunFolder:
    def __init__(self, path: str | os.PathLike, command: str = "rollout"):
        self.path = Path(path)
        self.command = command
        self.work = self.path / WORK_FILE
        self._lock_fd: int | None = None
        self._made: list[Path] = []  # the folders lock() made for it, nearest first

    def lock(self) -> None:
        """Take the folder for this process (until ``unlock`` or exit); refuses a folder in use.

        The folder must be new, empty or a rollout's; it is created and marked as this tool's.
        """
        check_output_folder(self.path, rollout_here)
        # a run that fails before its first result removes the folders made for it
        where = self.path.absolute()  # `a/x/../y`: the OS makes a/x too; `x/..` itself is no folder to remove
        self._made = [folder for folder in (where, *where.parents) if not folder.exists() and folder.name != ".."]
        make_folder(self.path)
        try:
            fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserError(f"cannot write in {self.path}: {exc.strerror}; choose a writable --output_dir") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise UserError(f"{self.path} is in use by another rollout or eval (pid {holder}); wait for it to finish "
                            "or give another --output_dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._lock_fd = fd
        # An eval's folder stays one, whatever runs in it later: the guard refuses to mine or train on it,
        # from its first chunk on (analysis.json, written last, was missing from a killed eval's folder).
        # (A rollout's marker names no command, as before.)
        evaluation = EVAL_COMMAND in (self.command, marked_command(self.path))
        mark_folder(self.path, owns=OWN_NAMES, command=EVAL_COMMAND if evaluation else None)
        remove_stale_temps(self.path)

    def unlock(self) -> None:
        if self._lock_fd is not None:
            if self._made and {entry.name for entry in self.path.iterdir()} <= {MARKER, LOCK_FILE}:
                # A run that failed before its first result (a model that does not load) leaves
                # no folder behind that it created: only its marker and lock were in it.
                for name in (LOCK_FILE, MARKER):
                    (self.path / name).unlink(missing_ok=True)
                with contextlib.suppress(OSError):  # stops at a folder something else wrote into meanwhile
                    for folder in self._made:
                        folder.rmdir()
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def __enter__(self) -> RunFolder:
        self.lock()
        return self

    def __exit__(self, *exc_info) -> None:
        self.unlock()

    def prepare(self, identity: dict[str, Any], overwrite: bool = False) -> list[dict] | None:
        """Check that the folder can hold the run ``identity``, writing nothing but the repair
        of a torn work file: the finished chunk records, or None when the run is complete."""
        present = [name for name in FILES if (self.path / name).exists()]
        if overwrite:
            return []
        if RUN_FILE in present:
            stored = self.identity()
            if _differing(stored, identity):
                raise UserError(f"{self.path} holds a rollout with other settings ({_differences(stored, identity)}); "
                                "use another --output_dir, the same settings to resume, or --overwrite")
            return None if SUMMARY in present else self._finished_chunks()
        if present:
            raise UserError(f"{self.path} holds rollout files ({', '.join(present)}) but no {RUN_FILE}; "
                            "use another --output_dir or --overwrite")
        return []

    def claim(self, identity: dict[str, Any], overwrite: bool = False) -> None:
        """Make the folder the run ``identity``'s (after ``prepare``, when the first result is
        ready to be written): with ``overwrite``, another run's files go first."""
        if overwrite:
            for name in (*FILES, *EVAL_REPORTS):
                (self.path / name).unlink(missing_ok=True)
        if not (self.path / RUN_FILE).exists():
            write_json(self.path / RUN_FILE, identity)

    def _finished_chunks(self) -> list[dict]:
        if not self.work.exists():
            return []
        data = self.work.read_bytes()
        complete = data.rfind(b"\n") + 1
        if complete < len(data):
            # Killed while appending: the partial line's chunk is simply computed again.
            with open(self.work, "r+b") as handle:
                handle.truncate(complete)
                os.fsync(handle.fileno())
        records = []
        for lineno, line in enumerate(data[:complete].splitlines(), start=1):
            try:
                record = json.loads(line)
                trajectories = list(record["trajectories"])
            except (json.JSONDecodeError, TypeError, KeyError):
                raise UserError(f"{self.work}:{lineno}: not a chunk record; delete the file to start the run over") from None
            records.append({**record, "trajectories": [Trajectory.from_dict(t, f"{self.work}:{lineno}") for t in trajectories]})
        return records

    def append_chunk(self, record: dict) -> None:
        """Append one finished chunk (its trajectories ``records.Trajectory``) durably: after this
        returns, a kill loses nothing of it."""
        new = not self.work.exists()
        line = {**record, "trajectories": [trajectory.to_dict() for trajectory in record["trajectories"]]}
        with open(self.work, "ab") as handle:
            handle.write(json.dumps(line, ensure_ascii=False).encode("utf-8") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        if new:  # make the file's directory entry durable too
            directory = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    def finish(self, trajectories: list[Trajectory], summary: Summary) -> None:
        """Write the final files (summary last), then drop the work file they were made from."""
        write_jsonl(self.path / TRAJECTORIES, (trajectory.to_dict() for trajectory in trajectories))
        write_jsonl(self.path / GRPO, grpo_records(trajectories))
        write_json(self.path / SUMMARY, summary.to_dict())
        if self.work.exists():
            self.work.unlink()

    def identity(self) -> dict[str, Any]:
        path = self.path / RUN_FILE
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: not a rollout's run record ({exc}); use another --output_dir") from None
        if not isinstance(stored, dict):
            raise UserError(f"{path}: not a rollout's run record (a JSON object); use another --output_dir")
        return stored

    def summary(self) -> Summary:
        return read_summary(self.path / SUMMARY)

    def trajectories(self) -> list[Trajectory]:
        return read_trajectories(self.path / TRAJECTORIES)

    def check_complete(self) -> None:
        missing = [name for name in (RUN_FILE, TRAJECTORIES, SUMMARY) if not (self.path / name).is_file()]
        if missing:
            raise UserError(f"{self.path} is not a finished rollout (missing {', '.join(missing)}); finish that shard first")


# Where a shard found its data and its server: machines of one sharded run name them their own
# way (/data/spider here, /mnt/spider there). The examples' hash still pins the examples.
PER_MACHINE = ("shard", "dataset_path", "db_root", "tables_json", "base_url")


def shards_of(folders: list[RunFolder]) -> dict[str, Any]:
    """The identity the shards were split from (the first shard's paths); refuses shards of
    different runs, gaps and repeats."""
    identities = [folder.identity() for folder in folders]
    base = {key: value for key, value in identities[0].items() if key not in PER_MACHINE}
    seen: dict[int, Path] = {}
    count = None
    for folder, identity in zip(folders, identities):
        if identity.get("shard") is None:
            raise UserError(f"{folder.path} is not a shard (run it with --shard i/n)")
        rest = {key: value for key, value in identity.items() if key not in PER_MACHINE}
        # A model or adapter at another path on another machine is the same one when its weights are.
        differing = [key for key in _differing(base, rest)
                     if not (key.endswith("_path") and base.get(key.replace("_path", "_sha256"))
                             and base.get(key.replace("_path", "_sha256")) == rest.get(key.replace("_path", "_sha256")))]
        if differing:
            raise UserError(f"{folder.path} is a shard of another rollout than {folders[0].path} ({_differences(base, rest)})")
        index, total = parse_shard(identity["shard"])
        if count not in (None, total):
            raise UserError(f"{folder.path} is shard {index}/{total}, the others are of {count}")
        if index in seen:
            raise UserError(f"shard {index}/{total} given twice: {seen[index]} and {folder.path}")
        count, seen[index] = total, folder.path
    missing = sorted(set(range(1, count + 1)) - set(seen))
    if missing:
        raise UserError(f"shards missing: {', '.join(f'{i}/{count}' for i in missing)}")
    return {key: None if key == "shard" else value for key, value in identities[0].items()}


_PATH_KEYS = ("dataset_path", "db_root", "tables_json", "model_path", "adapter_path", "repair_adapter_path")


def _differing(old: dict, new: dict) -> list[str]:
    """The settings that differ; a path given once relative and once absolute (`data/demo`,
    `/home/me/t2s/data/demo`) is the same path, not a reason to refuse a resume."""
    def same(key: str) -> bool:
        a, b = old.get(key), new.get(key)
        if key.endswith("_sha256") and key != "examples_sha256" and a is None:
            return True  # a run from before the weights digests resumes as it did (its paths still compare)
        return a == b or (key in _PATH_KEYS and isinstance(a, str) and isinstance(b, str)
                          and os.path.realpath(a) == os.path.realpath(b))
    return [key for key in sorted(set(old) | set(new)) if not same(key)]


def _differences(old: dict, new: dict) -> str:
    keys = _differing(old, new)
    shown = [f"{key}: {old.get(key)!r} -> {new.get(key)!r}" for key in keys[:4]]
    return "; ".join(shown) + (f"; and {len(keys) - 4} more" if len(keys) > 4 else "")
