"""The monitor shows the run's few-shot evaluations (``<run dir>/evaluations/*.json``) on the Learngene tab."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import make_run, wait_for
from rich.console import Console

import gtl_tui.screens.run
from engine.rundir import EVALUATIONS_DIR as EVAL_DIR
from gtl_tui.app import MonitorApp
from gtl_tui.evaluations import EvaluationDir, run_dir_of, write_evaluation
from gtl_tui.sources import ReplaySource
from gtl_tui.widgets.evaluation import HIGHLIGHT, EvaluationView, evaluation_table, render_evaluations

SIZE = (120, 40)


def report(learngene: float = 0.453) -> dict:
    cells = {"learngene": learngene, "scratch": 0.401, "gen0": 0.427}
    results = [{"method": m, "shots": shots, "steps": steps, "mean": v + 0.01 * steps / 20 - (0.1 if shots == 1 else 0),
                "ci95": 0.018, "episodes": 100} for shots in (1, 5) for m, v in cells.items() for steps in (0, 20)]
    return {"results": results, "settings": {"ways": 5, "episodes": 100, "nongene_init": "random"}}


def text_of(view: EvaluationView) -> str:
    console = Console(width=120, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(render_evaluations(view.evaluations))
    return console.export_text()




@pytest.fixture(autouse=True)
def fast_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gtl_tui.screens.run, "EVAL_POLL_S", 0.05)


async def test_an_evaluation_dropped_into_the_run_appears_on_the_learngene_tab(tmp_path: Path):
    make_run(tmp_path, population=6, generations=3)
    app = MonitorApp(tmp_path, refresh_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await pilot.pause()
        view = app.query_one(EvaluationView)
        assert not view.display and view.evaluations == []  # nothing yet: hidden, the tab looks as before
        write_evaluation(tmp_path, "lastgen-best", report())
        await wait_for(pilot, lambda: view.display)
        await pilot.pause()
        assert view.region.height > 3  # laid out below the learngene view, not zero-sized
        text = text_of(view)
        assert "evaluation lastgen-best" in text and "5-way, 100 episodes" in text
        assert "5-shot 20 st" in text and "46.3 ± 1.8" in text  # learngene, 5 shots, 20 steps
        rows = evaluation_table(view.evaluations[0]).rows
        assert [r.style for r in rows] == [HIGHLIGHT, None, None]  # the learngene row, highlighted
        write_evaluation(tmp_path, "lastgen-best", report(learngene=0.5))  # rewritten: shown again
        await wait_for(pilot, lambda: "50.0 ± 1.8" in text_of(view))
        write_evaluation(tmp_path, "best-g0002-i18", report())
        await wait_for(pilot, lambda: len(view.evaluations) == 2)
        assert view.evaluations[0].name == "best-g0002-i18"  # newest first


async def test_on_attach_existing_evaluations_are_shown_and_a_bad_file_is_one_line(tmp_path: Path):
    make_run(tmp_path, population=4, generations=2)
    write_evaluation(tmp_path, "gen0-best", report())
    (tmp_path / EVAL_DIR / "broken.json").write_text("{not json")
    app = MonitorApp(tmp_path, event_source=ReplaySource.from_run_dir(tmp_path), refresh_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        view = app.query_one(EvaluationView)
        assert view.display and {e.name for e in view.evaluations} == {"gen0-best", "broken"}
        text = text_of(view)
        assert "evaluation broken  unreadable (JSONDecodeError)" in text and "gen0-best" in text


class RemoteLike:
    """A source that is neither local nor a replay (like ssh): there is no local run directory to read."""

    status = "connected"
    host = "gpu-box"

    def poll(self) -> list:
        return []


async def test_a_remote_source_reads_no_local_evaluations(tmp_path: Path):
    make_run(tmp_path, population=4, generations=2)
    write_evaluation(tmp_path, "lastgen-best", report())
    app = MonitorApp(tmp_path, event_source=RemoteLike(), refresh_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await pilot.pause(0.2)
        assert app.evaluation_dir is None and not app.query_one(EvaluationView).display


def test_the_folder_is_read_again_only_when_it_changes(tmp_path: Path):
    d = EvaluationDir(tmp_path)
    assert d.poll() == [] and d.poll() is None  # no folder: empty once, then unchanged
    write_evaluation(tmp_path, "a", report())
    first = d.poll()
    assert first is not None and first[0].cells["learngene"][(5, 0)] == pytest.approx((0.453, 0.018))
    assert d.poll() is None
    (tmp_path / EVAL_DIR / "b.json").write_text(json.dumps({"results": [{"method": "x"}]}))
    found = d.poll()
    assert found is not None and [e.error for e in found if e.name == "b"] == ["not an evaluation result"]


def test_run_dir_of_finds_the_run_of_an_exported_learngene(tmp_path: Path):
    make_run(tmp_path / "run", population=2, generations=1)
    (tmp_path / "run" / "learngenes").mkdir()
    assert run_dir_of(tmp_path / "run" / "learngenes" / "best-g0000-i1") == (tmp_path / "run").resolve()
    assert run_dir_of(tmp_path / "loose" / "lg.json") is None
    (tmp_path / "learngenes").mkdir()
    assert run_dir_of(tmp_path / "learngenes" / "x") is None  # a learngenes folder outside a run
