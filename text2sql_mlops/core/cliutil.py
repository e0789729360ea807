"""Argument parsing shared by the stage commands.

Flags are spelled with underscores as in the seed project (``--dataset_path``),
and every one also answers to its dash spelling (``--dataset-path``). Usage
errors become one ``UserError`` line, like every other error of the CLI.

A command's settings are one dataclass whose fields are declared with ``setting``
(default, one line of help, argparse options); ``add_flags`` turns its fields into
flags and ``from_args`` reads them back, so a setting is defined once.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterable
from dataclasses import MISSING, field, fields
from typing import Any

from .errors import UserError


class ArgParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one ``error:`` line and exit status 2."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        raise UserError(f"{self.prog}: {message} (see --help)")


def flag(parser: argparse.ArgumentParser, name: str, *aliases: str, **options) -> None:
    """Add ``--name`` plus its dash spelling (``--dataset_path`` and ``--dataset-path``)."""
    spellings = dict.fromkeys([f"--{name}", f"--{name.replace('_', '-')}", *aliases])
    parser.add_argument(*spellings, dest=name, **options)


def setting(default: Any, help: str, **flag_options: Any) -> Any:
    """A dataclass field whose help text and argparse options live in its metadata.

    ``aliases=(...)`` adds other spellings (the reference project's); ``auto=True`` makes a
    boolean that stays None unless ``--name`` or ``--no_name`` is given; ``cli=False`` keeps
    the field off the command line (its command adds a flag of its own for it)."""
    kwargs: dict[str, Any] = {"default_factory": lambda: type(default)(default)} if isinstance(default, (list, dict)) \
        else {"default": default}
    return field(metadata={"help": help, "flag": flag_options}, **kwargs)


def add_flags(parser: argparse.ArgumentParser, cls: type, later: Iterable[str] = ()) -> None:
    """One flag per ``setting`` field of ``cls`` (``--name`` and ``--name-with-dashes``), in
    declaration order with the fields named in ``later`` last."""
    later = set(later)
    for f in sorted((f for f in fields(cls) if "flag" in f.metadata), key=lambda f: f.name in later):
        options = dict(f.metadata["flag"])
        if not options.pop("cli", True):
            continue
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        if isinstance(default, dict):  # a mapping is given on the command line as KEY=VALUE words
            default = [f"{key}={value}" for key, value in default.items()]
        names = dict.fromkeys([f"--{f.name}", f"--{f.name.replace('_', '-')}", *options.pop("aliases", ())])
        if options.pop("auto", False):
            group = parser.add_mutually_exclusive_group()
            group.add_argument(*names, dest=f.name, action="store_const", const=True, default=None, help=f.metadata["help"])
            negated = dict.fromkeys([f"--no_{f.name}", f"--no-{f.name.replace('_', '-')}"])
            group.add_argument(*negated, dest=f.name, action="store_const", const=False, help=f"turn --{f.name} off")
            continue
        # Help texts are argparse format strings: a literal percent sign is written %%.
        shown = "" if options.get("required") or default is None or default == [] or options.get("action") == "store_true" \
            else f" (default: {' '.join(map(str, default))})" if isinstance(default, tuple) else " (default: %(default)s)"
        parser.add_argument(*names, dest=f.name, default=default, help=f.metadata["help"] + shown, **options)


def from_args(cls: type, args: argparse.Namespace, **values: Any) -> Any:
    """``cls`` from the parsed flags of its fields (those the parser has), then ``values``."""
    given = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    return cls(**{**given, **values})


def count_or_all(text: str) -> int | None:
    """argparse ``type`` of a count that may be 'all' (params.yaml can say so where a number would be a guess)."""
    if text.strip().lower() in {"all", "none", "null"}:
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'all', got {text!r}") from None


def yes_no(text: str) -> bool:
    """argparse ``type`` of an optional flag value: ``--x`` alone is true, ``--x false`` (how dvc.yaml
    spells one params.yaml boolean in a command) is false."""
    value = text.strip().lower()
    if value in {"true", "yes", "1"}:
        return True
    if value in {"false", "no", "0"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def section_flags(section: dict[str, Any]) -> list[str]:
    """A params.yaml section as dvc.yaml's ``${section}`` unpacks it into flags: ``--key value``,
    a true boolean as ``--key``, a false one or None left out, a list as ``--key a b``."""
    argv: list[str] = []
    for key, value in section.items():
        if value is True:
            argv.append(f"--{key}")
        elif value is False or value is None:
            continue
        elif isinstance(value, list):
            argv += [f"--{key}", *map(str, value)]
        else:
            argv += [f"--{key}", str(value)]
    return argv


def run_action(actions: dict[str, tuple[str, str]], argv: list[str] | None, prog: str) -> int:
    """Dispatch ``prog <action> ...`` to the module ``actions[action][0]`` (its ``main(argv, prog)``).

    ``actions`` maps an action to (module, one-line help); modules are imported only when
    their action runs, so ``pairs`` never imports what ``train`` needs.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        width = max(map(len, actions))
        print(f"usage: {prog} <action> [options]\n\nactions:")
        for name, (_, help_) in actions.items():
            print(f"  {name.ljust(width)}  {help_}")
        return 0
    if argv[0] not in actions:
        raise UserError(f"unknown action {argv[0]!r} for {prog}; choose one of: {', '.join(actions)}")
    module = importlib.import_module(actions[argv[0]][0])
    return int(module.main(argv[1:], prog=f"{prog} {argv[0]}") or 0)
