"""Small I/O helpers shared by every stage: safe outputs, atomic writes and JSONL.

The one rule every command follows: a user's files are never deleted or overwritten
by something they did not ask for.

- A FILE output (``--out x.json``) is written to a temporary sibling and renamed
  into place; an existing folder at that path is refused (``check_output_file``),
  never replaced.
- A FOLDER output (``--out adapters/sft``) is built in a temporary sibling and
  swapped in as a whole. It may replace only a folder the same command wrote: one
  holding the ``MARKER`` file and, for a command with a ``Signature``, that command's
  kind of output (so ``compare --out data/demo`` cannot replace a dataset the tool
  built); a folder written before the marker existed is recognised by the signature
  alone. A user's non-empty folder is refused (``check_output_folder``).
- Temporaries are named ``.<target>.<pid>.<random>.tmp``; one left behind by a
  killed process (its pid is gone) is removed by the next write to the same target.
  ``.dvcignore`` keeps them out of DVC-tracked outputs in the meantime.

Commands check their output flags while parsing (``output_file`` / ``output_folder``
as the argparse ``type``), so a bad path is refused before any work starts; the
atomic writers check again just before renaming, since the path may change meanwhile.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import UserError

MARKER = ".text2sql-mlops"  # in every folder this tool writes; one written as a whole lists its files in it
LOCK_SUFFIX = ".text2sql-mlops.lock"  # output_lock's file beside an output while it is written (.dvcignore)
_MARKER_TEXT = '{"written_by": "text2sql-mlops"}\n'

# True when a folder holds one command's kind of output (a training output, a rollout, a
# dataset, ...): the marker says "this tool", the signature says "this command".
Signature = Callable[[Path], bool]


# --------------------------------------------------------------------------- checks on output paths


def check_output_file(path: str | os.PathLike) -> Path:
    """``path`` as a place to write a file: refuses an existing folder (or a file where a folder
    must be). A symbolic link to a file is followed (the file is replaced, the link kept); a
    character device or a pipe (``/dev/null``, ``/dev/stdout``) is written in place, never
    replaced: renaming over ``/dev/null`` as root made it a plain file for the whole machine."""
    target = Path(path)
    if target.is_dir():
        raise UserError(f"{target} is a folder, and this output is a file; give a file path "
                        f"(e.g. {target / 'out.json'}); nothing was written")
    special = _special_file(target)
    if special is not None and special not in _WRITTEN_IN_PLACE:
        raise UserError(f"{target} is a {special}, not a place for a file; give a file path; nothing was written")
    if _written_in_place(target):
        return target
    if target.is_symlink():
        target = Path(os.path.realpath(target))
    _check_parents(target)
    return target


_WRITTEN_IN_PLACE = ("character device", "pipe")


def _written_in_place(target: Path) -> bool:
    """A device, a pipe, or anything reached through /dev or /proc (`--out /dev/stdout > log.txt`
    is the shell's file behind a descriptor: renamed over, the command's other output went to
    a deleted file): written through, never replaced."""
    if _special_file(target) in _WRITTEN_IN_PLACE:
        return True
    return target.exists() and Path(os.path.abspath(target)).parts[1:2] in (("dev",), ("proc",))


def _special_file(target: Path) -> str | None:
    """What ``target`` is (links followed) when it exists and is neither a file nor a folder."""
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return None
    for test, kind in ((stat.S_ISCHR, "character device"), (stat.S_ISFIFO, "pipe"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISSOCK, "socket")):
        if test(mode):
            return kind
    return None


def check_output_folder(path: str | os.PathLike, signature: Signature | None = None) -> Path:
    """``path`` as a folder this tool may (re)write: new, empty, or one it wrote before; never
    the current folder or one above it (``--out .`` or ``..``), which a swap cannot replace."""
    target = Path(os.path.normpath(path))  # "runs/x/.." is "runs": its name is no "..", which no swap can place
    here = Path.cwd()
    if Path(os.path.abspath(target)) in (here, *here.parents):
        raise UserError(f"{path} is the current folder or holds it, and this output replaces a folder as a whole; "
                        "give a new folder (e.g. out/); nothing was written")
    if target.exists() and not target.is_dir():
        raise UserError(f"{target} is a file, and this output is a folder; give a folder path; nothing was written")
    _check_parents(target)
    if target.is_dir() and not is_own_folder(target, signature):
        if (target / MARKER).is_file():
            raise UserError(f"{target} holds the output of another text2sql-mlops command, or files added to one, which "
                            "this command would replace; choose a new or empty folder; nothing was changed")
        raise UserError(f"{target} is a folder this tool did not write (it has files and no {MARKER} marker); "
                        "choose a new or empty folder; nothing was changed")
    return target


def check_writable(target: Path) -> None:
    """Refuse, before any work, an output where nothing can be created (a read-only mount,
    /proc, no permission): otherwise a command would train or register first and fail only
    at its last write. Creates and removes one temporary where the output's files will go
    (the folder itself, or the nearest folder that exists). Run where an output flag is read
    (``output_file``, ``output_folder_type``), not by the atomic writers, whose own temporary
    already fails with the same line."""
    if _written_in_place(target):
        if not os.access(target, os.W_OK):
            raise UserError(f"cannot write {target}: permission denied; choose a writable location; nothing was written")
        return
    place = target if target.is_dir() else next((parent for parent in target.parents if parent.is_dir()), Path.cwd())
    try:
        handle, probe = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp", dir=place)
    except OSError as exc:
        raise UserError(_unwritable(target, exc)) from None
    os.close(handle)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def is_own_folder(path: Path, signature: Signature | None = None) -> bool:
    """True when ``path`` is empty, or holds this command's output: the marker and (for a command
    with one) the command's ``signature``; or, written before the marker existed, the signature alone.
    A folder whose marker lists the files it was written with must hold no others: notes, an
    evaluation or a checkpoint a user put into a training's folder are theirs, and a rerun of
    that training into the same folder would delete them."""
    if not any(path.iterdir()):
        return True
    listed = listed_files(path)
    if listed is not None and not holds_only_files(path, listed):
        return False
    if signature is not None:
        return signature(path)
    return (path / MARKER).is_file()


def listed_files(folder: Path) -> list[str] | None:
    """The files ``folder``'s marker lists (paths relative to it), or None for a marker without
    a list (a dataset, a rollout, a folder from before the lists) or no marker."""
    return _marker_names(folder, "files")


def _marker_value(folder: str | os.PathLike, key: str) -> Any:
    """What ``folder``'s marker holds under ``key``, or None (no marker, not JSON, no such key)."""
    try:
        return json.loads((Path(folder) / MARKER).read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def _marker_names(folder: Path, key: str) -> list[str] | None:
    """The list of names under ``key`` in ``folder``'s marker, or None (no marker, no such list)."""
    names = _marker_value(folder, key)
    return names if isinstance(names, list) and all(isinstance(name, str) for name in names) else None


def holds_only(folder: Path, names) -> bool:
    """True when every entry of ``folder`` is one of ``names`` or the marker: a signature for
    commands whose output is a fixed set of files."""
    return all(entry.name in names or entry.name == MARKER for entry in folder.iterdir())


def holds_only_files(folder: Path, files: Iterable[str]) -> bool:
    """True when every file under ``folder``, at any depth, is one of ``files`` (paths relative to
    ``folder``, with ``/``) or the marker: a signature for outputs a user may add to (a dataset),
    so that an output holding a user's notes, runs or databases is never replaced as a whole."""
    known = {*files, MARKER}
    return all(path.relative_to(folder).as_posix() in known or _stale_temp(path)
               for path in folder.rglob("*") if not path.is_dir())


def _stale_temp(path: Path) -> bool:
    """A temporary of this module whose process is gone (killed mid-write): never the user's."""
    match = _TEMP.match(path.name)
    return bool(match) and not _alive(int(match["pid"]))


def mark_folder(path: str | os.PathLike, list_files: bool = False, owns: Iterable[str] | None = None,
                command: str | None = None) -> None:
    """Claim ``path`` (a folder being written) as this tool's; with ``list_files``, the marker
    also lists the files in it now (a folder written as a whole, when it is complete). ``owns``:
    for a folder its command updates in place instead (a rollout), the names that are its own;
    other files may sit beside them (the reference project mines `<rollout>/dpo_pairs.jsonl`).
    ``command``: which command's folder it is (with ``owns``), read back by ``marked_command``."""
    folder = Path(path)
    marker = folder / MARKER
    if list_files:
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir() and p != marker)
        marker.write_text(_listing(files), encoding="utf-8")
    elif owns is not None:
        said = {"written_by": "text2sql-mlops", "owns": sorted(owns), **({"command": command} if command else {})}
        marker.write_text(json.dumps(said, indent=1) + "\n", encoding="utf-8")
    elif not marker.is_file():
        marker.write_text(_MARKER_TEXT, encoding="utf-8")


