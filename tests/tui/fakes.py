"""Scripted runs and a fake engine for the monitor's tests: no torch, no training.

``make_run`` writes a realistic scripted run (``gtl_tui.scripted``) into a run directory. ``FakeEngine``
is the engine's real control server (``engine.control.server``) on ``<run dir>/control.sock``, holds the engine
lock on ``engine.pid`` like the real daemon, and acts the way the engine does: a pause is confirmed by a
``paused`` event in the log (at once, or when the test calls ``confirm_pause``), an export writes a learngene
file and its manifest.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from engine.control.server import ControlServer
from engine.events import (
    EVENTS_FILE,
    EventWriter,
    LearngeneExported,
    Paused,
    Resumed,
    RunFinished,
    read_events,
)
from engine.run.signals import RunSignals
from engine.rundir import PID_FILE, acquire_lock, release_lock
from gtl_tui.scripted import scripted_run, write_events


def make_run(run_dir: Path, **kw: Any) -> Path:
    """Write a scripted run's log (and a config.toml) into ``run_dir``; ``kw`` goes to ``scripted_run``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.toml").write_text('[run]\nseed = 0\n')
    write_events(run_dir, scripted_run(**kw))
    return run_dir


@contextlib.contextmanager
def short_dir() -> Iterator[Path]:
    """A temporary directory with a short path: AF_UNIX socket paths are limited to about 107 bytes."""
    d = Path(tempfile.mkdtemp(prefix="gtl", dir="/tmp"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


class FakeEngine:
    """A run's engine without the training: the real :class:`ControlServer` on ``control.sock`` (the real request
    validation, replies and socket handling), in front of a scripted evolution that appends what the engine would
    log (``paused``, ``resumed``, ``run_finished``, ``learngene_exported``) and holds the run's lock.

    Args:
        auto_confirm_pause: log ``paused`` right after a pause request; when False the test decides when
            (``confirm_pause``), so the "pausing" state can be observed.
    """

    def __init__(self, run_dir: Path, *, auto_confirm_pause: bool = True):
        self.run_dir = Path(run_dir)
        self.auto_confirm_pause = auto_confirm_pause
        self.requests: list[dict[str, Any]] = []
        """Every valid request the engine received, in order (without its ``id``)."""
        self.state = "running"
        events, _ = read_events(self.run_dir / EVENTS_FILE)
        self.generation = max((getattr(e, "generation", 0) for e in events), default=0)
        self.best = max(((e.fitness, e.id) for e in events if e.kind == "individual_evaluated"), default=(0.0, 0))
        self.generation_of = {e.id: e.generation for e in events if e.kind == "individual_born"}
        self._writer = EventWriter(self.run_dir / EVENTS_FILE)
        self._lock = threading.Lock()
        self.signals = RunSignals()
        self.server = ControlServer(self.run_dir, self.signals)
        self.server.on_request = self._on_request
        self._pid_fd: int | None = None

    def __enter__(self) -> FakeEngine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self._pid_fd = acquire_lock(self.run_dir)
        self.server.set_evolution(self)
        self.server.start()

    def close(self) -> None:
        self.server.close()
        if self._pid_fd is not None:
            release_lock(self.run_dir)  # the engine reads as gone
            self._pid_fd = None
        self._writer.close()

    def emit(self, event: Any) -> None:
        with self._lock:
            self._writer.emit(event)

    def confirm_pause(self) -> None:
        self.state = "paused"
        self.emit(Paused(generation=self.generation))

    # ---- what the control server asks of an evolution --------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {"state": self.state, "generation": self.generation, "generations": None, "individual": None,
                "population": None, "best_id": self.best[1], "best_fitness": self.best[0], "pid": os.getpid()}

    def export(self, individual: int | None, out: Path | None, reason: str = "request") -> tuple[Path, Path]:
        ind = self.best[1] if individual is None else individual
        folder = self.run_dir / "learngenes"
        folder.mkdir(exist_ok=True)
        gen = self.generation_of.get(ind, 0)  # the engine's names (engine.evolution.loop.Evolution.export)
        name = f"best-g{gen:04d}-i{ind}" if individual is None else f"ind{ind}-g{gen:04d}"
        path = out.with_suffix(".safetensors") if out is not None else folder / f"{name}.safetensors"
        manifest = path.with_suffix(".json")
        path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")  # an empty safetensors file
        manifest.write_text(json.dumps({"individual": ind, "fraction": 0.2}))
        self.emit(LearngeneExported(path=str(path), individual=ind, fitness=self.best[0], fraction=0.2,
                                    reason=reason))
        return path, manifest

    def _on_request(self, req: dict[str, Any]) -> None:
        """What the engine's training thread does on each request (the server then replies with ``status``)."""
        self.requests.append(req)
        cmd = req["cmd"]
        if cmd == "pause" and self.state == "running":
            self.state = "pausing"
            if self.auto_confirm_pause:
                self.confirm_pause()
        elif cmd == "resume" and self.state in ("pausing", "paused"):
            self.state = "running"
            self.emit(Resumed(generation=self.generation))
        elif cmd == "stop":
            self.state = "stopping"
            self.emit(RunFinished(status="stopped", generations_done=self.generation))


async def wait_for(pilot: Any, cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the app run until ``cond()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


__all__ = ["FakeEngine", "make_run", "short_dir", "wait_for", "PID_FILE"]
