"""Argument parsing shared by the stage commands.

Flags are spelled with underscores as in the seed project (``--dataset_path``),
and every one also answers to its dash spelling (``--dataset-path``). Usage
errors become one ``UserError`` line, like every other error of the CLI.
"""

from __future__ import annotations

import argparse

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
