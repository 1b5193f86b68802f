"""Pilot tests of the monitor on scripted logs, with a fake engine on the control socket (no torch, no GPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import PID_FILE, FakeEngine, make_run, short_dir, wait_for
from textual.widgets import ContentSwitcher, Select

from engine.events import EVENTS_FILE, read_events
from gtl_tui.app import MonitorApp
from gtl_tui.screens.confirm import ConfirmScreen
from gtl_tui.screens.help import HelpScreen
from gtl_tui.sources import ReplaySource
from gtl_tui.widgets.feed import EventFeed
from gtl_tui.widgets.header import RunHeader
from gtl_tui.widgets.keybar import KeyBar
from gtl_tui.widgets.learngene import LearngeneView
from gtl_tui.widgets.lineage import LineageTree
from gtl_tui.widgets.population import PopulationTable
from gtl_tui.widgets.vtable import VirtualTable

SIZE = (120, 40)




def header(app: MonitorApp) -> str:
    return app.query_one(RunHeader).text.plain


def toasts(app: MonitorApp) -> str:
    return "\n".join(f"{n.title} {n.message}" for n in app._notifications)


async def test_attach_to_a_finished_run_draws_every_view(tmp_path: Path):
    make_run(tmp_path, population=6, generations=4)
    app = MonitorApp(tmp_path, refresh_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "FINISHED" in header(app) and "g3 4/4 done" in header(app) and "ind 6/6" in header(app)
        table = app.query_one(PopulationTable)
        assert table.row_count == 6
        best = app.state.best()
        assert best is not None and app.run_screen.selection() == best.id
        for tab in ("lineage", "learngene", "mutations", "events"):
            await pilot.press(str(("overview", "population", "lineage", "mutations", "learngene",
                                   "events").index(tab) + 1))
            await pilot.pause()
            assert app.query_one("#tabs", ContentSwitcher).current == tab and app.run_screen.tab_bar.active == tab
        assert app.query_one(LineageTree).individual == best.id
        assert app.query_one(LearngeneView).individual == best.id
        assert app.query_one("#mutation-table", VirtualTable).row_count == len(app.state.mutations)


async def test_the_view_follows_a_growing_log(tmp_path: Path):
    events = [*read_events_of(make_run(tmp_path / "full", population=6, generations=3))]
    live = tmp_path / "live"
    live.mkdir()
    cut = next(k for k, e in enumerate(events) if e.kind == "generation_started" and e.generation == 1)
    write_lines(live, events[:cut])
    app = MonitorApp(live, refresh_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "g0 1/3 done" in header(app) and app.state.generations_done == 1
        write_lines(live, events[cut:])
        await wait_for(pilot, lambda: "FINISHED" in header(app))
        assert app.state.generations_done == 3
        assert app.query_one(PopulationTable).generation == 2
        assert app.query_one(PopulationTable).row_count == 6
        await pilot.press("6")
        await pilot.pause()
        lines = [strip.text for strip in app.query_one(EventFeed).lines]
        assert "run completed" in lines[-1] and any("generation 1 started" in ln for ln in lines)


def read_events_of(run_dir: Path):
    return read_events(run_dir / EVENTS_FILE)[0]


def write_lines(run_dir: Path, events) -> None:
    with open(run_dir / EVENTS_FILE, "a") as f:
        f.writelines(e.to_json() + "\n" for e in events)


async def test_p_pauses_header_shows_pausing_then_paused_when_the_engine_confirms():
    with short_dir() as d:
        make_run(d, live_evaluated=2)
        with FakeEngine(d, auto_confirm_pause=False) as engine:
            app = MonitorApp(d, refresh_interval=0.05)
            async with app.run_test(size=SIZE) as pilot:
                await pilot.pause()
                assert "RUNNING" in header(app)
                await pilot.press("p")
                await wait_for(pilot, lambda: "PAUSING" in header(app))
                assert [r["cmd"] for r in engine.requests] == ["pause"]
                await pilot.pause(0.2)
                assert "PAUSING" in header(app), "no paused event yet"
                engine.confirm_pause()
                await wait_for(pilot, lambda: "PAUSED" in header(app))
                await pilot.press("p")
                await wait_for(pilot, lambda: "RUNNING" in header(app))
                assert [r["cmd"] for r in engine.requests] == ["pause", "resume"]


async def test_e_exports_the_selected_learngene_and_toasts_its_path():
    with short_dir() as d:
        make_run(d, live_evaluated=2)
        with FakeEngine(d) as engine:
            app = MonitorApp(d, refresh_interval=0.05)
            async with app.run_test(size=SIZE) as pilot:
                await pilot.pause()
                best = app.run_screen.selection()
                await pilot.press("e")
                path = d / "learngenes" / f"ind{best}-g{app.state.individuals[best].generation:04d}.safetensors"
                await wait_for(pilot, lambda: path.exists() and str(path) in toasts(app))
                assert engine.requests[-1] == {"cmd": "export", "individual": best}
                assert f":{path.resolve()} " in toasts(app) and "scp " in toasts(app)  # the real scp line
                await wait_for(pilot, lambda: any(x.reason == "request" for x in app.state.exports))
                # another row selected: that individual's learngene is exported
                app.run_screen.action_show_tab("population")
                await pilot.pause()
                table = app.query_one(PopulationTable)
                table.focus()
                other = next(i for i in app.state.by_generation[3]
                             if i != best and table.get_row_index(i) != table.cursor_row)
                table.move_cursor(row=table.get_row_index(other))
                await wait_for(pilot, lambda: app.run_screen.selection() == other)
                await pilot.press("e")
                await wait_for(pilot, lambda: (d / "learngenes" / f"ind{other}-g{app.state.individuals[other].generation:04d}.safetensors").exists())


async def test_s_asks_before_stopping():
    with short_dir() as d:
        make_run(d, live_evaluated=2)
        with FakeEngine(d) as engine:
            app = MonitorApp(d, refresh_interval=0.05)
            async with app.run_test(size=SIZE) as pilot:
                await pilot.pause()
                await pilot.press("s")
                await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
                await pilot.press("n")
                await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
                await pilot.pause(0.1)
                assert engine.requests == []
                await pilot.press("s")
                await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
                await pilot.press("y")
                await wait_for(pilot, lambda: "STOPPED" in header(app))
                assert [r["cmd"] for r in engine.requests] == ["stop"]


async def test_controls_on_a_crashed_or_unreachable_engine_notify_instead_of_failing():
    with short_dir() as d:
        make_run(d, live_evaluated=2)
        (d / PID_FILE).write_text("999999\n")  # no engine holds the lock: it died
        app = MonitorApp(d, refresh_interval=0.05)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert "CRASHED" in header(app)
            await pilot.press("p")
            await pilot.pause()
            assert "no engine to pause" in toasts(app)
        (d / PID_FILE).unlink()
        app = MonitorApp(d, refresh_interval=0.05)  # state unknown: the request is tried and fails cleanly
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("e")
            await wait_for(pilot, lambda: "no engine is listening" in toasts(app))
            assert app.is_running


async def test_selecting_a_row_drives_lineage_learngene_and_mutation_filter(tmp_path: Path):
    make_run(tmp_path, population=6, generations=4)
    app = MonitorApp(tmp_path, refresh_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("2")
        table = app.query_one(PopulationTable)
        table.focus()
        best = app.run_screen.selection()
        await pilot.press("3")
        await pilot.pause()
        tree = app.query_one(LineageTree)
        assert tree.individual == best and f"#{best}" in str(tree.root.label)
        await pilot.press("2")
        table.focus()
        target = next(i for i in app.state.by_generation[3]
                      if i != best and app.state.individuals[i].mutations)
        start = table.cursor_row
        goal = table.get_row_index(target)
        await pilot.press(*(["down"] * (goal - start) if goal >= start else ["up"] * (start - goal)))
        await wait_for(pilot, lambda: app.run_screen.selected == target)
        await pilot.press("3")
        await pilot.pause()
        assert tree.individual == target and f"lineage of #{target}" in str(tree.root.label)
        labels = [str(n.label) for n in walk(tree.root)]
        assert any(f"▶ #{target}" in lbl for lbl in labels)
        assert any(f"#{app.state.individuals[target].parent} " in lbl for lbl in labels)
        await pilot.press("5")
        await pilot.pause()
        assert app.query_one(LearngeneView).individual == target
        await pilot.press("4")
        await pilot.pause()
        app.query_one("#filter-lineage").value = True
        await pilot.pause()
        lineage = set(app.state.lineage(target))
        mtable = app.query_one("#mutation-table", VirtualTable)
        expected = [m for m in app.state.mutations if m.individual in lineage]
        assert mtable.row_count == len(expected) > 0
        app.query_one("#filter-op", Select).value = "add"
        await pilot.pause()
        assert mtable.row_count == sum(m.op == "add" for m in expected)
        await pilot.press("b")
        await pilot.pause()
        assert app.run_screen.selected is None and app.run_screen.selection() == best


def walk(node):
    yield node
    for child in node.children:
        yield from walk(child)


async def test_sorting_the_population_by_fitness(tmp_path: Path):
    make_run(tmp_path, population=6, generations=2)
    app = MonitorApp(tmp_path, refresh_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        table = app.query_one(PopulationTable)
        table.focus()
        await pilot.press("o")  # id -> fitness, descending
        await pilot.pause()
        ids = list(table.keys)
        fits = [app.state.individuals[i].fitness for i in ids]
        assert table.sort_column == "fitness" and fits == sorted(fits, reverse=True)
        await pilot.press("O")
        await pilot.pause()
        ids = list(table.keys)
        assert [app.state.individuals[i].fitness for i in ids] == sorted(fits)


async def test_help_lists_every_key(tmp_path: Path):
    make_run(tmp_path, population=3, generations=1)
    app = MonitorApp(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        keys = " ".join(k for k, _, _ in app.screen.keys)
        for key in ("p", "e", "s", "q", "?", "b", "o", "ctrl+p", "space", "+", "-", ".", ",", "1-6"):
            assert key in keys.split() or f"{key}," in keys, key
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen))


async def test_q_quits_and_leaves_the_engine_running():
    with short_dir() as d:
        make_run(d, live_evaluated=1)
        with FakeEngine(d) as engine:
            app = MonitorApp(d)
            async with app.run_test(size=SIZE) as pilot:
                await pilot.press("q")
                await pilot.pause()
            assert not app.is_running and engine.requests == []


async def test_replay_plays_steps_and_changes_speed(tmp_path: Path):
    make_run(tmp_path, population=6, generations=4)
    app = MonitorApp(tmp_path, replay=True, speed=1.0, refresh_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        src = app.source
        assert isinstance(src, ReplaySource)
        assert "REPLAY 1x" in header(app) and app.state.generations_done == 0
        await pilot.press("space")
        await pilot.pause()
        assert not src.playing and "⏸" in header(app)
        await pilot.press("full_stop")
        await pilot.pause()
        assert app.state.generations_done == 1 and app.state.current_generation == 0
        await pilot.press("full_stop", "full_stop")
        await pilot.pause()
        assert app.state.generations_done == 3
        await pilot.press("comma")
        await pilot.pause()
        assert app.state.generations_done == 2 and app.query_one(PopulationTable).generation == 1
        await pilot.press("plus", "plus")
        assert src.speed == 4.0 and "REPLAY 4x" in header(app)
        await pilot.press("minus")
        assert src.speed == 2.0
        await pilot.press("p")  # no engine in a replay: p plays/pauses
        assert src.playing
        src.set_speed(1e6)
        await wait_for(pilot, lambda: "FINISHED" in header(app) and src.done)
        # A replay cannot export or stop: its footer does not offer them, and the keys do nothing.
        keys = str(app.query_one(KeyBar).render())
        assert "Export" not in keys and "Stop" not in keys
        await pilot.press("e", "s")
        await pilot.pause()
        assert not app.screen_stack[1:]  # no stop confirmation either
        # At the end, `,` steps back to the previous generation's end, and stays there (a step pauses).
        await pilot.press("comma")
        await pilot.pause(0.3)
        assert not src.playing and app.state.generations_done == 3 and not src.done
        await pilot.press("comma")
        await pilot.pause(0.3)
        assert app.state.generations_done == 2


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_the_chart_fits_small_and_large_terminals(tmp_path: Path, size):
    make_run(tmp_path, population=6, generations=4)
    app = MonitorApp(tmp_path)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        chart = app.query_one("#chart")
        assert chart.size.width == size[0] and chart.size.height >= 8
        lines = chart.render().plain.splitlines()
        assert len(lines) == chart.size.height and max(map(len, lines)) <= size[0]
        assert lines[-1].strip().startswith("└g0") and lines[-1].rstrip().endswith("g3")
