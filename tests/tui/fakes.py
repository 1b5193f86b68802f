"""Scripted runs and a fake engine for the monitor's tests: no torch, no training.

``make_run`` writes a realistic scripted run (``gtl_tui.scripted``) into a run directory. ``FakeEngine``
serves the real control protocol (``engine.control.client``) on ``<run dir>/control.sock`` from a thread, holds
the engine lock on ``engine.pid`` like the real daemon, and answers the way the engine does: a pause is
confirmed by a ``paused`` event in the log (at once, or when the test calls ``confirm_pause``), an export
writes a real learngene file and its manifest.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from engine.events import (
    EVENTS_FILE,
    EventWriter,
    LearngeneExported,
    Paused,
    Resumed,
    RunFinished,
    read_events,
)
from engine.rundir import PID_FILE, SOCKET_NAME, acquire_lock, release_lock
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
    """Serves ``control.sock`` for a run directory whose log it appends to.

    Args:
        auto_confirm_pause: log ``paused`` right after a pause request; when False the test decides when
            (``confirm_pause``), so the "pausing" state can be observed.
    """

    def __init__(self, run_dir: Path, *, auto_confirm_pause: bool = True):
        self.run_dir = Path(run_dir)
        self.auto_confirm_pause = auto_confirm_pause
        self.requests: list[dict[str, Any]] = []
        self.state = "running"
        events, _ = read_events(self.run_dir / EVENTS_FILE)
        self.generation = max((getattr(e, "generation", 0) for e in events), default=0)
        self.best = max(((e.fitness, e.id) for e in events if e.kind == "individual_evaluated"), default=(0.0, 0))
        self._writer = EventWriter(self.run_dir / EVENTS_FILE)
        self._lock = threading.Lock()
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._pid_fd: int | None = None
        self._stopping = threading.Event()

    def __enter__(self) -> FakeEngine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self._pid_fd = acquire_lock(self.run_dir)
        path = self.run_dir / SOCKET_NAME
        if len(str(path)) > 100:
            raise ValueError(f"socket path too long for AF_UNIX: {path} (use short_dir())")
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(4)
        self._server.settimeout(0.1)
        self._thread = threading.Thread(target=self._serve, name="fake-engine", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._server is not None:
            self._server.close()
        with contextlib.suppress(FileNotFoundError):
            (self.run_dir / SOCKET_NAME).unlink()
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

    def _serve(self) -> None:
        assert self._server is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                buf = b""
                while True:
                    try:
                        chunk = conn.recv(65536)
                    except OSError:
                        break
                    if not chunk:
                        break
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        conn.sendall(json.dumps(self._reply(line)).encode() + b"\n")

    def _reply(self, line: bytes) -> dict[str, Any]:
        try:
            req = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "malformed request"}
        self.requests.append(req)
        cmd = req.get("cmd")
        if cmd == "status":
            return {"ok": True, "state": self.state, "generation": self.generation, "pid": os.getpid()}
        if cmd == "pause":
            self.state = "pausing"
            if self.auto_confirm_pause:
                self.confirm_pause()
            return {"ok": True, "state": self.state}
        if cmd == "resume":
            self.state = "running"
            self.emit(Resumed(generation=self.generation))
            return {"ok": True, "state": self.state}
        if cmd == "stop":
            self.state = "stopping"
            self.emit(RunFinished(status="stopped", generations_done=self.generation))
            return {"ok": True, "state": self.state}
        if cmd == "export":
            return self._export(req)
        return {"ok": False, "error": f"unknown command {cmd!r}"}

    def _export(self, req: dict[str, Any]) -> dict[str, Any]:
        ind = int(req.get("individual", self.best[1]))
        out = self.run_dir / "learngenes"
        out.mkdir(exist_ok=True)
        path = out / f"gene-ind{ind}.safetensors"
        manifest = path.with_suffix(".json")
        path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")  # an empty safetensors file
        manifest.write_text(json.dumps({"individual": ind, "fraction": 0.2}))
        self.emit(LearngeneExported(path=str(path), individual=ind, fitness=self.best[0], fraction=0.2,
                                    reason="request"))
        return {"ok": True, "path": str(path), "manifest": str(manifest),
                "scp": f"scp gpu-box:{path} ."}



async def wait_for(pilot: Any, cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the app run until ``cond()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


__all__ = ["FakeEngine", "make_run", "short_dir", "wait_for", "PID_FILE"]
