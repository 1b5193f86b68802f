"""Shared pieces of the fault tests: a tiny config and a finished tiny run to damage copies of."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fault_helpers import TINY


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    from engine.config import load_config
    from engine.run.runner import create_run_dir, run_in_dir

    run_dir = create_run_dir(load_config(None, TINY), tmp_path_factory.mktemp("ref"), "ref")
    assert run_in_dir(run_dir).status == "completed"
    return run_dir


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    """A copy of the finished tiny run, free to damage."""
    dst = tmp_path / "copy"
    shutil.copytree(finished_run, dst)
    return dst
