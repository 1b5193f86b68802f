"""Where the monitor's events come from and where its commands go.

The app only needs ``poll() -> list[Event]`` from a source and ``request(cmd, **args) -> dict`` from a
controller, so a remote (SSH) mode can plug in its own. Local ones read ``<run dir>/events.jsonl`` and talk to
``<run dir>/control.sock``; the replay source plays a finished log back at a chosen speed.
"""

from __future__ import annotations

import bisect
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import orjson  # attaching to a 100,000-event log parses ~4x faster than with json

from engine.control.client import ControlError, send
from engine.events import EVENTS_FILE, Event, GenerationStarted, decode_event
from engine.rundir import PID_FILE, live_engine_pid
from gtl_tui import gc_policy


class EventSource(Protocol):
    def poll(self) -> list[Event]:
        """Events that arrived since the last call (complete ones only), in log order; never blocks long."""
        ...


class Controller(Protocol):
    def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        """Send a control command; returns the reply, raises ``ControlError`` with a one-line message."""
        ...


def read_log(path: str | Path, offset: int = 0) -> tuple[list[Event], int]:
    """Like ``engine.events.read_events`` (complete lines only, invalid ones skipped), tuned for long logs."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    events: list[Event] = []
    append = events.append
    loads = orjson.loads
    with gc_policy.paused():
        for line in data[: end + 1].splitlines():
            try:
                d = loads(line)
            except ValueError:  # orjson refuses NaN and Infinity, which json.dumps writes; or a bad line
                try:
                    d = json.loads(line)
                except (ValueError, UnicodeDecodeError, RecursionError):  # too deep for both decoders: skip it
                    continue
            if not isinstance(d, dict):
                continue
            ev = decode_event(d)
            if ev is not None:
                append(ev)
    return events, offset + end + 1


def run_dir_problem(run_dir: str | Path) -> str | None:
    """Why ``run_dir`` cannot be monitored (one line), or None when it can."""
    p = Path(run_dir)
    if not p.exists():
        return f"{p}: no such run directory"
    if not p.is_dir():
        return f"{p}: not a directory"
    if not (p / EVENTS_FILE).is_file():
        return f"{p}: no {EVENTS_FILE} here (not a run directory, or its engine has not started yet)"
    return None


class LocalEventSource:
    """Follows ``<run dir>/events.jsonl`` and checks the engine's lock on ``engine.pid`` for a crashed engine."""

    def __init__(self, run_dir: str | Path, *, pid_check_interval: float = 2.0):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / EVENTS_FILE
        self.offset = 0
        self.pid_check_interval = pid_check_interval
        self._pid_checked = -1e9
        self._alive: bool | None = None

    def poll(self) -> list[Event]:
        events, self.offset = read_log(self.path, self.offset)
        return events

    def engine_alive(self) -> bool | None:
        """False when ``engine.pid`` exists but no engine holds its lock, None when there is no pid file yet."""
        now = time.monotonic()
        if now - self._pid_checked >= self.pid_check_interval:
            self._pid_checked = now
            if not (self.run_dir / PID_FILE).exists():
                self._alive = None
            else:
                self._alive = live_engine_pid(self.run_dir) is not None
        return self._alive


class LocalController:
    """Control commands over the run's Unix socket (each call blocks: the app runs it in a thread)."""

    def __init__(self, run_dir: str | Path, timeout: float = 10.0):
        self.run_dir = Path(run_dir)
        self.timeout = timeout

    def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        return send(self.run_dir, cmd, timeout=self.timeout, **args)


class ReplayController:
    """A replay has no engine to command."""

    def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        raise ControlError(f"this is a replay: there is no engine to {cmd}")


class ReplaySource:
    """Plays a recorded log back: the log's clock runs ``speed`` times faster than the wall clock.

    Quiet stretches of the log longer than ``max_gap`` log seconds are shortened to ``max_gap`` so a replay
    never stalls. ``seek`` jumps to an event index (the app refolds the state from scratch when stepping back).

    Args:
        events: the whole log, in order.
        speed: log seconds per wall second.
        wall: the wall clock (tests pass a fake one).
    """

    def __init__(self, events: list[Event], *, speed: float = 10.0, max_gap: float = 1.0,
                 wall: Callable[[], float] = time.monotonic):
        self.events = events
        self.speed = speed
        self.playing = True
        self.wall = wall
        # Compressed log times: the same order, gaps capped.
        self.times: list[float] = []
        t = 0.0
        for k, ev in enumerate(events):
            if k:
                t += min(max(ev.t - events[k - 1].t, 0.0), max_gap)
            self.times.append(t)
        self.gen_starts = [k for k, ev in enumerate(events) if isinstance(ev, GenerationStarted)]
        self.cursor = 0
        self._pos = 0.0  # compressed log time reached
        self._wall_mark = wall()

    @classmethod
    def from_run_dir(cls, run_dir: str | Path, **kw: Any) -> ReplaySource:
        events, _ = read_log(Path(run_dir) / EVENTS_FILE)
        return cls(events, **kw)

    @property
    def done(self) -> bool:
        return self.cursor >= len(self.events)

    @property
    def log_time(self) -> float:
        """The recorded time of the last event played (what "now" is during the replay)."""
        if not self.events:
            return 0.0
        return self.events[max(self.cursor - 1, 0)].t

    def _advance_clock(self) -> None:
        now = self.wall()
        if self.playing:
            self._pos += (now - self._wall_mark) * self.speed
        self._wall_mark = now

    def poll(self) -> list[Event]:
        self._advance_clock()
        end = bisect.bisect_right(self.times, self._pos, lo=self.cursor)
        out = self.events[self.cursor:end]
        self.cursor = max(self.cursor, end)
        return out

    def set_speed(self, speed: float) -> None:
        self._advance_clock()
        self.speed = min(max(speed, 0.125), 4096.0)

    def toggle(self) -> None:
        self._advance_clock()
        self.playing = not self.playing

    def seek(self, index: int) -> None:
        """Continue from event ``index`` (the events before it count as played)."""
        self._advance_clock()
        self.cursor = min(max(index, 0), len(self.events))
        self._pos = self.times[self.cursor - 1] if self.cursor else 0.0

    def generation_bound(self, step: int) -> int:
        """Event index of the start of the next (``step`` > 0) or previous generation, as seek targets.

        Forward lands just before the next ``generation_started`` (the current generation played to its end);
        back lands just before the last ``generation_started`` already played (the previous generation's end).
        """
        if step > 0:
            k = bisect.bisect_right(self.gen_starts, self.cursor)
            return self.gen_starts[k] if k < len(self.gen_starts) else len(self.events)
        k = bisect.bisect_left(self.gen_starts, self.cursor) - 1
        return self.gen_starts[k] if k >= 0 else 0
