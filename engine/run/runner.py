"""Running an evolution in a run directory: create one, run it, resume it, capture failures as events.

What a run directory holds, its lock and its states are in :mod:`engine.rundir`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from engine import events as ev
from engine.atomic import fsync_dir, write_atomic
from engine.config import Config, ConfigError, load_config
from engine.run.gene_archive import GENES_DIR
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

__all__ = ["RunDirError", "check_run_dir", "check_run_name", "create_run_dir", "extend_run", "load_run_config",
           "run_in_dir"]

#: Longest run name: file names stop at 255 bytes, and names get suffixes ("-1", temporary names).
MAX_NAME = 200
#: Suffix of a run directory being built (renamed to its name when complete; never listed or resumed).
CREATING_SUFFIX = ".creating"


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


def check_run_name(name: str) -> str:
    """``name`` when it is usable as a run directory name: it must stay inside the runs directory (no '/', not
    '.' or '..', not hidden) and fit a file name; raises RunDirError (one line) otherwise."""
    if len(name) > MAX_NAME:
        raise RunDirError(f"run name {name[:24]!r}... is {len(name)} characters long; at most {MAX_NAME}")
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name) or name.startswith("."):
        raise RunDirError(f"run name {name[:60]!r}: use letters, digits, '.', '_' and '-' only, not starting "
                          "with '.'")
    return name


def create_run_dir(cfg: Config, runs_dir: str | Path = "runs", name: str | None = None) -> Path:
    """Create ``<runs_dir>/<name>`` (default name: config name plus timestamp) and write the resolved config.

    The directory is built under a temporary hidden name and renamed when complete, so a failure (a full disk)
    leaves no half run directory that could later be resumed with default settings. It is owner-only (0700):
    another user on a shared server cannot read the log or reach the control socket inside.
    """
    name = check_run_name(name or f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    root = Path(runs_dir).expanduser()
    if root.exists() and not root.is_dir():
        raise RunDirError(f"runs directory {root}: not a directory")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunDirError(f"runs directory {root}: cannot create it ({err.strerror or err})") from None
    text = cfg.to_toml().encode()
    tmp: Path | None = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{name[:60]}.", suffix=CREATING_SUFFIX, dir=root))  # mode 0700
        (tmp / CHECKPOINTS_DIR).mkdir(mode=0o700)
        (tmp / LEARNGENES_DIR).mkdir(mode=0o700)
        fd = os.open(tmp / CONFIG_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, text)
            os.fsync(fd)
        finally:
            os.close(fd)
        run_dir = root / name
        base, n = run_dir, 1
        while run_dir.exists() or run_dir.is_symlink():  # never reuse a run directory
            run_dir = base.with_name(f"{base.name}-{n}")
            n += 1
        os.rename(tmp, run_dir)
        tmp = None
        fsync_dir(root)
    except OSError as err:
        raise RunDirError(f"cannot create a run directory in {root}: {err.strerror or err}") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return run_dir


#: What every resolved config written by :func:`create_run_dir` holds at its top level.
_RESOLVED_KEYS = ("name", "run", "evolution", "lifetime")


def load_run_config(run_dir: str | Path) -> Config:
    """The run's resolved config; raises RunDirError when ``config.toml`` is empty or incomplete (a half-written
    directory must never resume with default settings) and ConfigError when a value is invalid."""
    import tomllib

    path = check_run_dir(run_dir) / CONFIG_FILE
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        data = None
    if not isinstance(data, dict) or any(k not in data for k in _RESOLVED_KEYS):
        raise RunDirError(f"{path}: not a complete run config (empty or damaged); this run cannot be resumed")
    return load_config(path)


def extend_run(run_dir: str | Path, generations: int) -> Config:
    """Set the run's length to ``generations`` (more than it has completed), so that resuming it goes on.

    Only ``evolution.generations`` changes (it decides no generation's computation); the run's config is
    rewritten atomically. Raises RunDirError when the run has already completed that many generations.
    """
    from engine.run.checkpoint import load_latest_valid

    run_dir = check_run_dir(run_dir)
    cfg = load_run_config(run_dir)
    try:
        found = load_latest_valid(run_dir)
    except ValueError as err:
        raise RunDirError(str(err)) from None
    done = found[1]["generation"] if found is not None else 0
    if generations <= done:
        raise RunDirError(f"{run_dir} has completed {done} generations; --generations must be more than that")
    new = cfg.with_generations(generations)
    Config.model_validate(new.to_dict())  # the same checks as any config
    write_atomic(run_dir / CONFIG_FILE, new.to_toml())
    return new


#: Temporary files of an atomic write (``engine.atomic``: ``.NAME.RANDOM.tmp``; checkpoints: ``.NAME.tmpPID``).
_ORPHAN = re.compile(r"^\..+\.tmp\d*$")


def clean_orphans(run_dir: Path) -> list[Path]:
    """Remove the temporary files that writes killed midway left in the run directory; returns them.

    Only called by the process that runs the evolution (it owns the run), before it writes anything: no write
    of its own can be in flight, and every finished write has renamed its temporary file away."""
    removed = []
    for d in (run_dir, run_dir / "checkpoints", run_dir / LEARNGENES_DIR, run_dir / GENES_DIR):
        try:
            entries = list(d.iterdir())
        except OSError:
            continue
        for p in entries:
            if _ORPHAN.match(p.name) and p.is_file() and not p.is_symlink():
                try:
                    p.unlink()
                except OSError:
                    continue
                removed.append(p)
    return removed


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
    clean_orphans(run_dir)
    writer = ev.EventWriter(run_dir / ev.EVENTS_FILE)
    for fn in listeners or []:
        writer.add_listener(fn)
    notifier = None
    if cfg.notify is not None:
        from engine.run.notify import Notifier

        notifier = Notifier(cfg.notify.command, cfg.notify.events, cfg.notify.timeout_s)
        writer.add_listener(notifier)
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
            write_atomic(run_dir / ERROR_FILE, traceback.format_exc())  # 0600, like every file of the run
        raise
    finally:
        writer.close()
        if notifier is not None:
            notifier.close()  # the final run_finished goes out before the engine exits
