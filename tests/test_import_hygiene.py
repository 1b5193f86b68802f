"""Layering: the engine never imports the UI; the CLI module stays free of torch so --help is instant."""

from __future__ import annotations

import subprocess
import sys

import pytest

ENGINE_MODULES = ["engine.config", "engine.events", "engine.runner", "engine.evolution.loop", "engine.models",
                  "engine.learngene", "engine.data", "engine.checkpoint", "engine.control_client", "engine.gene_archive"]


@pytest.mark.parametrize("module", ENGINE_MODULES)
def test_engine_does_not_import_ui(module):
    code = (f"import sys, {module}; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('textual', 'typer', 'gtl_tui')]; print(bad); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_cli_import_is_light():
    code = "import sys, gtl_tui.cli; assert 'torch' not in sys.modules, 'torch imported by gtl_tui.cli'"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_monitor_import_is_light():
    """The monitor (and its offline export, which asks the CLI in another process) never imports torch."""
    code = ("import sys, gtl_tui.app, gtl_tui.offline_export, gtl_tui.widgets.generation_picker; "
            "assert 'torch' not in sys.modules, 'torch imported by the monitor'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
