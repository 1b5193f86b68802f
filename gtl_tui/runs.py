"""Run discovery and state, for ``gtl-tui ls``/``status`` and the control verbs. No torch import.

A run's state comes from three places: the tail of its event log (a finished run's last event is
``run_finished``), the lock its engine (background or ``--headless``) holds on ``engine.pid`` (alive or not, immune
to stale pid files, reused pids and zombies: :mod:`engine.rundir`), and, while a background engine lives, its
control socket (running, pausing, paused, stopping, starting). A run whose log
does not end with ``run_finished`` and whose engine is gone has crashed; ``gtl-tui run --resume`` continues it.
A run directory with no event log at all and no engine was created and never started (``created``: a sweep's run
queued on a Ray cluster, or a start cut short); ``gtl-tui run --resume`` starts it.
The log is read backwards from its end, so ``ls`` stays fast on long runs.
"""

from __future__ import annotations

import os
import time
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.control.client import ControlBusy, ControlError, send
from engine.events import Event, GenerationCompleted, RunFinished, RunStarted, parse_line
from engine.rundir import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    EVENTS_FILE,
    FINISHED_STATES,
    LEARNGENES_DIR,
    LIVE_STATES,
    PID_FILE,
    SOCKET_NAME,
    RunDirError,
    check_run_dir,
    live_engine_pid,
)

_CHUNK = 1 << 16

@dataclass
class RunInfo:
    """What ``ls`` and ``status`` show about one run."""

    path: str
    name: str
    state: str  # one of LIVE_STATES, finished, stopped, failed, crashed, created (never started)
    generation: int  # generations completed
    generations: int | None
    population: int | None
    best_id: int | None
    best_fitness: float | None
    pid: int | None  # the live engine's pid
    controllable: bool  # a background engine answers on control.sock
    individual: int | None = None  # individuals done in the current generation (live engines only)
    error: str | None = None
    updated: float | None = None  # unix time of the last event

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LogTail:
    last: Event | None = None
    last_generation: GenerationCompleted | None = None
    last_started: RunStarted | None = None


def read_tail(path: Path, want_started: bool = False) -> LogTail:
    """The last event, the last ``generation_completed`` and (when asked) the last ``run_started`` of a log,
    reading backwards in chunks and parsing only the lines it needs. A torn last line is ignored."""
    tail = LogTail()
    try:
        f = open(path, "rb")  # noqa: SIM115
    except OSError:
        return tail
    with f:
        pos = f.seek(0, os.SEEK_END)
        rest: bytes | None = None  # the (incomplete) first line of the chunk read last
        while pos > 0:
            n = min(_CHUNK, pos)
            pos -= n
            f.seek(pos)
            data = f.read(n) + (rest if rest is not None else b"")
            lines = data.split(b"\n")
            if rest is None:
                lines.pop()  # after the last newline: empty, or a torn line still being written
            rest = lines.pop(0) if pos > 0 else None
            for line in reversed(lines):
                if _take(tail, line, want_started):
                    return tail
        if rest:
            _take(tail, rest, want_started)
    return tail


def _take(tail: LogTail, line: bytes, want_started: bool) -> bool:
    """Fold one line (seen newest first) into ``tail``; True when nothing more is needed."""
    if not line.strip():
        return False
    if tail.last is None:
        tail.last = parse_line(line)
    if tail.last_generation is None and b'"generation_completed"' in line:
        e = parse_line(line)
        if isinstance(e, GenerationCompleted):
            tail.last_generation = e
    if want_started and tail.last_started is None and b'"run_started"' in line:
        e = parse_line(line)
        if isinstance(e, RunStarted):
            tail.last_started = e
    return (tail.last is not None and tail.last_generation is not None
            and (tail.last_started is not None or not want_started))


def _config_numbers(run_dir: Path) -> tuple[int | None, int | None]:
    try:
        evo = tomllib.loads((run_dir / CONFIG_FILE).read_text()).get("evolution", {})
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None, None
    gens, pop = evo.get("generations"), evo.get("population")
    return (gens if isinstance(gens, int) else None, pop if isinstance(pop, int) else None)


def engine_status(run_dir: Path, timeout: float = 3.0) -> dict[str, Any] | None:
    """The live engine's status reply, or None when nothing answers on the socket."""
    if not (run_dir / SOCKET_NAME).exists():
        return None
    try:
        return send(run_dir, "status", timeout=timeout)
    except ControlBusy:  # it answers, but every client slot is taken: controllable, state unknown
        return {"state": "running", "busy": True}
    except ControlError:
        return None


