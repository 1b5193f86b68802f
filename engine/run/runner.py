"""Running an evolution in a run directory: create one, run it, resume it, capture failures as events.

What a run directory holds, its lock and its states are in :mod:`engine.rundir`.
"""

from __future__ import annotations

import re
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from engine import events as ev
from engine.atomic import write_atomic
from engine.config import Config, ConfigError, load_config
from engine.run.signals import RunSignals
from engine.rundir import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    ERROR_FILE,
    LEARNGENES_DIR,
    RunDirError,
    acquire_lock,
    check_run_dir,
    holds_lock,
    live_engine_pid,
    release_lock,
)

__all__ = ["RunDirError", "check_run_dir", "create_run_dir", "extend_run", "load_run_config", "run_in_dir"]


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"config error: run.device: {spec!r} requested but CUDA is not available")
    return torch.device(spec)


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads for torch's operators (0: torch's default)."""
    if threads > 0:
        torch.set_num_threads(threads)


def create_run_dir(cfg: Config, runs_dir: str | Path = "runs", name: str | None = None) -> Path:
    """Create ``<runs_dir>/<name>`` (default name: config name plus timestamp) and write the resolved config."""
    name = name or f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise RunDirError(f"run name {name!r}: use letters, digits, '.', '_' and '-' only")
    run_dir = Path(runs_dir).expanduser() / name
    base, n = run_dir, 1
    while run_dir.exists():  # never reuse a run directory
        run_dir = base.with_name(f"{base.name}-{n}")
        n += 1
    (run_dir / CHECKPOINTS_DIR).mkdir(parents=True)
    (run_dir / LEARNGENES_DIR).mkdir()
    (run_dir / CONFIG_FILE).write_text(cfg.to_toml())
    return run_dir


def load_run_config(run_dir: str | Path) -> Config:
    return load_config(check_run_dir(run_dir) / CONFIG_FILE)


def extend_run(run_dir: str | Path, generations: int) -> Config:
    """Set the run's length to ``generations`` (more than it has completed), so that resuming it goes on.

    Only ``evolution.generations`` changes (it decides no generation's computation); the run's config is
    rewritten atomically. Raises RunDirError when the run has already completed that many generations.
    """
    from engine.run.checkpoint import latest_checkpoint, load_checkpoint

    run_dir = check_run_dir(run_dir)
    cfg = load_run_config(run_dir)
    path = latest_checkpoint(run_dir)
    done = load_checkpoint(path)[0]["generation"] if path is not None else 0
    if generations <= done:
        raise RunDirError(f"{run_dir} has completed {done} generations; --generations must be more than that")
    new = cfg.with_generations(generations)
    Config.model_validate(new.to_dict())  # the same checks as any config
    write_atomic(run_dir / CONFIG_FILE, new.to_toml())
    return new


def run_in_dir(run_dir: str | Path, *, signals: RunSignals | None = None,
               listeners: list[Callable[[ev.Event], None]] | None = None,
               on_evolution: Callable[[object], None] | None = None) -> ev.RunFinished:
    """Run (or continue, when it has checkpoints) the evolution of ``run_dir``.

    Any error is written to the log as ``run_finished`` with status ``failed`` before it propagates.
    ``on_evolution`` receives the :class:`~engine.evolution.loop.Evolution` once built (the control server
    uses it for status and export). The run directory's lock is held throughout (the background engine takes it
    before calling this; a --headless run takes it here); raises RunDirError, having written nothing, when
    another process holds it.
    """
    run_dir = check_run_dir(run_dir)
    if holds_lock(run_dir):
        return _run_locked(run_dir, signals, listeners, on_evolution)
    if acquire_lock(run_dir) is None:
        raise RunDirError(f"another engine (pid {live_engine_pid(run_dir)}) is running {run_dir}")
    try:
        return _run_locked(run_dir, signals, listeners, on_evolution)
    finally:
        release_lock(run_dir)


def _run_locked(run_dir: Path, signals: RunSignals | None, listeners: list[Callable[[ev.Event], None]] | None,
                on_evolution: Callable[[object], None] | None) -> ev.RunFinished:
    from engine.data import load_dataset
    from engine.evolution.loop import Evolution

    cfg = load_run_config(run_dir)
    writer = ev.EventWriter(run_dir / ev.EVENTS_FILE)
    for fn in listeners or []:
        writer.add_listener(fn)
    try:
        device = resolve_device(cfg.run.device)
        set_threads(cfg.run.threads)
        dataset = load_dataset(cfg.data)
        evolution = Evolution(cfg, run_dir, dataset=dataset, device=device, writer=writer, signals=signals)
        if on_evolution is not None:
            on_evolution(evolution)
        return evolution.run()
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt):
            writer.emit(ev.RunFinished(status="stopped", error="interrupted"))
        else:
            writer.emit(ev.RunFinished(status="failed", error=f"{type(err).__name__}: {err}"))
            (run_dir / ERROR_FILE).write_text(traceback.format_exc())
        raise
    finally:
        writer.close()
