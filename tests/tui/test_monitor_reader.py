"""The run screen reads its log in a thread worker: off the UI thread, one read at a time, nothing left reading
after the app has gone; each batch is folded on the UI thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from fakes import wait_for

from engine.events import Event
from gtl_tui.app import MonitorApp
from gtl_tui.scripted import scripted_run, write_events
from gtl_tui.sources import LocalEventSource

SIZE = (120, 40)


class WatchedSource(LocalEventSource):
    """The run's log, noting which thread reads it and how many reads overlap; each read takes a while."""

    def __init__(self, run_dir: Path, delay: float = 0.03) -> None:
        super().__init__(run_dir)
        self.delay = delay
        self.threads: set[str] = set()
        self.reading = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def poll(self) -> list[Event]:
        with self._lock:
            self.reading += 1
            self.most_at_once = max(self.most_at_once, self.reading)
            self.threads.add(threading.current_thread().name)
        try:
            time.sleep(self.delay)  # longer than a tick: ticks come while a read is in flight
            return super().poll()
        finally:
            with self._lock:
                self.reading -= 1


async def test_the_log_is_read_off_the_ui_thread_one_read_at_a_time(tmp_path: Path):
    events = scripted_run(population=6, generations=3)
    half = len(events) // 2
    write_events(tmp_path, events[:half])
    source = WatchedSource(tmp_path)
    app = MonitorApp(tmp_path, event_source=source, refresh_interval=0.005)
    ui_thread = threading.current_thread().name
    async with app.run_test(size=SIZE) as pilot:
        assert app.state.events_seen == half  # the first frame waited for the first batch
        write_events(tmp_path, events[half:])
        await wait_for(pilot, lambda: app.state.events_seen == len(events))
        assert app.state.status == "finished"
        await pilot.pause(0.1)
    assert source.threads and ui_thread not in source.threads
    assert source.most_at_once == 1
    assert source.reading == 0  # the app waited for the read in flight when it closed


async def test_read_now_folds_what_is_new_before_returning(tmp_path: Path):
    events = scripted_run(population=4, generations=2)
    write_events(tmp_path, events[:10])
    app = MonitorApp(tmp_path, refresh_interval=3600)  # no tick: only read_now reads
    async with app.run_test(size=SIZE):
        screen = app.run_screen
        assert app.state.events_seen == 10
        write_events(tmp_path, events[10:])
        await screen.read_now()
        assert app.state.events_seen == len(events) and app.state.status == "finished"
        assert "FINISHED" in screen.header.text.plain  # the views were redrawn from the batch


class FailingSource(LocalEventSource):
    def poll(self) -> list[Event]:
        raise RuntimeError("the log went away")


async def test_a_read_that_fails_ends_the_app_with_its_error_and_does_not_hang(tmp_path: Path):
    write_events(tmp_path, scripted_run(population=3, generations=1))
    app = MonitorApp(tmp_path, event_source=FailingSource(tmp_path), refresh_interval=0.05)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.2)
    except RuntimeError as err:
        assert "the log went away" in str(err)
    assert not app.is_running and isinstance(app._exception, RuntimeError)
