"""The package layout holds: each package imports only the layers below it (the README's
"Layout" table), nothing imports the CLI package, and no two packages import each other.

Imports are read from the source (every ``import`` and ``from ... import``, at module level or
inside a function), so an import hidden in a function to dodge a cycle is caught too.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

ALLOWED: dict[str, frozenset[str]] = {
    "config": frozenset(),
    "trading": frozenset(),
    "observability": frozenset({"config", "trading"}),
    "ledger": frozenset({"trading", "config", "observability"}),
    "bus": frozenset({"trading", "config"}),
    "brokers": frozenset({"trading", "config"}),
    "paper": frozenset({"trading", "config"}),
    "activities": frozenset({"trading", "ledger", "bus", "brokers", "config", "observability"}),
    "workflows": frozenset({"trading", "activities", "config"}),
    "temporal": frozenset(
        {"workflows", "activities", "trading", "ledger", "bus", "brokers", "config", "observability"}
    ),
    "hotpath": frozenset({"trading", "brokers", "ledger", "bus", "observability", "config"}),
    "api": frozenset({"trading", "ledger", "bus", "observability", "config"}),
    "brain": frozenset({"trading", "ledger", "bus", "observability", "config"}),
    "floor": frozenset(
        {
            "config",
            "trading",
            "observability",
            "ledger",
            "bus",
            "brokers",
            "paper",
            "activities",
            "workflows",
            "temporal",
            "hotpath",
            "api",
            "brain",
        }
    ),
}
"""Which of the project's packages each package may import. ``bench/`` and ``tests/`` may import
everything and are not listed."""


PROJECT = frozenset(ALLOWED) | {"bench", "tests"}
"""Every top-level package of the tree: a runtime package importing ``bench`` or ``tests`` is
caught like any other import outside its row."""

_DYNAMIC_IMPORTS = frozenset({"import_module", "__import__"})


def _imported_names(node: ast.AST) -> list[str]:
    """The modules one node imports: ``import``, absolute ``from ... import``, and
    ``importlib.import_module("...")`` / ``__import__("...")`` with a literal name."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        return [node.module] if node.level == 0 and node.module else []
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in _DYNAMIC_IMPORTS and isinstance(node.args[0].value, str):
            return [node.args[0].value]
    return []


def imported_packages(package: str) -> dict[str, set[str]]:
    """The project's packages ``package`` imports, each with the files that import it."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            for name in _imported_names(node):
                top = name.split(".")[0]
                if top in PROJECT and top != package:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_package_of_the_project_is_in_the_layout() -> None:
    # Any top-level folder holding Python code, with or without an __init__.py.
    folders = [d for d in ROOT.iterdir() if d.is_dir() and not d.name.startswith(".")]
    packages = {d.name for d in folders if next(d.rglob("*.py"), None)} - {"bench", "tests", "var"}
    assert packages == set(ALLOWED), "add the new package to ALLOWED and to the README's Layout table"


def test_dynamic_imports_are_read_too() -> None:
    tree = ast.parse("import importlib\nimportlib.import_module('floor.cli')\n__import__('bench.hotpath')")
    names = [name for node in ast.walk(tree) for name in _imported_names(node)]
    assert names == ["importlib", "floor.cli", "bench.hotpath"]


def test_the_layout_itself_has_no_cycle() -> None:
    try:
        list(TopologicalSorter(ALLOWED).static_order())
    except CycleError as exc:  # pragma: no cover - only when ALLOWED is edited wrongly
        pytest.fail(f"the layout allows a cycle: {exc.args[1]}")


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_the_layers_below_it(package: str) -> None:
    wrong = {dep: files for dep, files in imported_packages(package).items() if dep not in ALLOWED[package]}
    assert not wrong, f"{package}/ imports {sorted(wrong)} (from {sorted(set().union(*wrong.values()))})"


def test_nothing_but_bench_and_tests_imports_the_cli_package() -> None:
    importers = sorted(p for p in ALLOWED if p != "floor" and "floor" in imported_packages(p))
    assert importers == []


def test_no_two_packages_import_each_other() -> None:
    graph = {p: set(imported_packages(p)) for p in ALLOWED}
    try:
        list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"import cycle between packages: {' -> '.join(exc.args[1])}")
