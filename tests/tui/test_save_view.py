"""`x` writes the view on screen: its data as CSV (what the view shows) and the screen as SVG, in RUN/views/."""

from __future__ import annotations

import csv
import io

from fakes import make_run

from gtl_tui.app import MonitorApp


def _rows(path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


async def test_x_saves_each_tab_as_csv_and_svg(tmp_path):
    run = make_run(tmp_path / "r", population=4, generations=3)
    app = MonitorApp(run, refresh_interval=0.05)
    notes: list[str] = []
    async with app.run_test(size=(120, 40)) as pilot:
        original = app.notify
        app.notify = lambda message, **kw: (notes.append(str(message)), original(message, **kw))[1]
        await pilot.pause(0.3)
        saved = {}
        for key, tab in (("1", "overview"), ("2", "population"), ("3", "lineage"), ("4", "mutations"),
                         ("5", "learngene"), ("6", "events")):
            await pilot.press(key)
            await pilot.pause(0.2)
            before = set((run / "views").glob("*.csv")) if (run / "views").exists() else set()
            await pilot.press("x")
            await pilot.pause(0.2)
            new = set((run / "views").glob(f"{tab}-*.csv")) - before
            assert len(new) == 1, tab
            saved[tab] = new.pop()
            assert saved[tab].with_suffix(".svg").read_text().startswith("<svg")
            assert str(saved[tab]) in notes[-1]
        state = app.state
        overview = _rows(saved["overview"])
        assert [int(r["generation"]) for r in overview] == sorted(state.stats)
        assert float(overview[-1]["best"]) == state.stats[max(state.stats)].best
        population = _rows(saved["population"])
        assert {int(r["id"]) for r in population} == set(state.by_generation[app.run_screen.population_table.generation])
        lineage = _rows(saved["lineage"])
        assert [int(r["id"]) for r in lineage] == state.lineage(app.run_screen.selection())
        assert len(_rows(saved["mutations"])) == len(state.mutations)
        layers = _rows(saved["learngene"])
        assert len(layers) == len(state.individuals[app.run_screen.selection()].layer_widths)
        events = _rows(saved["events"])
        assert len(events) == app.run_screen.feed.shown and "born" in " ".join(r["event"] for r in events)
