"""``text2sql-mlops``: one subcommand per stage; this file only dispatches.

Each subcommand lives in its own module, which defines ``make_parser(prog)``
and ``main(argv) -> int``; arguments are defined once, there. Modules are
imported only when their subcommand runs, so commands that need no model
(``exec``, ``score``, ``schema-recall``, ``data``) never import torch.
"""

from __future__ import annotations

import errno
import importlib
import signal
import sqlite3
import sys
import threading

from . import __version__
from .core.errors import UserError

# subcommand -> (module, one-line help). Order is the order of the data flow.
COMMANDS: dict[str, tuple[str, str]] = {
    "model": ("text2sql_mlops.generation.prepare", "prepare the base model folder (the embedded SmolLM2-135M-Instruct by default)"),
    "data": ("text2sql_mlops.data.command", "import, validate and generate datasets (import-spider, demo, validate)"),
    "exec": ("text2sql_mlops.sql.sandbox", "run one SQL query in the read-only sandbox; prints one JSON object"),
    "score": ("text2sql_mlops.scoring.scorer", "execution accuracy with the official Spider semantics"),
    "schema-recall": ("text2sql_mlops.schema.recall", "gold-table recall of a schema retrieval mode"),
    "rollout": ("text2sql_mlops.rollout.command", "multi-turn generation with execution feedback and repair; `rollout merge` joins shards"),
    "pairs": ("text2sql_mlops.pairs", "preference pairs: mine, synth (hard negatives), merge (filter/balance), report (dashboard)"),
    "train": ("text2sql_mlops.training", "LoRA fine-tuning with TRL: `train sft`, `train dpo` (optionally continuing an SFT adapter)"),
    "eval": ("text2sql_mlops.mlops.evaluate", "evaluate a model or adapter (folder or models:/NAME@ALIAS) on a held-out split"),
    "compare": ("text2sql_mlops.mlops.compare", "comparison report across evaluated runs: EX strict/oracle, repair, errors"),
    "report": ("text2sql_mlops.mlops.report", "analysis tables over evaluation folders: repair-breakdown, routing, online-repair, column-errors"),
    "track": ("text2sql_mlops.mlops.tracking", "log a finished pipeline stage to MLflow (params, metrics, artifacts, adapter)"),
    "register": ("text2sql_mlops.mlops.registry", "register the SFT+DPO adapter; move the champion alias when strict EX improves"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: text2sql-mlops <command> [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `text2sql-mlops <command> --help` for the options of one command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    if argv[0] in {"-V", "--version"}:
        print(f"text2sql-mlops {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])

    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if on_main_thread else None
    try:
        return int(module.main(rest, prog=f"text2sql-mlops {name}") or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in _NO_SPACE:
            raise
        where = f" writing {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror}{where}; free some space or write elsewhere, then rerun (outputs are replaced only "
              "whole, so the earlier ones are intact; a rollout resumes)", file=sys.stderr)
        return 1
    except sqlite3.OperationalError as exc:
        if "disk is full" not in str(exc):
            raise
        print(f"error: {exc}; free some space or write elsewhere, then rerun", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        print(f"error: {'terminated (SIGTERM)' if terminated else 'interrupted'}", file=sys.stderr)
        return 143 if terminated else 130
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)


_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}  # a full disk, a quota, a file-size limit


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, a scheduler stopping a job) handled as Ctrl-C is: the atomic writers'
    cleanup runs, so no temporary is left, and the command says so in one line. Without it
    Python dies at once, leaving ``.<name>.<pid>.<random>.tmp`` beside the output."""


def _terminate(signum, frame):
    raise Terminated


if __name__ == "__main__":
    sys.exit(main())
