"""The Runs screen: a folder of scripted runs and sweeps; sort, filter, mark, compare, open; snapshots; a bench.

Snapshots: review the SVG diff report before updating. The runs are scripted (fixed clock, fixed seeds), the folder
is given as a relative path, so the screens are deterministic.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gtl_tui.experiments.bench_runs import make_folder
from gtl_tui.screens.runs import CompareScreen, RunsApp, RunsScreen


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_folder(tmp_path / "runs", 10)  # four sweeps of two runs, two loose runs; every other one evaluated
    monkeypatch.chdir(tmp_path)
    return Path("runs")


async def test_rows_sort_filter(folder: Path) -> None:
    app = RunsApp(folder)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        table = screen.table
        assert len(table.order) == 10 and table.order[0] == "run-000"
        row = table.rows_by_name["sweep0/00-ways5-seed0"]
        assert row.sweep == "sweep0" and row.state == "finished" and row.progress() == "6/6"
        assert row.headline is not None and row.overrides == {"lifetime.lr": 0.05, "task.ways": 5}
        await pilot.press("s", "s", "s")  # from name: state, progress, best
        assert table.sort_by == "best"
        bests = [table.rows_by_name[n].best for n in table.order]
        assert bests == sorted(bests)
        await pilot.press("r")
        assert [table.rows_by_name[n].best for n in table.order] == sorted(bests, reverse=True)
        await pilot.press("slash", *"sweep1")
        assert table.filter_text == "sweep1" and len(table.order) == 2
        assert all(n.startswith("sweep1/") for n in table.order)
        await pilot.press("enter")  # keeps the filter, back to the table
        assert table.has_focus and len(table.order) == 2
        await pilot.press("escape")
        assert table.filter_text == "" and len(table.order) == 10


async def test_mark_compare_and_back(folder: Path) -> None:
    app = RunsApp(folder)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.table
        await pilot.press("space", "down", "space")
        assert table.marked == {"run-000", "run-001"}
        await pilot.press("c")
        assert isinstance(app.screen, CompareScreen)
        compare = app.screen
        assert len(compare.rows) == 2 and len(compare.curves) == 2  # the two runs differ in task.ways
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("space", "down")  # unmark run-001; on to sweep0's first run
        await pilot.press("a")
        assert table.marked == {"run-000", "sweep0/00-ways5-seed0", "sweep0/01-ways10-seed0"}
        await pilot.press("a")  # all of sweep0 marked already: unmarks it
        assert table.marked == {"run-000"}


async def test_compare_of_a_sweep_without_marks_and_enter_opens(folder: Path) -> None:
    app = RunsApp(folder)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("down", "down", "c")  # no mark: the cursor's sweep
        assert isinstance(app.screen, CompareScreen)
        assert {r.sweep for r in app.screen.rows} == {"sweep0"} and len(app.screen.rows) == 2
        await pilot.press("escape", "enter")
    assert app.return_value is not None and app.return_value.name == "sweep0/00-ways5-seed0"


def test_runs_screen_120x40(snap_compare, folder: Path) -> None:
    assert snap_compare(RunsApp(folder), press=["down", "space", "_"], terminal_size=(120, 40))


def test_runs_screen_80x24(snap_compare, folder: Path) -> None:
    assert snap_compare(RunsApp(folder), press=["_"], terminal_size=(80, 24))


def test_compare_screen_120x40(snap_compare, folder: Path) -> None:
    assert snap_compare(RunsApp(folder), press=["down", "down", "c", "_"], terminal_size=(120, 40))


@pytest.mark.slow
async def test_two_hundred_runs_open_quickly(tmp_path: Path) -> None:
    """The bench's folder (python -m gtl_tui.experiments.bench_runs gives the numbers); a loose bound here, as
    CI machines are shared."""
    folder = make_folder(tmp_path / "runs", 200)
    t = time.perf_counter()
    app = RunsApp(folder)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        opened = time.perf_counter() - t
        assert len(app.screen.table.order) == 200
        t = time.perf_counter()
        await pilot.press("s")
        key = time.perf_counter() - t
    assert opened < 10.0 and key < 2.0, (opened, key)  # pathologies only: the bench measures (1 s, 100 ms)


def test_attach_on_a_folder_of_runs_opens_the_runs_screen(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import gtl_tui.screens.runs as runs_screen
    from gtl_tui.cli import app

    calls: list[Path] = []
    monkeypatch.setattr(runs_screen, "open_runs", calls.append)
    for target in (folder, folder / "sweep0"):
        result = CliRunner().invoke(app, ["attach", str(target)])
        assert result.exit_code == 0, result.output
    assert calls == [folder, folder / "sweep0"]


async def test_a_run_opened_from_the_runs_screen_goes_back_with_escape(folder: Path) -> None:
    from gtl_tui.screens.runs import monitor_from_runs
    from gtl_tui.widgets.keybar import KeyBar

    app = monitor_from_runs(next(p for p in sorted(folder.rglob("events.jsonl"))).parent)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert str(app.query_one(KeyBar).render()).rstrip().split("▏")[0].rstrip().endswith("Runs")
        assert any(key == "esc" and "Back to the runs" in what for key, what, _ in app.run_screen.key_help())
        await pilot.press("escape")
        await pilot.pause()
    assert not app.is_running