def marked_command(folder: str | os.PathLike) -> str | None:
    """The command whose folder ``folder`` is, as its marker says (``mark_folder(command=...)``), or None."""
    command = _marker_value(folder, "command")
    return command if isinstance(command, str) else None


def _owned_names(folder: Path) -> list[str] | None:
    """The names a folder updated in place owns (``mark_folder(owns=...)``), or None."""
    return _marker_names(folder, "owns")


def _listing(files: list[str]) -> str:
    return json.dumps({"written_by": "text2sql-mlops", "files": files}, indent=1) + "\n"


def _claim(target: Path) -> None:
    """List ``target``, a file just written inside a folder whose marker lists its files, in that
    list (`track --record` beside a trained model): a later rerun of the command that wrote the
    folder may replace it, as it may the rest."""
    for folder in target.parents:
        listed = listed_files(folder)
        if listed is not None:
            name = target.relative_to(folder).as_posix()
            if name not in listed:
                staged = folder / f"{_temp_prefix(folder / MARKER)}{secrets.token_hex(6)}.tmp"
                try:
                    staged.write_text(_listing(sorted([*listed, name])), encoding="utf-8")
                    os.replace(staged, folder / MARKER)
                finally:
                    staged.unlink(missing_ok=True)
            return
        if (folder / MARKER).is_file():
            return


