"""The project's own modules import each other without a cycle.

A cycle works only while every module in it happens to be imported in a lucky order; the
lazy imports that hide one are counted too (an import inside a function is still an edge),
only imports under ``if TYPE_CHECKING:`` are not, since they never run.
"""

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from training.algorithms.registry import algorithm_names

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("catalog", "dashboards", "recsys_site", "scenarios", "training")
SKIPPED_PARTS = {"migrations", "tests", ".venv", "__pycache__"}


def project_modules(root: Path) -> dict[str, Path]:
    """Every module of the project's packages, by dotted name (a package by its ``__init__``)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if SKIPPED_PARTS.intersection(parts):
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements at any depth, skipping the body of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for orelse in child.orelse:
                yield from _import_nodes(orelse)
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        yield from _import_nodes(child)


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _with_packages(target: str, importer: str) -> set[str]:
    """``target`` and the packages Python runs on the way to it, less the importer's own packages (already
    running when it imports): importing ``a.b.c`` from outside ``a.b`` runs ``a/b/__init__.py`` first."""
    parts = target.split(".")
    own = {".".join(importer.split(".")[:depth]) for depth in range(1, importer.count(".") + 2)}
    return {".".join(parts[:depth]) for depth in range(1, len(parts) + 1)} - own | {target}


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that ``name`` imports (``from pkg import mod`` counts as ``pkg.mod``), with the
    ``__init__`` of each package they sit in."""
    targets: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        source = _absolute(node, name, path.name == "__init__.py")
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            targets.add(submodule if submodule in modules else source)
    reached = set().union(*(_with_packages(target, name) for target in targets))
    return {target for target in reached if target in modules and target != name}


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = project_modules(root)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a closed path (first module repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_project_has_no_import_cycle():
    cycle = find_cycle(import_graph(ROOT))

    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_check_finds_a_cycle_hidden_in_a_function_and_ignores_type_checking_imports(tmp_path):
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "__init__.py").write_text("")
    (tmp_path / "training" / "a.py").write_text("def f():\n    from training.b import g\n")
    (tmp_path / "training" / "b.py").write_text("from . import a\n")
    (tmp_path / "training" / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from training.d import x\n"
    )
    (tmp_path / "training" / "d.py").write_text("import training.c\n")

    graph = import_graph(tmp_path)

    assert graph["training.c"] == set()
    assert find_cycle(graph) == ["training.a", "training.b", "training.a"]


def test_the_check_counts_the_package_init_that_an_import_runs(tmp_path):
    (tmp_path / "training" / "models").mkdir(parents=True)
    (tmp_path / "training" / "__init__.py").write_text("")
    (tmp_path / "training" / "models" / "__init__.py").write_text("from training.models import one\n")
    (tmp_path / "training" / "models" / "one.py").write_text("from training.shared import x\n")
    (tmp_path / "training" / "shared.py").write_text("from training.models.two import y\n")
    (tmp_path / "training" / "models" / "two.py").write_text("")

    graph = import_graph(tmp_path)

    assert graph["training.models"] == {"training.models.one"}  # its own package is no edge
    assert find_cycle(graph) == ["training.models", "training.models.one", "training.shared", "training.models"]


def private_imports(root: Path) -> list[str]:
    """``module: name`` for every underscored name one project module imports from another."""
    modules = project_modules(root)
    found = []
    for name, path in modules.items():
        for node in _import_nodes(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and _absolute(node, name, path.name == "__init__.py") in modules:
                found += [f"{name}: {alias.name}" for alias in node.names if alias.name.startswith("_")]
    return found


def test_no_module_imports_a_private_helper_of_another():
    assert private_imports(ROOT) == []


def test_the_check_sees_a_form_importing_a_private_service_helper(tmp_path):
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "__init__.py").write_text("")
    (tmp_path / "scenarios" / "services.py").write_text("def _cron_fields(cron): ...\n")
    (tmp_path / "scenarios" / "forms.py").write_text("from scenarios.services import _cron_fields\n")

    assert private_imports(tmp_path) == ["scenarios.forms: _cron_fields"]


@pytest.mark.parametrize(
    "module",
    [
        "training.interactions",
        "training.evaluation.ranking",
        "training.algorithms.base",
        "training.algorithms.registry",
    ],
)
def test_a_fresh_interpreter_can_import_the_algorithm_layer_starting_anywhere(module):
    # Whichever module comes first, every built-in algorithm is registered and nothing is half-initialised.
    code = f"import {module}\nfrom training.algorithms.registry import algorithm_names\nprint(*algorithm_names())"

    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == algorithm_names()
