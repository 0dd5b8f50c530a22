"""Imports run one way, bottom to top (docs/architecture.md): a new upward import fails here.

Every ``import`` of every module counts, including those inside functions (a lazy import is
still a dependency). A module may import its own layer and the layers below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "simulator"

LAYERS = [
    # 0 — foundations with no simulation code
    {"simulator.errors", "simulator.settings", "simulator.units", "simulator.hashing", "simulator.files", "simulator.terminal", "simulator.random_streams",
     "simulator.registry", "simulator.analytic", "simulator.distributions"},
    {"simulator.formats"},  # 1 — file formats: profile bundles, sample columns, fitted models
    {"simulator.scenario"},  # 2 — every spec, pure pydantic
    {"simulator.workload", "simulator.service"},  # 3 — arrivals and keys; service-time models
    {"simulator.model", "simulator.fastpath"},  # 4 — the SimPy model, and the compiled fast engine for the cases it serves
    {"simulator.metrics"},  # 5 — reduction, intervals, verdicts, time series
    {"simulator.runner"},  # 6 — plan a run, replications, executors, files
    {"simulator.fitting", "simulator.analysis", "simulator.planning", "simulator.report", "simulator.testbed",
     "simulator.profiling"},  # 7 — the jobs users come for, on the runner's API
    {"simulator.cli", "simulator.__main__", "simulator"},  # 8 — the command line and the lazy public API
]

SIDEWAYS_FORBIDDEN = [  # (importer, imported) within one layer: the report renders plain data, whatever produced it
    ("simulator.report", "simulator.testbed"),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int | None:
    """The layer of a ``simulator`` module: its longest matching prefix in ``LAYERS``."""
    best, depth = None, -1
    for index, members in enumerate(LAYERS):
        for prefix in members:
            if (module == prefix or module.startswith(prefix + ".")) and prefix.count(".") > depth:
                best, depth = index, prefix.count(".")
    return best


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported simulator module) for every import statement of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("simulator")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            if name.startswith("simulator"):
                found.append((node.lineno, name))
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    unplaced = [_module_name(path) for path in MODULES if _layer(_module_name(path)) is None]
    assert not unplaced, f"add these modules to a layer in tests/test_layers.py and docs/architecture.md: {unplaced}"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: _module_name(path))
def test_imports_run_downward(path):
    module = _module_name(path)
    own = _layer(module)
    upward = [
        f"line {line}: {imported} (layer {_layer(imported)})"
        for line, imported in _imports(path, module)
        if _layer(imported) is not None and _layer(imported) > own
    ]
    assert not upward, f"{module} (layer {own}) imports upward: {upward}"


def _sideways(module: str, imported: list[tuple[int, str]]) -> list[str]:
    """The imports of ``module`` that ``SIDEWAYS_FORBIDDEN`` rules out."""
    return [
        f"line {line}: {name}"
        for line, name in imported
        for importer, forbidden in SIDEWAYS_FORBIDDEN
        if (module == importer or module.startswith(importer + ".")) and (name == forbidden or name.startswith(forbidden + "."))
    ]


@pytest.mark.parametrize("path", MODULES, ids=lambda path: _module_name(path))
def test_no_forbidden_sideways_import(path):
    module = _module_name(path)
    assert not _sideways(module, _imports(path, module)), f"{module} imports what it must not: {_sideways(module, _imports(path, module))}"


def test_the_check_catches_the_report_importing_the_testbed(tmp_path):
    source = tmp_path / "testbed.py"
    source.write_text("def f():\n    from simulator.testbed.compare import PROFILE\n", encoding="utf-8")
    module = _module_name(PACKAGE / "report" / "testbed.py")
    assert _sideways(module, _imports(source, module)) == ["line 2: simulator.testbed.compare"]


def test_the_check_catches_an_upward_import(tmp_path):
    """The rule is live: a model module importing the runner is flagged."""
    fake = PACKAGE / "model" / "node.py"
    source = tmp_path / "node.py"
    source.write_text("from simulator.runner.api import run\n", encoding="utf-8")
    imports = _imports(source, _module_name(fake))
    assert [(_layer(name), name) for _, name in imports] == [(6, "simulator.runner.api")]
    assert _layer(_module_name(fake)) == 4
