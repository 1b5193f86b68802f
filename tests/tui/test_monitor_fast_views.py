"""The monitor's fast paths: the event decoder, the Line API views (mouse and keys), bounded widgets."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from fakes import make_run, wait_for

from engine.events import EVENT_TYPES, EVENTS_FILE, decode_event, read_events
from gtl_tui.app import MonitorApp
from gtl_tui.screens.help import HelpScreen
from gtl_tui.sources import read_log
from gtl_tui.widgets.keybar import KeyBar
from gtl_tui.widgets.lineage import LineageTree
from gtl_tui.widgets.population import PopulationTable
from gtl_tui.widgets.tabbar import TabBar
from gtl_tui.widgets.vtable import Column, VirtualTable

SIZE = (120, 40)




def built(d: dict) -> object:
    """The event the dataclass ``__init__`` builds from a JSON object (what decode_event must equal)."""
    cls = EVENT_TYPES[d["kind"]]
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


def test_the_decoder_equals_the_dataclass_init(tmp_path: Path):
    make_run(tmp_path, population=4, generations=2)
    expected, _ = read_events(tmp_path / EVENTS_FILE)
    fast, _ = read_log(tmp_path / EVENTS_FILE)
    assert fast == expected and [type(e) for e in fast] == [type(e) for e in expected]
    assert len({e.kind for e in fast}) >= 8
    assert all(e == built(e.to_dict()) for e in fast)
    d = expected[1].to_dict()
    assert decode_event({**d, "new_field": 1}) == built(d)  # unknown fields are ignored
    assert decode_event({**d, "kind": "no_such_kind"}) is None
    assert decode_event({**d, "kind": ["not", "a", "str"]}) is None
    missing = {k: v for k, v in d.items() if k != "generation"}
    assert decode_event(missing) is None
    defaults = decode_event({"kind": "run_finished", "status": "completed"})
    assert defaults == built({"kind": "run_finished", "status": "completed"})
    assert defaults.best_id is None and defaults.seq == -1


def header_x(table: VirtualTable, column: str) -> int:
    x = 0
    for col in table.columns:
        if col.key == column:
            return x + 1
        x += col.width + 2
    raise KeyError(column)


async def test_mouse_on_the_population_table_sorts_and_selects(tmp_path: Path):
    make_run(tmp_path, population=6, generations=2)
    app = MonitorApp(tmp_path, refresh_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.pause()
        table = app.query_one(PopulationTable)
        await pilot.click(PopulationTable, offset=(header_x(table, "fitness"), 0))
        await pilot.pause()
        fits = [app.state.individuals[i].fitness for i in table.keys]
        assert table.sort_column == "fitness" and fits == sorted(fits, reverse=True)
        await pilot.click(PopulationTable, offset=(header_x(table, "fitness"), 0))
        await pilot.pause()
        assert [app.state.individuals[i].fitness for i in table.keys] == sorted(fits)
        target = table.keys[4]
        await pilot.click(PopulationTable, offset=(2, 1 + 4))  # the fifth row (the header is line 0)
        await wait_for(pilot, lambda: app.run_screen.selected == target)
        assert table.cursor_key == target
        await pilot.press("up")
        await wait_for(pilot, lambda: app.run_screen.selected == table.keys[3])


async def test_lineage_folds_and_the_key_bar_is_clickable(tmp_path: Path):
    make_run(tmp_path, population=6, generations=4)
    app = MonitorApp(tmp_path, refresh_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.pause()
        tree = app.query_one(LineageTree)
        tree.focus()
        shown = len(tree._lines)
        assert shown > 3 and tree._lines[tree.cursor_line][1].data == app.run_screen.selection()
        await pilot.press("home", "enter")  # fold the root: only the title is left
        await pilot.pause()
        assert len(tree._lines) == 1
        await pilot.press("enter")
        await pilot.pause()
        assert len(tree._lines) == shown
        bar = app.query_one(KeyBar)
        start = next(s for s, _, key in bar._spans if key == "question_mark")
        await pilot.click(KeyBar, offset=(start + 1, 0))
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))


async def test_mutation_history_is_whole_and_widgets_do_not_grow_with_the_run(tmp_path: Path):
    counts = []
    for population, generations in ((4, 2), (40, 6)):
        run = tmp_path / f"p{population}"
        run.mkdir()
        make_run(run, population=population, generations=generations)
        app = MonitorApp(run, refresh_interval=0.05)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("4")
            await pilot.pause()
            table = app.query_one("#mutation-table", VirtualTable)
            assert table.row_count == len(app.state.mutations)
            table.focus()
            await pilot.press("pagedown")
            await pilot.pause()
            assert table.cursor_row == min(table.row_count - 1, table.scrollable_content_region.height - 1)
            for key in "123456":
                await pilot.press(key)
            await pilot.pause()
            counts.append(len(list(app.query("*"))))
    assert counts[0] == counts[1]


async def test_a_tab_key_focuses_its_view_and_hidden_views_are_prepared_after_a_pause(tmp_path: Path):
    """Each tab's view takes the keys when shown; after the selection moves and the keys stop, the hidden
    lineage, mutation and learngene views are rebuilt for it before they are opened (not on the key)."""
    make_run(tmp_path, population=6, generations=4)
    app = MonitorApp(tmp_path, refresh_interval=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        for key, view in (("2", app.run_screen.population_table), ("3", app.run_screen.lineage_tree), ("6", app.run_screen.feed),
                          ("4", app.query_one("#mutation-table", VirtualTable)), ("2", app.run_screen.population_table)):
            await pilot.press(key)
            await pilot.pause()
            assert app.focused is view, key
        await pilot.press("down")  # arrows now move the selection: no click on the table needed
        await wait_for(pilot, lambda: app.run_screen.selected is not None and app.run_screen.selected != app.state.best().id)
        await wait_for(pilot, lambda: not {"lineage", "mutations", "learngene"} & app.run_screen._stale, timeout=3)
        assert app.run_screen.lineage_tree.individual == app.run_screen.selected
        assert app.run_screen.learngene_view.individual == app.run_screen.selected
        await pilot.press("3")
        await pilot.pause()
        assert f"lineage of #{app.run_screen.selected}" in str(app.run_screen.lineage_tree.root.label)


async def test_no_row_looks_selected_when_the_selection_is_not_in_the_table(tmp_path: Path):
    """The default selection is the run's elite; when it is from an older generation than the table shows, no row
    is highlighted (the first row used to be, while the other views showed the elite); the first arrow key
    highlights and selects the row under the hidden cursor."""
    make_run(tmp_path, population=8, generations=6, live_evaluated=3)
    app = MonitorApp(tmp_path, refresh_interval=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        table = app.run_screen.population_table
        elite = app.run_screen.selection()
        assert elite is not None and table.get_row_index(elite) is None  # an older generation's individual
        await pilot.press("2")
        await pilot.pause()
        assert not table.cursor_shown and table.selected_id() is None
        first = table.keys[0]
        await pilot.press("down")
        await wait_for(pilot, lambda: app.run_screen.selected == first)
        assert table.cursor_shown and table.selected_id() == first
        await pilot.press("b")  # the best of the current generation (followed): its row
        await pilot.pause()
        best = app.state.best_of(app.state.current_generation)
        assert app.run_screen.selected is None and app.run_screen.selection() == best.id and table.selected_id() == best.id


async def test_full_garbage_collections_wait_for_a_pause_in_the_input(tmp_path: Path):
    """Python's own full collections (0.1 s and more, at any moment) are off while the monitor runs; the monitor
    runs them itself, only when no key or click came in the last second, and restores the setting at exit."""
    import gc

    before = gc.get_threshold()
    make_run(tmp_path, population=6, generations=4)
    app = MonitorApp(tmp_path, refresh_interval=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert gc.get_threshold()[:2] == before[:2] and gc.get_threshold()[2] >= 1_000_000
        await pilot.press("2")
        assert not app.collect_when_idle()  # a key just came
        app._last_input -= 2.0
        assert app.collect_when_idle()
    assert gc.get_threshold() == before


def test_the_monitor_bench_measures_every_key_to_the_terminal(monkeypatch, capsys):
    """`python -m gtl_tui.bench_monitor` on a small log: every key and tick is timed, and the timing includes the
    screen updates converted to escape sequences (the hook that adds that step back to headless Textual)."""
    import sys

    from textual._compositor import CompositorUpdate

    from gtl_tui import bench_monitor

    converted = []

    def counting(render):
        def render_segments(self, console):
            converted.append(type(self).__name__)
            return render(self, console)
        return render_segments

    for cls in CompositorUpdate.__subclasses__():  # the full and the partial updates
        monkeypatch.setattr(cls, "render_segments", counting(cls.render_segments))
    monkeypatch.setattr(sys, "argv", ["bench_monitor", "--events", "3000", "--population", "50", "--rounds", "1",
                                      "--gap", "0", "--skip-tiny"])
    bench_monitor.main()
    out = capsys.readouterr().out
    for name in ("attach+draw", "key 3 (lineage tab)", "key 6 (events tab)", "live tick, population",
                 "slowest key to screen"):
        assert name in out, name
    assert len(converted) > 15  # at least one update per key went through the terminal conversion


async def test_a_changed_row_is_drawn_anew_in_both_looks_of_the_table():
    """The table keeps drawn rows per look (focused, blurred); a row whose cells change is dropped from both."""
    from textual.app import App

    cells = {k: (f"row {k}", "old") for k in range(5)}

    class One(App[None]):
        def compose(self):
            yield VirtualTable([Column("a", "a", 8), Column("b", "b", 8)], id="t")

    app = One()
    async with app.run_test(size=(40, 10)) as pilot:
        table = app.query_one(VirtualTable)
        table.set_rows(list(cells), lambda k: cells[k])
        table.focus()
        await pilot.pause()
        assert "old" in table.render_line(3).text  # drawn in the focused look
        table.blur()
        await pilot.pause()
        assert "old" in table.render_line(3).text  # and in the blurred one
        cells[2] = ("row 2", "new")
        table.update_rows([2])
        table.focus()
        await pilot.pause()
        assert "new" in table.render_line(3).text
        table.blur()
        await pilot.pause()
        assert "new" in table.render_line(3).text and "old" in table.render_line(2).text


async def test_the_mutation_history_follows_the_selection_only_under_the_lineage_filter(tmp_path: Path):
    """Without the lineage filter another selection shows the same rows (kept, not rebuilt); with it, the rows
    are the new individual's lineage."""
    make_run(tmp_path, population=6, generations=4)
    app = MonitorApp(tmp_path, refresh_interval=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        history, table = app.run_screen.mutation_history, app.query_one("#mutation-table", VirtualTable)
        history.show(app.state, app.run_screen.selection())
        all_rows = list(table.keys)
        others = [i for i in app.state.by_generation[3] if i != app.run_screen.selection()]
        history.show(app.state, others[0])
        assert table.keys == all_rows
        app.query_one("#filter-lineage").value = True
        await pilot.pause()
        rows = {}
        for i in others[:3]:
            history.show(app.state, i)
            lineage = set(app.state.lineage(i))
            rows[i] = list(table.keys)
            assert {app.state.mutations[k].individual for k in rows[i]} <= lineage
            assert len(rows[i]) == sum(m.individual in lineage for m in app.state.mutations)
        assert len({tuple(r) for r in rows.values()}) > 1


async def test_the_tab_bar_shows_each_key_and_a_click_switches_the_view(tmp_path: Path):
    """One widget draws the tab names with their number keys; a click on a name shows that view and focuses it;
    the overview takes no keys, so nothing has focus there (a hidden view must not keep the arrow keys)."""
    make_run(tmp_path, population=6, generations=4)
    app = MonitorApp(tmp_path, refresh_interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        bar = app.run_screen.tab_bar
        names = bar.render().plain.splitlines()[0]
        assert "1 Overview" in names and "3 Lineage" in names and "6 Events" in names
        start = next(s for s, _, tab in bar._spans if tab == "lineage")
        await pilot.click(TabBar, offset=(start + 2, 0))
        await wait_for(pilot, lambda: app.run_screen.active_tab == "lineage")
        assert bar.active == "lineage" and app.focused is app.run_screen.lineage_tree
        await pilot.press("2")
        await pilot.pause()
        assert app.focused is app.run_screen.population_table
        await pilot.press("1")
        await pilot.pause()
        assert app.run_screen.active_tab == "overview" and app.focused is None


async def test_the_lineage_keeps_its_drawn_lines_when_focus_comes_and_goes(tmp_path: Path):
    """Focus changes only the cursor line of the lineage, and restyles nothing: the other lines drawn before
    (also while its tab was hidden) are not drawn again when the tab is shown and focused."""
    make_run(tmp_path, population=6, generations=4)
    app = MonitorApp(tmp_path, refresh_interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.pause()
        tree = app.run_screen.lineage_tree
        assert app.focused is tree
        for y in range(len(tree._lines)):
            tree.render_line(y)
        drawn = {k: tree._strips.get(k) for k in tree._strips.keys()}
        assert (tree.cursor_line, 1) in drawn and any(kind == 0 for _, kind in drawn)  # 1: the focused cursor
        await pilot.press("1")  # blurred and hidden
        await pilot.pause()
        tree.render_line(tree.cursor_line)
        assert all(tree._strips.get(k) is v for k, v in drawn.items())  # the very same strips
        blurred = tree._strips.get((tree.cursor_line, 2))  # the cursor line in its blurred look
        assert blurred is not None and blurred.text == drawn[(tree.cursor_line, 1)].text
        styles = set(tree._line_styles()[1:])
        assert len(styles) == 2  # and the two looks differ


async def test_a_hidden_lineage_is_scrolled_and_drawn_ahead_for_the_new_selection(tmp_path: Path):
    """After the selection moves and the keys stop, the hidden lineage is scrolled to the new individual (at the
    size it had when last shown) and its lines are drawn, so showing it scrolls nothing and draws at most the
    cursor line (in its focused look)."""
    make_run(tmp_path, population=4, generations=25)
    app = MonitorApp(tmp_path, refresh_interval=3600)
    async with app.run_test(size=(100, 16)) as pilot:
        tree = app.run_screen.lineage_tree
        await pilot.press("3")  # shown once: its size is known
        await pilot.pause()
        await pilot.press("2", "end")  # another individual, from the population table
        await wait_for(pilot, lambda: app.run_screen.selected is not None and "lineage" not in app.run_screen._stale, timeout=3)
        assert tree.individual == app.run_screen.selected and tree.size.height == 0  # rebuilt while hidden
        top = round(tree.scroll_y)
        assert top > 0 and top <= tree.cursor_line < top + tree._height_when_shown()
        drawn = set(tree._strips.keys())
        assert {(i, tree.line_kind(i)) for i in range(top, top + tree._height_when_shown())} <= drawn
        await pilot.press("3")
        await pilot.pause()
        assert round(tree.scroll_y) == top
        assert len(set(tree._strips.keys()) - drawn) <= 1


async def test_switching_tabs_restyles_none_of_the_views(tmp_path: Path, monkeypatch):
    """The views that take a tab's keys gain and lose focus on every switch without being restyled (Textual would
    apply the stylesheet again to each, its scrollbars and descendants: 10-20 ms a switch); the table keeps the
    rows it drew."""
    make_run(tmp_path, population=6, generations=4)
    app = MonitorApp(tmp_path, refresh_interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await pilot.pause()
        table = app.run_screen.population_table
        drawn = {k: table._lines.get(k) for k in table._lines.keys() if k[1] in (0, 1)}  # rows off the cursor
        assert drawn
        restyled = []
        update_styles = app.update_styles
        monkeypatch.setattr(app, "update_styles", lambda node, animate=True: (restyled.append(node),
                                                                              update_styles(node, animate)))
        for key in "36542":
            await pilot.press(key)
            await pilot.pause()
            assert app.focused is app.run_screen.tab_views[app.run_screen.active_tab], key
        views = {v for v in app.run_screen.tab_views.values() if v is not None}
        assert not views & set(restyled)
        assert all(table._lines.get(k) is v for k, v in drawn.items())