def read_run(run_dir: str | Path, *, query: bool = True) -> RunInfo:
    """The state of the run in ``run_dir`` (``query``: ask a live engine for its exact state)."""
    p = check_run_dir(run_dir)
    generations, population = _config_numbers(p)
    engine_pid = live_engine_pid(p)
    tail = read_tail(p / EVENTS_FILE, want_started=engine_pid is not None)
    gc = tail.last_generation
    info = RunInfo(path=str(p), name=p.name, state="crashed", generation=gc.generation + 1 if gc else 0,
                   generations=generations, population=population,
                   best_id=gc.elite_id if gc else None, best_fitness=gc.elite_fitness if gc else None,
                   pid=None, controllable=False, updated=tail.last.t if tail.last else None)
    # Alive means: a process holds the lock on engine.pid, or an engine answers on the socket (engine.pid was
    # removed under it). Never a pid alone: the one in run_started may be reused, or an unreaped zombie.
    reply = engine_status(p) if query else None
    if engine_pid is not None or reply is not None:
        info.pid = engine_pid or (reply or {}).get("pid") or None
        if reply is not None:
            info.controllable = True
            info.state = str(reply.get("state", "running"))
            info.individual = reply.get("individual")
            if isinstance(reply.get("generation"), int):
                info.generation = reply["generation"]
        elif (p / SOCKET_NAME).exists():
            info.state = "running"  # a busy engine, or the caller did not query it
        else:  # a --headless run has no socket; a background engine not yet serving has not logged its start
            started = tail.last_started
            info.state = "running" if started is not None and started.pid == engine_pid else "starting"
        return info
    if tail.last is None and not (p / EVENTS_FILE).exists():
        info.state = "created"
    if isinstance(tail.last, RunFinished):
        info.state = FINISHED_STATES.get(tail.last.status, tail.last.status)
        info.error = tail.last.error
        if tail.last.best_fitness is not None:
            info.best_id, info.best_fitness = tail.last.best_id, tail.last.best_fitness
    return info


def is_run_dir(p: Path) -> bool:
    return p.is_dir() and (p / CONFIG_FILE).is_file() and ((p / EVENTS_FILE).exists() or (p / PID_FILE).exists()
                                                          or (p / CHECKPOINTS_DIR).is_dir())


def find_runs(runs_dir: str | Path) -> list[RunInfo]:
    """Every run directly under ``runs_dir``, oldest first."""
    root = Path(runs_dir).expanduser()
    if not root.is_dir():
        raise RunDirError(f"{root}: no such runs directory" if not root.exists() else f"{root}: not a directory")
    if is_run_dir(root):  # a run directory itself: list just that run
        return [read_run(root)]
    # hidden names are run directories still being built (engine.run.runner.create_run_dir), never runs
    runs = [read_run(d) for d in sorted(root.iterdir()) if not d.name.startswith(".") and is_run_dir(d)]
    return sorted(runs, key=lambda r: (r.updated or 0.0, r.name))


def final_learngene(run_dir: Path) -> Path | None:
    """The newest ``best-*`` learngene in ``learngenes/`` that has its manifest (else any newest one)."""
    d = Path(run_dir) / LEARNGENES_DIR
    if not d.is_dir():
        return None
    genes = [p for p in d.glob("*.safetensors") if p.with_suffix(".json").is_file()]
    if not genes:
        return None
    return max(genes, key=lambda p: (p.name.startswith("best-"), p.stat().st_mtime))


def age(t: float | None) -> str:
    """'12s ago', '5m ago', '3h ago', '2d ago'."""
    if t is None:
        return "-"
    s = max(0.0, time.time() - t)
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= n:
            return f"{int(s // n)}{unit} ago"
    return f"{int(s)}s ago"


def resume_problem(run_dir: str | Path, *, extending: bool = False) -> str | None:
    """Why the run in ``run_dir`` cannot be resumed now (one line), or None. ``extending``: it is being given
    more generations, so a completed run may go on."""
    info = read_run(run_dir)
    if info.live:
        return (f"the engine of {run_dir} is still running (pid {info.pid}, {info.state}): attach with "
                f"gtl-tui attach {run_dir}, or stop it with gtl-tui stop {run_dir}")
    if info.state == "finished" and not extending:
        return (f"{run_dir} has already completed {info.generation} generations; continue it for more with "
                f"--generations N")
    return None
