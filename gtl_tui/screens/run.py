"""The run's screen: the tabs of one run, the reading of its event log and the keys that steer it.

``RunScreen`` composes the header, the tab bar, the six tabs (overview, population, lineage, mutations,
learngene, events) and the key bar. Its log is read off the UI thread: each tick starts one thread worker
(never two at once: a slow read skips ticks) that reads and decodes what is new and posts it back as one
``EventsRead`` message; the screen folds that batch into its ``RunState`` and redraws the views once per batch,
never per event, and only the visible tab's heavier views (the others are marked stale and rebuilt when their tab
is opened). A replay's log is already in memory: it is played on the UI thread, where its controls also seek it.
The screen also sends the control commands (pause, stop, export, each in a thread worker), saves a view (``x``)
and shows the keys (``?``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import ContentSwitcher
from textual.worker import Worker, WorkerState, get_current_worker

from engine.control.client import ControlError
from engine.events import Event
from gtl_tui import gc_policy
from gtl_tui.alerts import Alerts
from gtl_tui.evaluations import EvaluationDir
from gtl_tui.screens.confirm import ConfirmScreen
from gtl_tui.screens.help import HelpScreen
from gtl_tui.sources import Controller, EventSource, ReplaySource
from gtl_tui.state import Changes, RunState
from gtl_tui.widgets.chart import FitnessChart
from gtl_tui.widgets.elite import EliteView
from gtl_tui.widgets.evaluation import EvaluationView
from gtl_tui.widgets.feed import EventFeed, EventLog
from gtl_tui.widgets.generation_picker import GenerationPicker
from gtl_tui.widgets.header import RunHeader
from gtl_tui.widgets.keybar import KeyBar
from gtl_tui.widgets.learngene import LearngeneScroll, LearngeneView
from gtl_tui.widgets.lineage import LineageTree
from gtl_tui.widgets.mutations import MutationHistory
from gtl_tui.widgets.population import PopulationTable
from gtl_tui.widgets.tabbar import TabBar
from gtl_tui.widgets.vtable import VirtualTable

TABS = ("overview", "population", "lineage", "mutations", "learngene", "events")
ENDED = ("finished", "stopped", "failed", "crashed")
EVAL_POLL_S = 2.0  # seconds between looks at <run dir>/evaluations/
PREPARE_DELAY_S = 0.3  # idle time after the selection moved before the hidden views of it are rebuilt
PREPARED_TABS = ("lineage", "mutations", "learngene")
REPLAY_ACTIONS = {"replay_toggle", "replay_speed", "replay_step"}
LIVE_ACTIONS = {"export", "stop"}  # what a replay cannot do: its footer does not offer them
READER_JOIN_S = 5.0  # on unmount, how long to wait for a read in flight (a source's poll never blocks long)


class EventsRead(Message):
    """A batch of new events, read and decoded by the reader thread, to be folded on the UI thread."""

    def __init__(self, events: list[Event], engine_alive: bool | None, error: Exception | None = None) -> None:
        super().__init__()
        self.events = events
        self.engine_alive = engine_alive
        """What the source's ``engine_alive()`` said (None: not known yet, or a source without one)."""
        self.error = error
        """What the read raised (the batch is then empty)."""


class ControlReply(Message):
    """A control request came back (from a thread worker)."""

    def __init__(self, cmd: str, args: dict[str, Any], reply: dict[str, Any] | None, error: str | None) -> None:
        super().__init__()
        self.cmd, self.args, self.reply, self.error = cmd, args, reply, error