def check_not_an_input(output: str | os.PathLike, inputs: Iterable[str | os.PathLike | None], flag: str) -> None:
    """Refuse an output that would replace one of the command's inputs (``None`` inputs are
    skipped): the same path, a file already inside an input folder (``pairs mine --out
    <rollout>/trajectories.jsonl``), or an output folder, replaced as a whole, that holds an
    input (``train sft --pairs runs/x/pairs.jsonl --out runs/x``)."""
    out = Path(output).resolve()
    for given in inputs:
        if given is None:
            continue
        source = Path(given).resolve()
        if (out == source or (source.is_dir() and source in out.parents and out.exists() and _part_of(source, out))
                or (out.is_dir() and out in source.parents)):
            raise UserError(f"{flag} {output} would overwrite the input {given}; write it elsewhere; nothing was written")


def _part_of(folder: Path, path: Path) -> bool:
    """Whether ``path``, inside the input ``folder``, is part of what the command reads: any
    file of it, unless the folder is a rollout's, whose own files are named (its marker's
    ``owns``): pairs mined beside them (`<rollout>/dpo_pairs.jsonl`) may be mined again."""
    owns = _owned_names(folder)
    return owns is None or path.relative_to(folder).parts[0] in owns


def check_outputs(outputs: Iterable[tuple[str, str | os.PathLike | None]],
                  inputs: Iterable[str | os.PathLike | None]) -> None:
    """A command's outputs, as ``(flag, path)`` (``None`` paths skipped), must each leave its
    inputs whole (``check_not_an_input``) and not share a path with another of its outputs:
    ``pairs mine --out p.jsonl --stats p.jsonl`` wrote the pairs, then the stats over them."""
    inputs = [given for given in inputs if given is not None]
    written: dict[Path, str] = {}
    for flag, output in outputs:
        if output is None:
            continue
        check_not_an_input(output, inputs, flag)
        path = Path(output).resolve()
        if path in written:
            raise UserError(f"{flag} {output} would overwrite the file of {written[path]}; give each output its own path; "
                            "nothing was written")
        written[path] = flag


def _check_parents(target: Path) -> None:
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{parent} is a file, so {target} cannot be created; give another path")
            break
    for parent in target.absolute().parents:
        # A run written into data/demo made DVC see the dataset modified, and `make repro`'s
        # `dvc pull` then failed (its --force would delete the run); a rebuild would too.
        if (parent / MARKER).is_file() and (parent / "tables.json").is_file() and (parent / "database").is_dir():
            raise UserError(f"{target} is inside the dataset {parent}, which `data demo`, `data import-spider` and "
                            "`dvc pull` replace as a whole; write it outside the dataset; nothing was written")


