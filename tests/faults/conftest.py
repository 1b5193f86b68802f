"""Shared pieces of the fault tests: a tiny config and a finished tiny run to damage copies of."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

TINY = [
    "evolution.population=4", "evolution.generations=3", "lifetime.steps=6", "lifetime.batch_size=16",
    "data.glyph_classes=20", "data.glyph_images_per_class=20", "model.width=0.25", "run.device='cpu'",
    "run.threads=1",
]


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    from engine.config import load_config
    from engine.runner import create_run_dir, run_in_dir

    run_dir = create_run_dir(load_config(None, TINY), tmp_path_factory.mktemp("ref"), "ref")
    assert run_in_dir(run_dir).status == "completed"
    return run_dir


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    """A copy of the finished tiny run, free to damage."""
    dst = tmp_path / "copy"
    shutil.copytree(finished_run, dst)
    return dst
