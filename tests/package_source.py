"""The package's modules as files, for the tests that read its import graph from the source
(tests/test_layers.py: layers point down; tests/test_dvc_deps.py: each stage lists its code)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "text2sql_mlops"
# A module path named in a string ("text2sql_mlops.generation.hf:HFGenerator"): imported by name.
MODULE_STRING = re.compile(rf"^({PACKAGE}(?:\.\w+)+)(?::\w+)?$")


def module_file(name: str) -> Path | None:
    base = ROOT / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_base(node: ast.ImportFrom, package: str) -> str:
    """The absolute module an ``ImportFrom`` in ``package`` imports from (relative levels resolved)."""
    base = node.module or ""
    if node.level:
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*anchor, *([base] if base else [])])
    return base