def check_not_inside_an_output(target: Path, allowed: Signature | None = None) -> None:
    """Refuse an output placed inside another command's output folder (one with the marker):
    `evaluate --out <a training output>/eval` was deleted when that training ran again, which
    replaces its folder as a whole (DVC also sees the folder changed). In a folder its command
    updates in place (a rollout), only that command's own files are refused: `pairs mine --out
    <a rollout>/trajectories.jsonl` replaced the rollout's trajectories. ``allowed`` names the
    folders a flag may write into (``track --record`` beside a trained adapter)."""
    for parent in target.absolute().parents:
        if (parent / MARKER).is_file():
            owns = _owned_names(parent)
            if owns is not None:  # updated in place: only its own files are out of bounds
                name = target.absolute().relative_to(parent).parts[0]
                if name in owns:
                    raise UserError(f"{target} is {parent}'s own {name}, the output of a text2sql-mlops command; "
                                    "write it elsewhere; nothing was written")
                return
            if allowed is None or not allowed(parent):
                raise UserError(f"{target} is inside {parent}, the output of a text2sql-mlops command, which that command "
                                f"replaces as a whole when it runs again; write it outside {parent}; nothing was written")
            return


def output_file_type(allowed_inside: Signature | None = None) -> Callable[[str], str]:
    """argparse ``type`` of a file output flag: refused at parse time, before any work.
    ``allowed_inside``: the other commands' output folders this file may be written into."""

    def output_file(text: str) -> str:
        target = check_output_file(text)
        check_not_inside_an_output(target, allowed_inside)
        check_writable(target)
        return text

    output_file.output_kind = "file"  # type: ignore[attr-defined]  # tests find every output flag by this
    return output_file


output_file = output_file_type()


def output_folder_type(signature: Signature | None = None) -> Callable[[str], str]:
    """argparse ``type`` of a folder output flag (a folder written as a whole, or a run folder)."""

    def output_folder(text: str) -> str:
        target = check_output_folder(text, signature)
        check_not_inside_an_output(target)
        check_writable(target)
        return text

    output_folder.output_kind = "folder"  # type: ignore[attr-defined]
    return output_folder


# --------------------------------------------------------------------------- atomic writers


def _unwritable(target: Path, exc: OSError) -> str:
    return f"cannot write {target}: {exc.strerror or exc}; choose a writable location; nothing was written"


def make_folder(folder: Path, target: Path | None = None) -> None:
    """``folder`` and its parents, or one ``UserError`` naming the output (``target``) that needed it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(_unwritable(target or folder, exc)) from None


_NAME_IN_TEMP = 160  # a temporary's name adds about 30 characters; file names stop at 255 bytes
_REPLACED = "replaced"  # inside atomic_folder's temporary: the old output, between the two renames


def _temp_prefix(target: Path) -> str:
    return f".{target.name[:_NAME_IN_TEMP]}.{os.getpid()}."


_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp$")


def remove_stale_temps(folder: str | os.PathLike, name: str | None = None) -> int:
    """Remove temporaries of dead processes in ``folder`` (only those of ``name`` when given)."""
    folder = Path(folder)
    removed = 0
    if not folder.is_dir():
        return 0
    for entry in folder.iterdir():
        match = _TEMP.match(entry.name)
        if not match or (name is not None and match["name"] != name[:_NAME_IN_TEMP]) or _alive(int(match["pid"])):
            continue
        replaced, target = entry / _REPLACED, folder / match["name"]
        if replaced.is_dir() and not target.exists() and len(match["name"]) < _NAME_IN_TEMP:
            # killed between atomic_folder's two renames: the old output goes back, not away
            os.rename(replaced, target)
        _remove(entry)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path next to ``path``; rename it onto ``path`` when the block succeeds.

    On any exception the temporary is removed and ``path`` is left as it was.
    """
    target = check_output_file(path)
    if _written_in_place(target):  # /dev/null, a pipe, /dev/stdout: nothing to rename, the bytes go straight in
        yield target
        return
    make_folder(target.parent, target)
    remove_stale_temps(target.parent, target.name)
    # Only a name: the caller creates the file, so it gets the usual permissions (mkstemp's are 0600).
    staged = target.parent / f"{_temp_prefix(target)}{secrets.token_hex(6)}.tmp"
    try:
        yield staged
        check_output_file(target)  # a folder may have appeared there meanwhile
        os.replace(staged, target)
        _claim(target)
    except OSError as exc:
        if exc.filename not in (str(staged), staged):
            raise
        raise UserError(_unwritable(target, exc)) from None
    finally:
        with contextlib.suppress(OSError):  # a read-only folder refuses even this unlink; no temporary was made
            staged.unlink(missing_ok=True)


