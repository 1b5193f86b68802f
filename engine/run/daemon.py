"""The background engine process: ``python -m engine.run.daemon RUN_DIR``.

It owns its run directory through an exclusive lock on ``engine.pid`` (which holds its pid), serves the control
socket (:mod:`engine.control.server`), runs or continues the evolution, and removes the socket when it exits.
SIGTERM (or SIGINT) stops gracefully at the next safe point (checkpoint, then ``run_finished`` stopped); a second
one aborts. Output goes to stdout/stderr, which the launcher points at ``engine.log``.

Exit codes: 0 completed or stopped, 1 failed, 2 bad run directory or config, 3 another engine owns the run
directory, 130 aborted.

The run directory's names and lock are in :mod:`engine.rundir`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from types import FrameType

from engine.control.client import ControlClient, ControlError
from engine.rundir import CONFIG_FILE, SOCKET_NAME, RunDirError, acquire_lock, live_engine_pid, release_lock


def _socket_answers(run_dir: Path) -> int | None:
    """The pid reported by a live control socket in ``run_dir``, or None."""
    if not (run_dir / SOCKET_NAME).exists():
        return None
    try:
        with ControlClient(run_dir, timeout=2.0) as c:
            return int(c.request("status").get("pid") or 0)
    except (ControlError, ValueError, TypeError):
        return None


def _log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}", flush=True)


def _log_event(e: object) -> None:
    from engine import events as ev

    if isinstance(e, ev.GenerationCompleted):
        _log(f"generation {e.generation}: best {e.best:.4f} mean {e.mean:.4f} elite {e.elite_fitness:.4f} "
             f"({e.seconds:.1f}s)")
    elif isinstance(e, (ev.Paused, ev.Resumed, ev.RunStarted, ev.LearngeneExported, ev.RunFinished)):
        _log(f"{e.kind}: " + ", ".join(f"{k}={v}" for k, v in e.to_dict().items()
                                     if k not in ("kind", "v", "seq", "t", "config")))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m engine.run.daemon RUN_DIR", file=sys.stderr)
        return 2
    run_dir = Path(args[0]).expanduser().resolve()
    if not (run_dir / CONFIG_FILE).is_file():
        print(f"error: {run_dir}: not a gtl-tui run directory (no {CONFIG_FILE})", file=sys.stderr)
        return 2
    lock_fd = acquire_lock(run_dir)
    if lock_fd is None:
        print(f"error: another engine (pid {live_engine_pid(run_dir)}) is running {run_dir}", file=sys.stderr)
        return 3
    other = _socket_answers(run_dir)
    if other is not None and other != os.getpid():
        release_lock(run_dir)
        print(f"error: another engine (pid {other}) answers on {run_dir / SOCKET_NAME}", file=sys.stderr)
        return 3

    from engine.control.server import ControlServer
    from engine.run.signals import RunSignals

    signals = RunSignals()
    server = ControlServer(run_dir, signals)
    try:
        server.start()
    except OSError as err:
        release_lock(run_dir)
        print(f"error: cannot serve {run_dir / SOCKET_NAME}: {err}", file=sys.stderr)
        return 1

    def on_signal(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if signals.stop_requested or server.evolution is None:
            _log(f"{name}: aborting")
            raise KeyboardInterrupt
        _log(f"{name}: stopping at the next safe point")
        threading.Thread(target=signals.request_stop, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _log(f"engine started: pid {os.getpid()}, run {run_dir}")
    code = 1
    try:
        from engine.config import ConfigError
        from engine.data import DataError
        from engine.run.runner import run_in_dir

        try:
            finished = run_in_dir(run_dir, signals=signals, listeners=[_log_event],
                                  on_evolution=server.set_evolution)
        except (ConfigError, RunDirError, DataError) as err:  # one line in engine.log; the log has run_finished
            print(f"error: {err}", file=sys.stderr)
            code = 2
        else:
            server.set_finished(finished.status)
            code = 0 if finished.status in ("completed", "stopped") else 1
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # the event log has run_finished(failed); the traceback goes to engine.log
        traceback.print_exc()
        code = 1
    finally:
        server.close()
        release_lock(run_dir)
        _log(f"engine exiting with code {code}")
    return code


if __name__ == "__main__":
    sys.exit(main())
