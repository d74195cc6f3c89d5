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
        }
    ),
}
"""Which of the project's packages each package may import. ``bench/`` and ``tests/`` may import
everything and are not listed."""


def imported_packages(package: str) -> dict[str, set[str]]:
    """The project's packages ``package`` imports, each with the files that import it."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in ALLOWED and top != package:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_package_of_the_project_is_in_the_layout() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"bench", "tests"}
    assert packages == set(ALLOWED), "add the new package to ALLOWED and to the README's Layout table"


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
