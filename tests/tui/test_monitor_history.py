"""The monitor's history: the population table browses every generation ([ / ]), with a generation column; the
other views follow the selected individual of any generation; b is the best of the current generation, E the
elite; e exports an individual of any generation, live (through the engine) and after the run (the archive)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fakes import FakeEngine, make_run, short_dir, wait_for

from gtl_tui.app import MonitorApp
from gtl_tui.widgets.generation_picker import GenerationPicker
from gtl_tui.widgets.learngene import LearngeneView
from gtl_tui.widgets.lineage import LineageTree
from gtl_tui.widgets.population import PopulationTable
from gtl_tui.widgets.vtable import VirtualTable

SIZE = (120, 40)


def picker(app: MonitorApp) -> str:
    return app.query_one(GenerationPicker).text.plain


def toasts(app: MonitorApp) -> str:
    return "\n".join(f"{n.title} {n.message}" for n in app._notifications)


def rows_of(table: PopulationTable, app: MonitorApp) -> set[int]:
    return {app.state.individuals[k].generation for k in table.keys}


async def test_brackets_browse_every_generation_and_the_views_follow(tmp_path: Path):
    make_run(tmp_path, population=6, generations=4)
    app = MonitorApp(tmp_path, refresh_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("2")
        await pilot.pause()
        table, state = app.run_screen.population_table, app.state
        assert [c.key for c in table.columns][:2] == ["id", "gen"]
        assert table.generation == 3 and rows_of(table, app) == {3}
        assert "generation 3 (current)" in picker(app) and "of 0-3" in picker(app)
        await pilot.press("left_square_bracket")
        await pilot.pause()
        assert table.generation == 2 and rows_of(table, app) == {2} and table.row_count == 6
        assert "generation 2 (past)" in picker(app)
        best2 = state.best_of(2)
        assert best2 is not None and app.run_screen.selection() == best2.id == table.selected_id()
        # the generation column shows each row's generation
        assert table._row(table.keys[0])[1] == "2"
        # the lineage, learngene and mutation views follow the selected individual of that generation
        await pilot.press("3")
        await pilot.pause()
        assert app.query_one(LineageTree).individual == best2.id
        await pilot.press("5")
        await pilot.pause()
        assert app.query_one(LearngeneView).individual == best2.id
        await pilot.press("2")
        table.focus()
        other = next(i for i in state.by_generation[2] if i != best2.id and state.individuals[i].mutations)
        start, goal = table.cursor_row, table.get_row_index(other)
        await pilot.press(*(["down"] * (goal - start) if goal >= start else ["up"] * (start - goal)))
        await wait_for(pilot, lambda: app.run_screen.selected == other)
        await pilot.press("4")
        await pilot.pause()
        app.query_one("#filter-lineage").value = True
        await pilot.pause()
        lineage = set(state.lineage(other))
        assert app.query_one("#mutation-table", VirtualTable).row_count == sum(
            m.individual in lineage for m in state.mutations) > 0
        await pilot.press("3")
        await pilot.pause()
        assert app.query_one(LineageTree).individual == other
        # older stops at generation 0; newer back to the current one follows it again
        await pilot.press(*["left_square_bracket"] * 5)
        await pilot.pause()
        assert table.generation == 0 and rows_of(table, app) == {0}
        await pilot.press(*["right_square_bracket"] * 5)
        await pilot.pause()
        assert table.generation == 3 and table.view_generation is None and "(current)" in picker(app)


async def test_b_is_the_best_of_the_current_generation_and_E_the_elite(tmp_path: Path):
    make_run(tmp_path, population=8, generations=6, live_evaluated=3)
    app = MonitorApp(tmp_path, refresh_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("2")
        state, table = app.state, app.run_screen.population_table
        elite, now = state.best(), state.best_of(state.current_generation)
        assert elite is not None and now is not None and elite.generation < state.current_generation
        await pilot.press("E")
        await pilot.pause()
        assert app.run_screen.selection() == elite.id == table.selected_id()
        assert table.generation == elite.generation and f"generation {elite.generation} (past)" in picker(app)
        await pilot.press("b")
        await pilot.pause()
        assert app.run_screen.selection() == now.id == table.selected_id() and table.generation == state.current_generation
        assert app.run_screen.follow_current and app.run_screen.selected is None
        # the key is in the help
        assert any(key == "E" and "elite" in what for key, what, _ in app.run_screen.key_help())
        assert any(key == "[" for key, _, _ in app.run_screen.key_help()) and any(key == "]" for key, _, _ in app.run_screen.key_help())


async def test_e_exports_an_individual_of_an_older_generation_through_the_engine():
    with short_dir() as d:
        make_run(d, population=6, generations=4, live_evaluated=2)
        with FakeEngine(d) as engine:
            app = MonitorApp(d, refresh_interval=0.05)
            async with app.run_test(size=SIZE) as pilot:
                await pilot.pause()
                await pilot.press("left_square_bracket", "left_square_bracket")
                await pilot.pause()
                old = app.run_screen.selection()
                assert old is not None and app.state.individuals[old].generation == 1
                await pilot.press("e")
                await wait_for(pilot, lambda: engine.requests and engine.requests[-1].get("cmd") == "export")
                assert engine.requests[-1] == {"cmd": "export", "individual": old}
                await wait_for(pilot, lambda: f"ind{old}-g{app.state.individuals[old].generation:04d}" in toasts(app))


@pytest.fixture(scope="module")
def finished_engine_run(tmp_path_factory) -> Path:
    """A real (tiny) run of the engine, finished: its gene archive holds every generation."""
    from engine.config import load_config
    from engine.run.runner import create_run_dir, run_in_dir

    cfg = load_config(None, ["evolution.population=3", "evolution.generations=2", "lifetime.steps=2",
                             "lifetime.batch_size=8", "data.glyph_classes=20", "data.glyph_images_per_class=20",
                             "model.width=0.25", "run.device='cpu'", "run.threads=1"])
    run_dir = create_run_dir(cfg, tmp_path_factory.mktemp("runs"), "done")
    assert run_in_dir(run_dir).status == "completed"
    return run_dir


async def test_e_on_a_finished_run_exports_an_old_generation_from_the_archive(finished_engine_run: Path,
                                                                            monkeypatch: pytest.MonkeyPatch):
    root = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("PYTHONPATH", root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run_dir = finished_engine_run
    app = MonitorApp(run_dir, refresh_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.state.status == "finished"
        await pilot.press("left_square_bracket")
        await pilot.pause()
        old = app.run_screen.selection()
        assert old is not None and app.state.individuals[old].generation == 0
        target = run_dir / "learngenes" / f"ind{old}-g0000.safetensors"
        await pilot.press("e")
        await wait_for(pilot, lambda: target.is_file() and str(target) in toasts(app), timeout=60)
        assert "scp " in toasts(app) and "failed" not in toasts(app)
