"""Folders mirror the flow and layers only point down: the package's import graph, read from the source.

``text2sql_mlops/`` is a stack of layers, in the order of the data flow::

    core < sql < data < scoring, schema < prompts < generation < rollout < pairs < training < mlops < cli

A module may import its own folder's modules and those of any LOWER layer: never a higher
layer, and never a sibling of its own layer (``scoring`` and ``schema`` know nothing of each
other). Every import counts, as in tests/test_dvc_deps.py: at module level, inside a
function, under ``TYPE_CHECKING``, and module paths named in strings (the generator
registry's ``"text2sql_mlops.generation.hf:HFGenerator"``, the command tables). The graph has
no cycle, inside a folder either.

An import of one of our modules inside a function hides the dependency from a reader and
can hide a cycle. One is allowed only where it keeps a heavy library off the start-up path:
where the imported module brings torch, transformers, mlflow (or their kin) at import time.
"""

from __future__ import annotations

import ast
from functools import cache

import pytest
from package_source import MODULE_STRING, PACKAGE, ROOT, imported_base, module_file, module_name

LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),
    ("sql",),
    ("data",),
    ("scoring", "schema"),
    ("prompts",),
    ("generation",),
    ("rollout",),
    ("pairs",),
    ("training",),
    ("mlops",),
    ("cli",),
)
LAYER = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}
# Upward imports kept on purpose: (importer, imported) -> why. Keep it empty.
EXCEPTIONS: dict[tuple[str, str], str] = {}
# Libraries a model-free command must not import at start-up (tests/test_cli.py checks the commands).
HEAVY = {"torch", "transformers", "peft", "trl", "mlflow", "pandas", "vllm", "datasets", "accelerate"}


def modules() -> list[str]:
    return [module_name(path) for path in sorted((ROOT / PACKAGE).rglob("*.py"))]


def unit(name: str) -> str | None:
    """The layer unit of a module: its top folder under the package (or its own name); None for the package itself."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


@cache
def imports(name: str) -> tuple[tuple[str, int, bool, bool], ...]:
    """(module of ours, line, inside a function?, named in a string?) for every import and module string of ``name``."""
    path = module_file(name)
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, int, bool, bool]] = []

    def resolve(base: str, names: list[str]) -> list[str]:
        # `from pkg import module` names a module; `from module import function` names the module
        return [f"{base}.{n}" if module_file(f"{base}.{n}") else base for n in names] or [base]

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            targets: list[str] = []
            named = False
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                targets = resolve(imported_base(child, package), [alias.name for alias in child.names])
            elif isinstance(child, ast.Constant) and isinstance(child.value, str):
                if match := MODULE_STRING.match(child.value):
                    targets, named = [match.group(1)], True
            for target in targets:
                if target.split(".")[0] == PACKAGE and module_file(target) and target != name:
                    found.append((target, child.lineno, inside, named))
            visit(child, inside)

    visit(tree, False)
    return tuple(dict.fromkeys(found))


def _imports_heavy_itself(name: str) -> bool:
    tree = ast.parse(module_file(name).read_text())
    for node in tree.body:
        for item in [node, *(ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else ())]:
            if isinstance(item, ast.Import) and any(alias.name.split(".")[0] in HEAVY for alias in item.names):
                return True
            if isinstance(item, ast.ImportFrom) and not item.level and (item.module or "").split(".")[0] in HEAVY:
                return True
    return False


@cache
def heavy_at_import(name: str) -> bool:
    """Whether importing ``name`` imports a HEAVY library (module-level imports, followed through ours)."""
    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        if _imports_heavy_itself(current):
            return True
        # a module named in a string is imported when it is used, not with its namer
        todo += [target for target, _, inside, named in imports(current) if not inside and not named and target != PACKAGE]
    return False


def edges() -> list[tuple[str, str, int, bool, bool]]:
    return [(name, *found) for name in modules() for found in imports(name)]


def test_every_folder_and_top_module_has_a_layer():
    units = {unit(name) for name in modules()} - {None}
    assert units == set(LAYER), f"give these a layer in LAYERS: {sorted(units - set(LAYER))}; stale: {sorted(set(LAYER) - units)}"


def upward_imports(found: list[tuple[str, str, int, bool, bool]]) -> list[str]:
    """The imports of ``found`` (``edges()``) that point up or sideways, one line each."""
    upward = []
    for name, target, line, _, _ in found:
        here, there = unit(name), unit(target)
        if there is None or here == there or (name, target) in EXCEPTIONS:
            continue
        if LAYER[there] >= LAYER[here]:
            why = "a sibling layer" if LAYER[there] == LAYER[here] else "a higher layer"
            upward.append(f"{name}:{line} imports {target} ({why})")
    return upward


def cycles(graph: dict[str, list[str]]) -> list[str]:
    """Every cycle a depth-first walk of ``graph`` (module -> the modules it imports) closes."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []
    found = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in graph.get(name, ()):
            if state.get(target) == 1:
                found.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name)
    return found


