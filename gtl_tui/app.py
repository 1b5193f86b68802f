"""The monitor's app: a thin ``App`` that makes a run's event source and controller and shows its ``RunScreen``.

The screen (``gtl_tui.screens.run``) composes the tabs, reads the log in a thread worker, folds it and redraws
the views, and holds the monitor's keys. The app keeps what is global: the stylesheet, quitting, when the garbage
collector runs (``gtl_tui.gc_policy``), where screenshots go, and the command palette's entries (the screen's).
``open_monitor`` runs it in this terminal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual import events, on
from textual.app import App, SystemCommand
from textual.binding import BindingType
from textual.screen import Screen

from gtl_tui import gc_policy
from gtl_tui.evaluations import EvaluationDir
from gtl_tui.screens.run import ENDED, RunScreen
from gtl_tui.sources import (
    Controller,
    EventSource,
    LocalController,
    LocalEventSource,
    ReplayController,
    ReplaySource,
)
from gtl_tui.state import RunState


class MonitorApp(App[None]):
    """Watch and steer one run.

    Args:
        run_dir: the run's directory (events.jsonl, control.sock, engine.pid).
        replay: play the finished log back instead of following it (no engine commands).
        speed: replay speed, log seconds per second.
        event_source: anything with ``poll() -> list[Event]`` (default: follow ``run_dir``'s log).
        controller: anything with ``request(cmd, **args) -> dict`` (default: the run's control socket).
        refresh_interval: seconds between polls (raise it over a slow link).
        evaluations: show ``<run_dir>/evaluations/*.json`` (default: when the run directory is local, i.e.
            the source is not a remote one).
        clock: "now" for elapsed time and ETA (tests pass a fixed one).
    """

    # Absolute: Textual resolves a relative one next to the module of the class instantiated, and a subclass (the
    # monitor opened from the Runs screen) lives in another package.
    CSS_PATH = Path(__file__).parent / "styles" / "monitor.tcss"
    TITLE = "gtl-tui"
    #: The monitor's keys are the run screen's; the app's own (a subclass's, e.g. Escape back to the runs) come
    #: after them in the footer and the help.
    BINDINGS: ClassVar[list[BindingType]] = []

    def __init__(self, run_dir: str | Path, *, replay: bool = False, speed: float = 10.0,
                 event_source: EventSource | None = None, controller: Controller | None = None,
                 refresh_interval: float = 0.25, clock: Callable[[], float] | None = None,
                 feed_size: int = 500, evaluations: bool | None = None) -> None:
        super().__init__()
        self.animation_level = "none"  # a monitor, often over SSH: no sliding underlines or smooth scrolls
        self.run_dir = Path(run_dir)
        self.replay = replay
        if event_source is None:
            event_source = ReplaySource.from_run_dir(run_dir, speed=speed) if replay else LocalEventSource(run_dir)
        if isinstance(event_source, ReplaySource):
            gc_policy.after_batch(len(event_source.events))  # the whole log stays in memory for the replay
        if evaluations is None:
            evaluations = isinstance(event_source, (LocalEventSource, ReplaySource))
        self.evaluation_dir = EvaluationDir(self.run_dir) if evaluations else None
        """The run's ``evaluations/`` folder; None for a remote run (no local run directory)."""
        self.source = event_source
        self.controller = controller or (ReplayController() if replay else LocalController(run_dir))
        if clock is None and isinstance(event_source, ReplaySource):
            clock = lambda: event_source.log_time  # noqa: E731 - "now" is the replayed moment
        self.run_screen = RunScreen(self.source, self.controller, run_dir=self.run_dir, replay=replay,
                                    refresh_interval=refresh_interval, clock=clock, feed_size=feed_size,
                                    evaluation_dir=self.evaluation_dir)
        """The run's screen: its tabs, its state, its keys."""

    @property
    def state(self) -> RunState:
        """The run as folded so far (the run screen's)."""
        return self.run_screen.state

    def get_default_screen(self) -> Screen:
        return self.run_screen

    async def on_mount(self) -> None:
        # Full collections run while the user is not typing (gtl_tui.gc_policy).
        self._restore_gc = gc_policy.defer_full_collections()
        self._last_input = time.monotonic()
        self.set_interval(gc_policy.IDLE_GC_S, self.collect_when_idle)
        # The first frame shows the run as it is: the first batch (the whole log so far, read in the screen's
        # reader thread) is folded before it is drawn. What exists then lives as long as the app: frozen.
        await self.run_screen.loaded.wait()
        self.call_after_refresh(gc_policy.freeze)

    def on_unmount(self) -> None:
        self._restore_gc()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown, events.MouseScrollDown, events.MouseScrollUp)):
            self._last_input = time.monotonic()
        await super().on_event(event)

    def collect_when_idle(self) -> bool:
        """The full garbage collection, unless a key or click came in the last second; True if it ran."""
        return gc_policy.collect_if_idle(self._last_input)

    # ---- screenshots (the palette's "Screenshot") ------------------------------------------------------
    def screenshot_dir(self) -> Path:
        """``<run>/screenshots`` for a local run; ``./screenshots`` when the run is on another machine."""
        base = self.run_dir if self.evaluation_dir is not None else Path.cwd()
        return base / "screenshots"

    def deliver_screenshot(self, filename: str | None = None, path: str | None = None,
                           time_format: str | None = None) -> str | None:
        # Textual's default folder (the user's Downloads) often does not exist on a server: it failed silently.
        if path is None:
            folder = self.screenshot_dir()
            try:
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as err:
                self.notify(f"screenshot not saved: {folder}: {err.strerror}", severity="error", timeout=8)
                return None
            path = str(folder)
        return super().deliver_screenshot(filename, path, time_format)

    @on(events.DeliveryFailed)
    def _screenshot_failed(self, event: events.DeliveryFailed) -> None:
        if event.name == "screenshot":
            event.prevent_default()  # Textual's own message gives neither the reason nor the path
            self.notify(f"screenshot not saved: {event.exception}", title="Screenshot", severity="error", timeout=8)

    # ---- command palette -----------------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if isinstance(screen, RunScreen):
            yield from screen.system_commands()


def open_monitor(run_dir: Path, *, remote: str | None = None, **kw: Any) -> None:
    """Run the monitor in this terminal; on quit, say how to come back (the engine keeps running).

    ``remote``: the ssh:// address the run was reached through (for the re-attach hint).
    """
    app = MonitorApp(run_dir, **kw)
    app.run()
    if kw.get("replay"):
        return
    where = remote or run_dir
    status = app.state.status
    if status in ENDED:
        print(f"The run {status}. Its log and learngenes are in {where}")
    else:
        print(f"The engine keeps running. Re-attach with: gtl-tui attach {where}")
