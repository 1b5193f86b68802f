"""Snapshots of the monitor's main views at 120x40 and 80x24 (review the SVG diff report before updating).

The scripted run is deterministic and the clock is fixed, so the screens are too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import make_run

from engine.events import EVENTS_FILE, read_events
from gtl_tui.app import MonitorApp

VIEWS = {"overview": "1", "population": "2", "lineage": "3", "mutations": "4", "learngene": "5", "events": "6"}


def live_app(run_dir: Path) -> MonitorApp:
    make_run(run_dir, population=8, generations=6, live_evaluated=3)
    last = read_events(run_dir / EVENTS_FILE)[0][-1].t
    return MonitorApp(run_dir, clock=lambda: last + 2.0)


@pytest.mark.parametrize("view", list(VIEWS))
def test_views_120x40(snap_compare, tmp_path: Path, view: str):
    assert snap_compare(live_app(tmp_path), press=[VIEWS[view], "_"], terminal_size=(120, 40))


@pytest.mark.parametrize("view", ["overview", "population", "lineage", "learngene"])
def test_views_80x24(snap_compare, tmp_path: Path, view: str):
    assert snap_compare(live_app(tmp_path), press=[VIEWS[view], "_"], terminal_size=(80, 24))


def test_finished_run_80x24(snap_compare, tmp_path: Path):
    make_run(tmp_path, population=6, generations=4)
    assert snap_compare(MonitorApp(tmp_path), press=["_"], terminal_size=(80, 24))


def test_help_screen(snap_compare, tmp_path: Path):
    assert snap_compare(live_app(tmp_path), press=["question_mark", "_"], terminal_size=(120, 40))