class RunScreen(Screen[None]):
    """Watch and steer one run (``MonitorApp`` makes the source and the controller).

    Args:
        source: anything with ``poll() -> list[Event]``; read in a thread unless it is a ``ReplaySource``.
        controller: anything with ``request(cmd, **args) -> dict``.
        run_dir: the run's directory (exports and saved views go there when it is local).
        replay: the source plays a finished log back (no engine commands).
        refresh_interval: seconds between reads.
        clock: "now" for elapsed time and ETA (None: the wall clock).
        feed_size: events kept for the events tab.
        evaluation_dir: the run's ``evaluations/`` folder; None for a remote run (no local run directory).
    """

    BINDINGS = [
        Binding("p", "pause", "Pause/resume", tooltip="Pause the run (the engine confirms), or resume it",
                id="pause"),
        Binding("e", "export", "Export", tooltip="Export the selected (default: best) individual's learngene",
                id="export"),
        Binding("s", "stop", "Stop", tooltip="Stop the run (asks first)", id="stop"),
        Binding("b", "select_best", "Best", tooltip="Select the best of the current generation (and follow it)",
                id="best"),
        Binding("E", "select_elite", "Elite", tooltip="Select the elite, the best of the whole run, in its "
                "generation (and follow it)", id="elite", show=False),
        Binding("left_square_bracket", "browse_generation(-1)", "Older",
                tooltip="Population: show the previous generation (the views follow its best)", id="older",
                show=False),
        Binding("right_square_bracket", "browse_generation(1)", "Newer",
                tooltip="Population: show the next generation (the current one: follow it again)", id="newer",
                show=False),
        Binding("x", "save_view", "Save view", tooltip="Write this view's data (CSV) and an SVG of the screen into "
                "RUN/views/", id="save-view", show=False),
        Binding("question_mark", "help", "Help", tooltip="Show every key", id="help"),
        Binding("q", "app.quit", "Quit", tooltip="Quit the monitor; the engine keeps running", id="quit"),
        Binding("space", "replay_toggle", "Play/pause", tooltip="Pause or continue the replay", id="replay-toggle"),
        Binding("plus,equals_sign", "replay_speed(2.0)", "Faster", tooltip="Replay twice as fast", id="faster"),
        Binding("minus", "replay_speed(0.5)", "Slower", tooltip="Replay half as fast", id="slower"),
        Binding("full_stop", "replay_step(1)", "Next gen", tooltip="Jump to the end of this generation",
                id="next-gen"),
        Binding("comma", "replay_step(-1)", "Prev gen", tooltip="Go back one generation", id="prev-gen"),
        # priority: taken as the key arrives, not after it has bubbled up from the focused widget (a message
        # hop per widget on the way: 7 ms of a tab switch; no widget of the monitor takes digits)
        *[Binding(str(k + 1), f"show_tab('{tab}')", tab.title(), show=False, id=f"tab-{tab}", priority=True)
          for k, tab in enumerate(TABS)],
    ]

    def __init__(self, source: EventSource, controller: Controller, *, run_dir: Path, replay: bool = False,
                 refresh_interval: float = 0.25, clock: Callable[[], float] | None = None, feed_size: int = 500,
                 evaluation_dir: EvaluationDir | None = None) -> None:
        super().__init__()
        self.source = source
        self.controller = controller
        self.run_dir = run_dir
        self.replay = replay
        self.refresh_interval = refresh_interval
        self.feed_size = feed_size
        self.evaluation_dir = evaluation_dir
        self._clock = clock
        self.state = self._new_state()
        self.alerts = Alerts()
        """Rings the bell when the run ends or stalls while watched."""
        self.selected: int | None = None
        """The individual the user picked; None follows the elite (or, after ``b``, the current best)."""
        self.follow_current = False
        """``b``: with nothing picked, follow the best of the current generation instead of the elite."""
        self._shown: int | None = None
        self._stale: set[str] = set(TABS)
        self._lineage_ids: set[int] = set()
        self._prepare_timer: Timer | None = None
        self._feed_written = -1  # state.events_seen when the feed was last written (-1: start over)
        self._synced = False
        self._reader: Worker[None] | None = None  # the read in flight, until its batch is folded
        self._landed = asyncio.Event()  # set when the last read's batch has been folded
        self._landed.set()
        self._idle = threading.Event()  # set while no reader thread runs (cleared before one starts)
        self._idle.set()
        self.loaded = asyncio.Event()
        """Set once the first batch (the log so far) has been folded and the views drawn from it."""

    def _new_state(self) -> RunState:
        return RunState(feed_size=self.feed_size, **({"clock": self._clock} if self._clock else {}))

    def compose(self) -> ComposeResult:
        yield RunHeader(id="header")
        yield TabBar([(tab, tab.title()) for tab in TABS], "overview", id="tab-bar")
        with ContentSwitcher(initial="overview", id="tabs"):
            with Container(id="overview"):
                yield FitnessChart(id="chart")
                yield EliteView(id="elite")
            with Container(id="population"):
                yield GenerationPicker(id="generation-picker")
                yield PopulationTable(id="population-table")
            with Container(id="lineage"):
                yield LineageTree(id="lineage-tree")
            with Container(id="mutations"):
                yield MutationHistory(id="mutation-history")
            with Container(id="learngene"):
                with LearngeneScroll(id="learngene-scroll"):
                    yield LearngeneView(id="learngene-view")
                    yield EvaluationView(id="evaluation-view")
            with Container(id="events"):
                yield EventLog(max_lines=self.feed_size, id="event-log")
        yield KeyBar(id="keys")

    def on_mount(self) -> None:
        self.header = self.query_one(RunHeader)
        self.tab_bar = self.query_one(TabBar)
        self.tabs = self.query_one("#tabs", ContentSwitcher)
        self.chart = self.query_one(FitnessChart)
        self.elite = self.query_one(EliteView)
        self.population_table = self.query_one(PopulationTable)
        self.generation_picker = self.query_one(GenerationPicker)
        self.lineage_tree = self.query_one(LineageTree)
        self.mutation_history = self.query_one(MutationHistory)
        self.learngene_view = self.query_one(LearngeneView)
        self.feed = self.query_one(EventFeed)
        self.evaluation_view = self.query_one(EvaluationView)
        self.learngene_scroll = self.query_one(LearngeneScroll)
        self.tab_views: dict[str, Widget | None] = {  # the widget that takes the keys on each tab
            "overview": None, "population": self.population_table,
            "lineage": self.lineage_tree, "mutations": self.mutation_history.query_one(VirtualTable),
            "learngene": self.learngene_scroll, "events": self.feed}
        # Containers that draw nothing but their background: Textual then skips rendering their lines, which
        # after a tab switch (a full repaint) were most of the lines drawn (several nested layers per cell).
        for container in (self, self.tabs, *self.tabs.children,
                          self.learngene_scroll, self.mutation_history, self.query_one("#mutation-filters")):
            container.BLANK = True
        self.poll_events()
        self.set_interval(self.refresh_interval, self.poll_events)
        if self.evaluation_dir is not None:
            self.poll_evaluations()
            self.set_interval(EVAL_POLL_S, self.poll_evaluations)

    async def on_unmount(self) -> None:
        # Textual cancels the reader worker with the screen, but a thread cannot be stopped: wait for the read in
        # flight to end (a source's poll never blocks long), so that no thread is left reading the log.
        deadline = time.monotonic() + READER_JOIN_S
        while not self._idle.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    # ---- the update loop -----------------------------------------------------------------------------
    def poll_events(self) -> None:
        """One tick: start reading what is new in a thread; its batch is folded when it lands (``EventsRead``).

        One reader at a time: while a read is in flight (a long log, a slow link) ticks are skipped, so batches
        are folded in log order. A replay is played here, on the UI thread: its log is in memory, and its
        controls seek it.
        """
        if isinstance(self.source, ReplaySource):
            self.fold(self.source.poll(), None)
            return
        if self._reader is not None:
            return
        self._landed.clear()
        self._idle.clear()
        self._reader = self._read_events()

    @work(thread=True, group="event-reader", name="event reader", exit_on_error=False)
    def _read_events(self) -> None:
        """In the reader thread: read and decode the new events, post them to the UI thread as one batch."""
        try:
            events = self.source.poll()  # parsing pauses the collector (gtl_tui.gc_policy)
            alive = getattr(self.source, "engine_alive", None)
            batch = EventsRead(events, alive() if callable(alive) else None)
        except Exception as err:  # raised again on the UI thread, as a failed tick was before
            batch = EventsRead([], None, error=err)
        finally:
            self._idle.set()  # before the batch is posted: the next read may start as soon as it has landed
        if not get_current_worker().is_cancelled:
            self.post_message(batch)

    def on_events_read(self, message: EventsRead) -> None:
        self._reader = None
        try:
            if message.error is not None:
                raise message.error
            self.fold(message.events, message.engine_alive)
        finally:
            self._landed.set()
            self.loaded.set()

    async def read_now(self) -> None:
        """Read what is new and fold it before returning (the app awaits the first batch before its first frame;
        tests and the bench drive ticks with it). Not from this screen's own handlers: the batch lands as one of
        its messages."""
        while self._reader is not None:  # let the read in flight land first
            await self._landed.wait()
        self.poll_events()
        await self._landed.wait()

    def fold(self, events: list[Event], engine_alive: bool | None) -> None:
        """Fold a batch into the state, ring the alerts, redraw what changed (once per batch)."""
        if events:
            self.state.apply_all(events)  # folding pauses the collector (gtl_tui.gc_policy)
            gc_policy.after_batch(len(events))
        if callable(getattr(self.source, "engine_alive", None)):  # a source that can tell (None: no pid file yet)
            self.state.set_engine_alive(engine_alive)
        if not self.replay:
            for alert in self.alerts.update(self.state.status, bool(events), time.monotonic()):
                self.app.bell()
                self.notify(alert, title="gtl-tui", severity="warning" if "stalled" in alert else "information",
                            timeout=30)
        changes = self.state.take_changes()
        if changes.any() or not self._synced or self.replay:
            self.sync_views(changes)
        else:
            self.header.show(self.state, self.mode_badge())  # the clock moves on
        self.loaded.set()

    def poll_evaluations(self) -> None:
        """Redraw the evaluations when a file in ``evaluations/`` appeared, changed or went (a listing)."""
        assert self.evaluation_dir is not None
        found = self.evaluation_dir.poll()
        if found is not None:
            self.evaluation_view.show(found)

    def sync_views(self, changes: Changes) -> None:
        state, first = self.state, not self._synced or changes.reset
        self._synced = True
        self.header.show(state, self.mode_badge())
        if first or changes.stats:
            gens = sorted(state.stats)
            self.chart.set_data(gens, [state.stats[g].best for g in gens],
                                                  [state.stats[g].mean for g in gens],
                                                  [state.stats[g].worst for g in gens])
        if first or changes.stats or changes.exports or changes.generation:
            self.elite.show(state)
        sel = self.selection()
        self.population_table.sync(state, None if first else changes,
                                             self.selected if self.selected is not None else sel)
        self.generation_picker.show(self.population_table.generation, state.current_generation,
                                    min(state.by_generation, default=0))
        if first:
            self._feed_written = -1  # the feed starts over
        if changes.feed or first:
            self._stale.add("events")
        moved = sel != self._shown
        self._shown = sel
        touched = changes.individuals
        if first or moved or changes.generation or changes.stats or (touched and (
                touched & self._lineage_ids or any(state.individuals[i].parent in self._lineage_ids
                                                   for i in touched if i in state.individuals))):
            self._stale.add("lineage")
        if first or moved or (sel is not None and sel in touched):
            self._stale.add("learngene")
        if first or changes.mutations or moved:
            self._stale.add("mutations")
        self.refresh_tab(self.active_tab)
        if moved and not first:
            # The user picked another individual: rebuild the hidden views of it once the keys stop (not on
            # every key of a held arrow), so that opening one of them next only has to draw it.
            if self._prepare_timer is not None:
                self._prepare_timer.stop()
            self._prepare_timer = self.set_timer(PREPARE_DELAY_S, self._prepare_hidden_tabs)

    def _prepare_hidden_tabs(self) -> None:
        self._prepare_timer = None
        try:
            self._prepare_hidden_tabs_now()
        except NoMatches:  # the timer fired while the app was closing (its widgets going)
            pass

    def _prepare_hidden_tabs_now(self) -> None:
        for tab in PREPARED_TABS:
            if tab != self.active_tab and tab in self._stale:
                self.refresh_tab(tab)
                if tab == "lineage":  # its drawn lines do not depend on focus: draw those it will show
                    self.lineage_tree.draw_ahead()

    def refresh_tab(self, tab: str) -> None:
        """Rebuild a tab's view if it is stale (only the visible tab is rebuilt on each tick)."""
        if tab not in self._stale:
            return
        self._stale.discard(tab)
        sel = self.selection()
        if tab == "lineage":
            self.lineage_tree.show(self.state, sel)
            self._lineage_ids = set(self.state.lineage(sel)) | self.state.descendants(sel) if sel is not None \
                else set()
        elif tab == "learngene":
            self.learngene_view.show(self.state, sel)
        elif tab == "mutations":
            self.mutation_history.show(self.state, sel)
        elif tab == "events":
            self._write_feed()

    def _write_feed(self) -> None:
        """Append the events logged since the feed was last shown (all kept ones after a reset)."""
        state, feed = self.state, self.feed
        new = state.events_seen - self._feed_written
        if self._feed_written < 0 or new >= len(state.feed):
            feed.clear()
            new = len(state.feed)
        feed.origin = state.started_t
        feed.add_events(list(state.feed)[-new:] if new else [])
        self._feed_written = state.events_seen

    @property
    def active_tab(self) -> str:
        """The id of the shown tab."""
        return self.tabs.current or TABS[0]

    def on_tab_bar_clicked(self, event: TabBar.Clicked) -> None:
        self.action_show_tab(event.tab)

    def selection(self) -> int | None:
        if self.selected is not None and self.selected in self.state.individuals:
            return self.selected
        best = self.state.best_of(self.state.current_generation) if self.follow_current else None
        best = best or self.state.best()
        return best.id if best is not None else None

    def mode_badge(self) -> str:
        src = self.source
        link = getattr(src, "status", None)  # a remote source tells how its connection is
        if isinstance(link, str):
            host = getattr(src, "host", None) or "remote"
            return f"SSH {host}" if link == "connected" else f"SSH {link}"
        if not isinstance(src, ReplaySource):
            return ""
        end = " end" if src.done else ""
        return f"REPLAY {src.speed:g}x {'▶' if src.playing and not src.done else '⏸'}{end}"

    def on_population_table_selected(self, message: PopulationTable.Selected) -> None:
        if message.individual != self.selected:
            self.selected = message.individual
            self.follow_current = False
            self.sync_views(Changes())

    def on_population_table_browsed(self, message: PopulationTable.Browsed) -> None:
        """Another generation in the table: select its best (the views follow), or its first row."""
        state, table = self.state, self.population_table
        best = state.best_of(message.generation)
        if message.generation == state.current_generation and best is None:
            self.selected = None  # the current generation has no result yet: follow as before
        else:
            members = state.by_generation.get(message.generation, [])
            self.selected = best.id if best is not None else (members[0] if members else None)
            self.follow_current = False
        table.select_row(self.selection())
        self.sync_views(Changes())

    # ---- engine control ------------------------------------------------------------------------------
    def _can_control(self, what: str) -> bool:
        if self.replay:
            self.notify(f"This is a replay: there is no engine to {what}.", severity="warning")
            return False
        status = self.state.status
        if status in ENDED:
            self.notify(f"The run has {status}: no engine to {what}."
                        + (" The log shows where it stopped." if status == "crashed" else ""),
                        title="engine not running", severity="warning")
            return False
        return True

    @work(thread=True, exit_on_error=False, group="control")
    def send_command(self, cmd: str, **args: Any) -> None:
        """Blocking socket call, in a thread; the answer comes back as a ControlReply message."""
        try:
            reply, error = self.controller.request(cmd, **args), None
        except (ControlError, OSError) as err:
            reply, error = None, str(err)
        self.post_message(ControlReply(cmd, args, reply, error))

    def on_control_reply(self, message: ControlReply) -> None:
        if message.error is not None:
            self.notify(f"{message.cmd} failed: {message.error}", title="engine", severity="error", timeout=8)
            return
        reply = message.reply or {}
        if message.cmd == "export":
            path, scp = reply.get("path", "?"), reply.get("scp", "")
            lines = [path] + ([scp, "(the scp line is also in the clipboard)"] if scp else [])
            self.notify("\n".join(lines), title=f"learngene of #{message.args.get('individual')} exported",
                        timeout=20, markup=False)
            if scp:
                self.app.copy_to_clipboard(scp)
            return
        self.state.request(message.cmd)
        self.sync_views(self.state.take_changes())

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.notify(f"{event.worker.name} failed: {event.worker.error}", severity="error", timeout=8)

    def action_pause(self) -> None:
        if isinstance(self.source, ReplaySource):
            self.action_replay_toggle()
            return
        st = self.state
        cmd = "resume" if st.paused or st.pause_requested else "pause"
        if self._can_control(cmd):
            self.send_command(cmd)

    def action_export(self) -> None:
        sel = self.selection()
        if sel is None:
            self.notify("No individual to export yet.", severity="warning")
            return
        if self.state.status in ENDED and not self.replay and self.evaluation_dir is not None:
            # the engine is gone: the run's gene archive holds every individual (a subprocess: torch stays
            # out of the monitor)
            self.export_offline(sel)
            return
        if self._can_control("export"):
            self.send_command("export", individual=sel)

    @work(thread=True, exit_on_error=False, group="control")
    def export_offline(self, individual: int) -> None:
        """``gtl-tui export RUN --individual N`` in a subprocess; the answer comes back as a ControlReply."""
        from gtl_tui.offline_export import export_in_subprocess

        reply, error = export_in_subprocess(self.run_dir, individual)
        self.post_message(ControlReply("export", {"individual": individual}, reply, error))

    def action_stop(self) -> None:
        if not self._can_control("stop"):
            return
        name = self.state.run.name if self.state.run else str(self.run_dir)

        def answered(yes: bool | None) -> None:
            if yes:
                self.send_command("stop")

        self.app.push_screen(ConfirmScreen(f"Stop the run [b]{name}[/b]?\nThe engine saves a checkpoint and "
                                       "exits; `gtl-tui run --resume` continues it later."), answered)

    def action_select_best(self) -> None:
        """The best of the current generation, followed as results come in (the elite before any)."""
        self.selected, self.follow_current = None, True
        self.population_table.view_generation = None
        self.sync_views(Changes())
        self.population_table.select_row(self.selection())

    def action_select_elite(self) -> None:
        """The elite, followed, with the table on its generation."""
        self.selected, self.follow_current = None, False
        elite = self.state.best()
        table = self.population_table
        table.view_generation = elite.generation if elite is not None else None
        self.sync_views(Changes())
        table.select_row(self.selection())

    def action_browse_generation(self, step: int) -> None:
        self.population_table.browse(step)

    def action_show_tab(self, tab: str) -> None:
        # Rebuild the view before it is shown: its new size then goes into the one layout the switch does,
        # instead of a second layout and a second full repaint.
        if tab not in TABS:
            return
        self.refresh_tab(tab)
        self.tabs.current = tab
        self.tab_bar.active = tab
        # The screen's layout is due now, not once the panes have passed it on: else the next frame may first
        # repaint the widgets marked dirty on the way, the view being hidden among them (tens of ms).
        self.refresh(layout=True)
        # Focus the tab's own view now, in the same frame: a focused widget in the pane being hidden would
        # otherwise be blurred after the layout, and Textual then repaints the whole screen a second time.
        # The overview takes no keys: nothing has focus there.
        target = self.tab_views.get(tab)
        if target is None:
            if self.app.screen is self:
                self.set_focus(None)
        elif self.app.screen is self:
            target.focus(scroll_visible=False)
        if tab == "events":  # lines written while hidden did not scroll it
            self.call_after_refresh(self.feed.scroll_end, animate=False)

    def action_save_view(self) -> None:
        """The data behind the tab on screen as CSV, and the screen as SVG, in ``RUN/views/`` (``./views`` when the
        run is on another machine)."""
        from engine.atomic import write_atomic
        from gtl_tui import view_export

        tab, sel, state = self.active_tab, self.selection(), self.state
        if tab == "overview":
            data = view_export.overview_csv(state)
        elif tab == "population":
            data = view_export.population_csv(state, self.population_table.generation)
        elif tab == "lineage":
            data = view_export.lineage_csv(state, sel)
        elif tab == "mutations":
            data = view_export.mutations_csv(state)
        elif tab == "learngene":
            data = view_export.learngene_csv(state, sel)
        else:
            data = view_export.events_csv(self.feed.shown_items())
        folder = (self.run_dir if self.evaluation_dir is not None else Path.cwd()) / "views"
        base = folder / f"{tab}-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            csv_path = write_atomic(base.with_suffix(".csv"), data)
            svg_path = write_atomic(base.with_suffix(".svg"), self.app.export_screenshot())
        except OSError as err:
            self.notify(f"view not saved: {folder}: {err.strerror or err}", severity="error", timeout=8)
            return
        self.notify(f"{csv_path}\n{svg_path}", title=f"{tab} view saved", timeout=12)

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(self.key_help()))

    def key_help(self) -> list[tuple[str, str, str]]:
        rows = []
        for b in [*self.BINDINGS, *getattr(self.app, "BINDINGS", [])]:  # the app's: e.g. Escape back to the runs
            assert isinstance(b, Binding)
            name = b.action.split("(")[0]
            if name == "show_tab":
                continue
            where = "replay" if name in REPLAY_ACTIONS else "monitor"
            if name == "pause":
                where = "monitor (replay: play/pause)"
            rows.append((", ".join(self.app.get_key_display(Binding(k, "")) for k in b.key.split(",")),
                         b.tooltip or b.description, where))
        rows.append((f"1-{len(TABS)}", "Show a tab: " + ", ".join(TABS), "monitor"))
        for b in PopulationTable.BINDINGS:
            assert isinstance(b, Binding)
            rows.append((self.app.get_key_display(b), b.tooltip or b.description, "population table"))
        for b in EventLog.BINDINGS:
            assert isinstance(b, Binding)
            rows.append(("/", b.tooltip or b.description, "events (Escape clears)"))
        rows += [("↑ ↓ / click", "Select an individual: drives lineage, mutations, learngene", "population table"),
                 ("click header", "Sort by that column (again: reverse)", "population table"),
                 ("tab, shift+tab", "Move the focus", "everywhere"),
                 ("ctrl+p", "Command palette: every action by name", "everywhere")]
        return rows

    # ---- replay --------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        replaying = isinstance(self.source, ReplaySource)
        if (action in REPLAY_ACTIONS and not replaying) or (action in LIVE_ACTIONS and replaying):
            return False
        return True

    def action_replay_toggle(self) -> None:
        if isinstance(self.source, ReplaySource):
            self.source.toggle()
            self.header.show(self.state, self.mode_badge())

    def action_replay_speed(self, factor: float) -> None:
        if isinstance(self.source, ReplaySource):
            self.source.set_speed(self.source.speed * factor)
            self.header.show(self.state, self.mode_badge())

    def action_replay_step(self, step: int) -> None:
        src = self.source
        if not isinstance(src, ReplaySource):
            return
        # A step pauses the replay, as a frame step does: playing on, `,` at the end replayed the last generation
        # at once and seemed to do nothing.
        if src.playing:
            src.toggle()
        target = src.generation_bound(step)
        if target >= src.cursor:
            events = src.events[src.cursor:target]
            src.seek(target)
            self.state.apply_all(events)
            self.sync_views(self.state.take_changes())
            self.header.show(self.state, self.mode_badge())
            return
        src.seek(target)  # back: fold again from the start (folding is fast)
        self.state = self._new_state()
        self.state.apply_all(src.events[:target])
        changes = self.state.take_changes()
        changes.reset = True
        self._stale = set(TABS)
        self.sync_views(changes)

    # ---- command palette -----------------------------------------------------------------------------
    def system_commands(self) -> Iterator[SystemCommand]:
        """This screen's entries in the command palette (after Textual's own)."""
        yield SystemCommand("Pause / resume the run", "Pause after the current individual, or resume",
                            self.action_pause)
        yield SystemCommand("Export learngene", "Export the selected (default: best) individual's learngene",
                            self.action_export)
        yield SystemCommand("Stop the run", "Stop the engine (asks first)", self.action_stop)
        yield SystemCommand("Select the best individual", "Follow the best of the current generation",
                            self.action_select_best)
        yield SystemCommand("Select the elite", "Follow the best of the whole run", self.action_select_elite)
        yield SystemCommand("Older generation", "Show the previous generation in the population table",
                            lambda: self.action_browse_generation(-1))
        yield SystemCommand("Newer generation", "Show the next generation in the population table",
                            lambda: self.action_browse_generation(1))
        yield SystemCommand("Keys", "Show every key of the monitor", self.action_help)
        for tab in TABS:
            yield SystemCommand(f"Show {tab}", f"Open the {tab} tab", lambda t=tab: self.action_show_tab(t))
        if isinstance(self.source, ReplaySource):
            yield SystemCommand("Replay: play / pause", "Pause or continue the replay", self.action_replay_toggle)
            yield SystemCommand("Replay: faster", "Double the replay speed", lambda: self.action_replay_speed(2.0))
            yield SystemCommand("Replay: slower", "Halve the replay speed", lambda: self.action_replay_speed(0.5))
            yield SystemCommand("Replay: next generation", "Jump to the end of this generation",
                                lambda: self.action_replay_step(1))
            yield SystemCommand("Replay: previous generation", "Go back one generation",
                                lambda: self.action_replay_step(-1))
