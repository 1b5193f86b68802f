"""Layering: the contracts in pyproject.toml hold (import-linter), no two modules import each other in a cycle,
every engine module imports without the UI, and the CLI imports no torch so ``--help`` is instant."""

from __future__ import annotations

import importlib
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def modules(package: str) -> list[str]:
    pkg = importlib.import_module(package)
    return [package] + [m.name for m in pkgutil.walk_packages(pkg.__path__, f"{package}.")]



def test_import_contracts_hold():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(lint).exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    r = subprocess.run([lint], cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_no_import_cycle_between_modules():
    grimp = pytest.importorskip("grimp")  # comes with import-linter
    graph = grimp.build_graph("engine", "gtl_tui")
    # Tarjan's strongly connected components over module-to-module imports (lazy ones included)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        index[m] = low[m] = len(index)
        stack.append(m)
        on_stack.add(m)
        for n in graph.find_modules_directly_imported_by(m):
            if n not in index:
                visit(n)
                low[m] = min(low[m], low[n])
            elif n in on_stack:
                low[m] = min(low[m], index[n])
        if low[m] == index[m]:
            comp = []
            while True:
                n = stack.pop()
                on_stack.discard(n)
                comp.append(n)
                if n == m:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for m in sorted(graph.modules):
        if m not in index:
            visit(m)
    assert not cycles, cycles


def test_no_engine_module_imports_the_ui():
    """Every engine module, found by walking the package, imported in one fresh process."""
    names = modules("engine")
    assert "engine.run.daemon" in names and "engine.trainers.population.trainer" in names
    code = (f"import importlib, sys\nfor m in {names!r}: importlib.import_module(m)\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'typer', 'gtl_tui')]\n"
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_no_monitor_module_imports_torch():
    """Every gtl_tui module, imported in one fresh process (the commands that need the engine import it as they
    run)."""
    names = modules("gtl_tui")
    code = (f"import importlib, sys\nfor m in {names!r}: importlib.import_module(m)\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_cli_import_is_light():
    code = "import sys, gtl_tui.cli; assert 'torch' not in sys.modules, 'torch imported by gtl_tui.cli'"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_monitor_import_is_light():
    """The monitor (and its offline export, which asks the CLI in another process) never imports torch."""
    code = ("import sys, gtl_tui.app, gtl_tui.offline_export, gtl_tui.widgets.generation_picker; "
            "assert 'torch' not in sys.modules, 'torch imported by the monitor'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
