"""The run directory: its file and folder names, its lock, whether an engine lives in it, the states a run ends in.

A run directory ``<runs dir>/<name>/`` holds ``config.toml`` (the resolved config), ``events.jsonl``,
``checkpoints/``, ``learngenes/`` and ``evaluations/``; while an engine runs it, ``engine.pid`` (locked by that
engine), ``engine.log`` and ``control.sock`` (a background engine only). No torch here: the CLI and the monitor
read run directories through this module.

Liveness is decided by the lock on ``engine.pid`` and nothing else that a pid alone could fake: the kernel drops a
``flock`` when its process dies (before it is reaped, so a zombie is not alive), and a pid written in a file or in
the log may name an unrelated process after a reboot or on a busy server.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

CONFIG_FILE = "config.toml"
EVENTS_FILE = "events.jsonl"
CHECKPOINTS_DIR = "checkpoints"
LEARNGENES_DIR = "learngenes"
EVALUATIONS_DIR = "evaluations"
PID_FILE = "engine.pid"
LOG_FILE = "engine.log"
SOCKET_NAME = "control.sock"
ERROR_FILE = "error.txt"  # the traceback of a failed run
#: The best learngene of generation 0, exported once when that generation completes.
GEN0_NAME = "gen0-best"

#: ``run_finished`` status -> the state ``ls``, ``status`` and the monitor show.
FINISHED_STATES = {"completed": "finished", "stopped": "stopped", "failed": "failed"}
#: States in which an engine process is alive.
LIVE_STATES = ("starting", "running", "pausing", "paused", "stopping")


class RunDirError(ValueError):
    """A run directory is missing, foreign, unusable or in use (one-line message)."""


def checkpoint_name(generation: int) -> str:
    """The file name of the checkpoint written after ``generation`` (in :data:`CHECKPOINTS_DIR`)."""
    return f"gen_{generation:05d}.safetensors"


def check_run_dir(run_dir: str | Path) -> Path:
    """A run directory that exists and holds a run; raises :class:`RunDirError` otherwise."""
    p = Path(run_dir).expanduser()
    if not p.is_dir():
        raise RunDirError(f"{p}: no such run directory")
    if not (p / CONFIG_FILE).is_file():
        raise RunDirError(f"{p}: not a gtl-tui run directory (no {CONFIG_FILE})")
    return p


# The fds of the locks this process holds, by resolved run directory: a second flock on another fd of the same
# file fails even in the process that holds the first, so whoever runs in a directory asks :func:`holds_lock`.
_held: dict[Path, int] = {}


def acquire_lock(run_dir: str | Path) -> int | None:
    """Lock ``engine.pid`` exclusively and write our pid into it; returns the fd that holds the lock (until
    :func:`release_lock`, or until this process dies), or None when another process holds the lock."""
    key = Path(run_dir).resolve()
    if key in _held:
        return _held[key]
    fd = lock_pid_file(key / PID_FILE)
    if fd is not None:
        _held[key] = fd
    return fd


def lock_pid_file(path: Path) -> int | None:
    """Lock the pid file ``path`` exclusively and write our pid into it; the fd that holds the lock (it dies with
    this process), or None when another process holds it. The engine's ``engine.pid`` and a sweep's ``sweep.pid``."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    os.fsync(fd)
    return fd


def release_lock(run_dir: str | Path) -> None:
    """Release the lock this process holds on ``run_dir`` (nothing when it holds none)."""
    fd = _held.pop(Path(run_dir).resolve(), None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def holds_lock(run_dir: str | Path) -> bool:
    """Whether this process holds ``run_dir``'s lock."""
    return Path(run_dir).resolve() in _held


def live_engine_pid(run_dir: str | Path) -> int | None:
    """The pid of the engine that holds ``run_dir``'s lock, or None when no engine holds it.

    The lock dies with its process, so a stale ``engine.pid`` (or a reused pid) never reads as alive.
    Returns 0 when the lock is held but the pid is not written yet (an engine just starting).
    """
    return pid_file_holder(Path(run_dir) / PID_FILE)


def pid_file_holder(path: Path) -> int | None:
    """The pid of the live process that holds the lock on the pid file ``path`` (0: held, the pid not written yet),
    or None when no process holds it: a stale file, or a reused pid, never reads as alive."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # held: its process is alive
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        for _ in range(20):
            os.lseek(fd, 0, os.SEEK_SET)
            text = os.read(fd, 64).decode(errors="replace").strip()
            if text.isdigit():
                return int(text)
            time.sleep(0.025)
        return 0
    finally:
        os.close(fd)