def test_layers_only_point_down():
    upward = upward_imports(edges())
    assert not upward, "imports that do not point down:\n" + "\n".join(upward)


def test_the_exceptions_are_still_needed():
    used = {(name, target) for name, target, *_ in edges()}
    assert set(EXCEPTIONS) <= used, f"drop these from EXCEPTIONS: {sorted(set(EXCEPTIONS) - used)}"


def test_no_import_cycles():
    graph = {name: sorted({target for target, *_ in imports(name) if target != PACKAGE}) for name in modules()}
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(found)


def test_imports_inside_functions_only_keep_heavy_libraries_off_start_up():
    needless = [f"{module_file(name).relative_to(ROOT)}:{line} imports {target} inside a function"
                for name, target, line, inside, named in edges() if inside and not named and not heavy_at_import(target)]
    assert not needless, ("move these imports to the top of their module (only an import of a module that "
                          "imports torch, mlflow or their kin may stay inside a function):\n" + "\n".join(needless))


def test_the_checks_catch_what_they_are_for():
    records, prompts, catalog, shape = (f"{PACKAGE}.{m}" for m in ("core.records", "prompts", "sql.catalog", "sql.shape"))
    assert upward_imports([(records, prompts, 1, True, False)]) == [f"{records}:1 imports {prompts} (a higher layer)"]
    assert upward_imports([(f"{PACKAGE}.scoring.scorer", f"{PACKAGE}.schema.render", 1, False, False)])  # siblings
    assert upward_imports([(prompts, records, 1, False, False), (shape, catalog, 1, False, False)]) == []
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a -> b -> c -> a"] and cycles({"a": ["b"], "b": []}) == []


@pytest.mark.parametrize("name,heavy", [("text2sql_mlops.generation.hf", True), ("text2sql_mlops.training.metrics", True),
                                        ("text2sql_mlops.generation", False), ("text2sql_mlops.rollout.command", False),
                                        ("text2sql_mlops.mlops.registry", False)])
def test_heavy_modules_are_recognised(name, heavy):
    assert heavy_at_import(name) is heavy



def test_the_readme_layout_names_every_folder_and_module():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):readme.index("\n## ", readme.index("## Layout") + 1)]
    demo = ROOT / PACKAGE / "data" / "demo"
    missing = [path.relative_to(ROOT).as_posix() for path in sorted((ROOT / PACKAGE).rglob("*.py"))
               if path.name != "__init__.py" and path.parent != demo and path.name not in layout]
    missing += [f"{folder.name}/" for folder in sorted((ROOT / PACKAGE).iterdir())
                if folder.is_dir() and (folder / "__init__.py").is_file() and f"{folder.name}/" not in layout]
    assert not missing, f"README.md's Layout section does not name: {', '.join(missing)}"
