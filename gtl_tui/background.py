"""Start the engine as a background process and watch it: ``gtl-tui run`` without ``--headless``.

The engine (``python -m engine.run.daemon RUN_DIR``) runs in its own session, so it survives the terminal closing and
an SSH disconnect; its stdin is /dev/null and its output goes to ``<run dir>/engine.log``. Quitting the monitor
never stops it. No torch import here: the launcher returns as soon as the engine's control socket answers.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from engine.control.client import ControlClient, ControlError
from engine.rundir import LOG_FILE, live_engine_pid

START_TIMEOUT_S = 120.0


class EngineStartError(RuntimeError):
    """The background engine died or did not answer while starting (message: one line plus the log tail)."""


def log_tail(run_dir: Path, lines: int = 15) -> str:
    try:
        text = (run_dir / LOG_FILE).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _engine_env() -> dict[str, str]:
    """The environment of the engine: unbuffered output, and ``engine`` importable from wherever we run."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    spec = importlib.util.find_spec("engine")
    if spec is not None and spec.submodule_search_locations:
        root = str(Path(next(iter(spec.submodule_search_locations))).resolve().parent)
        parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        if root not in parts:
            env["PYTHONPATH"] = os.pathsep.join([root, *parts])
    return env


def start_engine(run_dir: str | Path, timeout: float = START_TIMEOUT_S, wait_loaded: bool = False,
                 env: dict[str, str] | None = None) -> int:
    """Spawn the background engine for ``run_dir`` and wait until its control socket answers; returns its pid.

    ``wait_loaded``: also wait until the engine has loaded its data and built the evolution (its state leaves
    ``starting``), so that a bad data root is reported here, not only later in ``status`` (``run --detach``).
    ``env``: variables added to the engine's environment (a sweep gives each engine its GPU this way).

    Raises:
        EngineStartError: the engine exited (the message holds the tail of ``engine.log``) or did not answer
            within ``timeout`` seconds.
    """
    run_dir = Path(run_dir).expanduser().resolve()
    try:
        log_fd = os.open(run_dir / LOG_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)  # owner-only
        with open(log_fd, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "engine.run.daemon", str(run_dir)], stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, cwd=run_dir, env={**_engine_env(), **(env or {})},
                close_fds=True)
    except OSError as err:
        raise EngineStartError(f"cannot start the engine in {run_dir}: {err}") from None
    # reap it when it ends while we are still around (a zombie would look alive to a pid check)
    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            if wait_loaded and proc.returncode == 0:  # loaded, ran and finished already (a tiny run)
                return proc.pid
            tail = log_tail(run_dir)
            raise EngineStartError(f"the engine exited with code {proc.returncode} while starting "
                                   f"(log: {run_dir / LOG_FILE})" + (f"\n{tail}" if tail else ""))
        try:
            with ControlClient(run_dir, timeout=2.0) as c:
                reply = c.request("status")
            if reply.get("pid") == proc.pid and not (wait_loaded and reply.get("state") == "starting"):
                return proc.pid
        except ControlError:
            pass
        time.sleep(0.1)
    raise EngineStartError(f"the engine (pid {proc.pid}) did not answer within {timeout:.0f}s; "
                           f"see {run_dir / LOG_FILE}")


def follow_lines(run_dir: Path, console: Console) -> None:
    """The plain fallback monitor: print progress lines until the run ends, the engine dies, or Ctrl-C."""
    from engine.events import EVENTS_FILE, EventFollower, RunFinished
    from gtl_tui.progress import ProgressView

    view = ProgressView(console)
    follower = EventFollower(run_dir / EVENTS_FILE)
    gone_since: float | None = None
    with view.progress:
        while True:
            for e in follower.poll():
                view(e)
                if isinstance(e, RunFinished):
                    console.print(f"run finished: {e.status}" + (f" ({e.error})" if e.error else ""))
                    return
            if live_engine_pid(run_dir) is None:
                gone_since = gone_since or time.monotonic()
                if time.monotonic() - gone_since > 2.0:  # let the last events land first
                    console.print(f"[red]the engine is gone[/] (see {run_dir / LOG_FILE}); "
                                  f"continue with: gtl-tui run --resume {run_dir}")
                    return
            time.sleep(0.3)


def start_and_monitor(run_dir: str | Path, detach: bool = False, resume: bool = False) -> int:
    """Start the background engine for ``run_dir``, then print the directory (``detach``) or open the monitor.

    Returns the process exit code.
    """
    console = Console(stderr=True)
    run_dir = Path(run_dir).expanduser().resolve()
    try:
        pid = start_engine(run_dir, wait_loaded=detach)
    except EngineStartError as err:
        console.print(f"[red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        return 1
    if detach:
        print(run_dir)
        console.print(f"engine running in the background (pid {pid}); watch it with: gtl-tui attach {run_dir}",
                      highlight=False, soft_wrap=True)
        return 0
    if importlib.util.find_spec("gtl_tui.app") is not None:
        from gtl_tui.app import open_monitor  # it prints how to re-attach when it closes

        result = open_monitor(run_dir)
        return result if isinstance(result, int) else 0
    try:
        follow_lines(run_dir, console)
    except KeyboardInterrupt:
        pass
    if live_engine_pid(run_dir) is not None:
        console.print(f"The engine keeps running (pid {pid}). Re-attach with: gtl-tui attach {run_dir}",
                      highlight=False, soft_wrap=True)
    return 0
