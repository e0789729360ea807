"""Argument parsing shared by the stage commands.

Flags are spelled with underscores as in the seed project (``--dataset_path``),
and every one also answers to its dash spelling (``--dataset-path``). Usage
errors become one ``UserError`` line, like every other error of the CLI.
"""

from __future__ import annotations

import argparse
import importlib
import sys

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
