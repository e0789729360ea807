"""Every dvc.yaml stage lists the code it runs: the import closure of each command in its cmd.

A stage whose deps miss a module it runs is not re-run when that module changes, so its
outputs (metrics, and the champion decision built on them) go silently stale. The closure is
read from the source (ast): every import statement, at module level or inside a function
(those run too), plus module paths named in strings (the generator backends are imported by
name); each imported submodule brings its package's ``__init__``. A dispatcher's table of
subcommands (``COMMANDS``, ``ACTIONS``) is not followed: the test resolves the subcommand the
stage names.
"""

from __future__ import annotations

import ast
import shlex
from functools import cache

import pytest
import yaml
from package_source import MODULE_STRING, PACKAGE, ROOT, imported_base, module_file

DISPATCH_TABLES = {"COMMANDS", "ACTIONS"}


def _dispatch_strings(tree: ast.Module) -> set[int]:
    """ids of the string constants inside COMMANDS/ACTIONS tables (not followed)."""
    skipped = set()
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id in DISPATCH_TABLES for t in targets) and node.value is not None:
            skipped |= {id(c) for c in ast.walk(node.value) if isinstance(c, ast.Constant)}
    return skipped


@cache
def direct_imports(name: str) -> frozenset[str]:
    path = module_file(name)
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    skipped = _dispatch_strings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = imported_base(node, package)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # kept below only when a module
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped:
            if match := MODULE_STRING.match(node.value):
                found.add(match.group(1))
    modules = set()
    for imported in found:
        if imported.split(".")[0] == PACKAGE and module_file(imported):
            parts = imported.split(".")
            modules |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}  # packages' __init__ run first
    return frozenset(modules)


def closure(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += direct_imports(name) - seen
    return seen


def command_modules(cmd: str) -> set[str]:
    """The modules of every ``text2sql-mlops <command> [<action>]`` call in a stage's cmd."""
    from text2sql_mlops.cli import COMMANDS

    words = shlex.split(cmd.replace("&&", " && "))
    modules = set()
    for i, word in enumerate(words):
        if word != "text2sql-mlops":
            continue
        entry = COMMANDS[words[i + 1]][0]
        modules |= closure(entry) | closure(f"{PACKAGE}.cli")
        actions = _actions(entry)
        if actions and i + 2 < len(words) and words[i + 2] in actions:
            modules |= closure(actions[words[i + 2]])
    return modules


def _actions(name: str) -> dict[str, str]:
    tree = ast.parse(module_file(name).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "ACTIONS" for t in node.targets):
            return {k.value: v.elts[0].value for k, v in zip(node.value.keys, node.value.values)}
    return {}


def stages() -> list[tuple[str, str, list[str]]]:
    """(stage name, cmd, deps) of every stage of dvc.yaml, foreach/matrix bodies included."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    out = []
    for name, stage in spec.items():
        body = stage.get("do", stage)
        out.append((name, body["cmd"], [str(d) for d in body.get("deps", [])]))
    return out


def covered(module: str, deps: list[str]) -> bool:
    path = module_file(module).relative_to(ROOT).as_posix()
    return any(path == dep.rstrip("/") or path.startswith(dep.rstrip("/") + "/") for dep in deps)


@pytest.mark.parametrize("name,cmd,deps", stages(), ids=[s[0] for s in stages()])
def test_stage_deps_cover_the_code_its_commands_run(name, cmd, deps):
    missing = sorted(module_file(m).relative_to(ROOT).as_posix() for m in command_modules(cmd) if not covered(m, deps))
    assert not missing, f"dvc.yaml stage {name!r} runs code its deps do not list: {', '.join(missing)}"


def test_the_closure_follows_function_level_imports_and_named_backends():
    eval_code = closure(f"{PACKAGE}.mlops.evaluate")
    assert {f"{PACKAGE}.sql.sandbox", f"{PACKAGE}.scoring.scorer", f"{PACKAGE}.rollout.feedback", f"{PACKAGE}.generation.hf"} <= eval_code
    assert f"{PACKAGE}.training.metrics" in closure(f"{PACKAGE}.training.common")  # imported inside a function (transformers)
    # a dispatcher's table is not followed: `pairs mine` does not run the dashboard
    mine = command_modules("text2sql-mlops pairs mine --trajectories x --out y")
    assert f"{PACKAGE}.pairs.mine" in mine and f"{PACKAGE}.pairs.report" not in mine