@contextlib.contextmanager
def output_lock(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold ``path`` for this process while a long command builds it (a training): a second
    command into the same output fails at once, naming the holder, instead of replacing the
    first one's result when it finishes. The lock is ``.<name>.text2sql-mlops.lock`` beside
    the output, removed when the block ends."""
    import fcntl

    target = Path(path)
    make_folder(target.parent, target)
    lock = target.parent / f".{target.name[:_NAME_IN_TEMP]}{LOCK_SUFFIX}"
    while True:
        try:
            handle = open(lock, "a+")  # noqa: SIM115 - held until the block ends
        except OSError as exc:
            raise UserError(_unwritable(target, exc)) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise UserError(f"{target} is being written by another {what} (pid {holder}); wait for it to finish "
                            "or give another output") from None
        # The holder before us removes the file as it lets go: locking that removed file
        # would let a third process lock a new one beside us, so take the one on disk.
        with contextlib.suppress(FileNotFoundError):
            if os.stat(lock).st_ino == os.fstat(handle.fileno()).st_ino:
                break
        handle.close()
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()
        handle.close()


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, signature: Signature | None = None, list_files: bool = True) -> Iterator[Path]:
    """Yield a temporary folder path next to ``path``; swap it in for ``path`` when the block succeeds.

    The block creates the folder (or it is created empty); the marker is added, listing the
    files (``list_files``; a dataset, whose own manifest or exact file set does that, and whose
    hash DVC pins, keeps the plain marker). An existing folder at ``path`` is replaced only if
    this tool wrote it (``check_output_folder``).
    """
    target = check_output_folder(path, signature)
    make_folder(target.parent, target)
    remove_stale_temps(target.parent, target.name)
    try:
        scratch = Path(tempfile.mkdtemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise UserError(_unwritable(target, exc)) from None
    staged = scratch / target.name
    try:
        yield staged
        staged.mkdir(exist_ok=True)
        mark_folder(staged, list_files)
        check_output_folder(target, signature)
        try:
            if target.exists():
                # Old folder aside first: a rename cannot replace a non-empty folder. Stopped between
                # the two renames, the old one goes back (below; killed: remove_stale_temps does it).
                os.rename(target, scratch / _REPLACED)
            os.rename(staged, target)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                raise
            raise UserError(f"{target} was written by another run at the same time; its output is in place "
                            "(rerun this command for this run's); nothing of this run was kept") from None
    finally:
        if (scratch / _REPLACED).is_dir() and not target.exists():
            os.rename(scratch / _REPLACED, target)
        _remove(scratch)


_STANDARD_STREAMS = {"/dev/stdout": "stdout", "/dev/fd/1": "stdout", "/proc/self/fd/1": "stdout",
                     "/dev/stderr": "stderr", "/dev/fd/2": "stderr", "/proc/self/fd/2": "stderr"}


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"):
    """``open()`` for writing that only replaces ``path`` when the block succeeds. ``/dev/stdout``
    (and stderr) is the process's own stream: opened again, it wrote from the start of a file the
    shell redirected it to, where the command's printed lines then overwrote it."""
    stream = _STANDARD_STREAMS.get(os.path.abspath(path))
    if stream is not None:
        handle = getattr(sys, stream)
        handle.flush()
        yield handle.buffer if "b" in mode else handle
        handle.flush()
        return
    if "b" in mode:
        encoding = None
    with atomic_file(path) as staged:
        with open(staged, mode, encoding=encoding) as handle:
            yield handle


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_open(path) as handle:
        json.dump(obj, handle, indent=2, ensure_ascii=False, sort_keys=False)
        handle.write("\n")


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> int:
    count = 0
    with atomic_open(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """Yield one dict per non-blank line; a bad line raises UserError naming it."""
    for _, record in numbered_jsonl(path):
        yield record


def numbered_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """(line number, dict) per non-blank line, for readers whose own checks name the line."""
    try:
        handle = open(path, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        lineno = 0
        try:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise UserError(f"{path}:{lineno}: invalid JSON ({exc.msg}); fix or remove that line") from None
                if not isinstance(record, dict):
                    raise UserError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
                yield lineno, record
        except UnicodeDecodeError:
            raise UserError(f"{path}:{lineno + 1}: not UTF-8 text; save the file as UTF-8") from None


def _remove(path: Path) -> None:
    """Remove a temporary this module created (a file or a folder)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
