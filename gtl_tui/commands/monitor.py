"""``attach`` and ``replay``: open the monitor on a run, local or over ssh, or play its log back. No torch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from gtl_tui.commands.common import DEFAULT_RUNS_DIR, RunArg, RunsDirOpt, fail, resolve_run

ATTACH_FIRST_WAIT_S = 15.0  # how long `attach ssh://...` waits for its first connection before opening the monitor

def _monitorable(run_dir: Path) -> Path:
    """The run directory, or a one-line error and exit code 2."""
    from gtl_tui.sources import run_dir_problem

    problem = run_dir_problem(run_dir)
    if problem is not None:
        raise fail(f"error: {problem}")
    return run_dir


def default_fetch_dir(host: str, run_path: str) -> Path:
    """Where a remote run's exports land on this machine by default: one folder per host and run in the user's
    data folder, not ``./learngenes`` of wherever the user happens to stand."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "gtl-tui" / "learngenes" / host / (Path(run_path).name or "run")


def attach(
    run: Annotated[str, typer.Argument(
        help="A run (its directory, or its name in --runs-dir), a folder of runs, or ssh://[user@]host[:port]/path.",
        show_default=False)],
    refresh: Annotated[float | None, typer.Option("--refresh", min=0.05,
                                                  help="Seconds between reads of the log.")] = None,
    low_bandwidth: Annotated[bool | None, typer.Option(
        "--low-bandwidth/--no-low-bandwidth",
        help="1 s refresh, no animation (default: on when SSH_CONNECTION is set).")] = None,
    remote_cmd: Annotated[str | None, typer.Option(
        "--remote-cmd", help="gtl-tui on the server, e.g. ~/venv/bin/gtl-tui (env GTL_TUI_REMOTE_CMD).")] = None,
    fetch_dir: Annotated[Path | None, typer.Option(
        "--fetch-dir", help="Where exports of a remote run are copied [default: "
        "$XDG_DATA_HOME/gtl-tui/learngenes/HOST/RUN, i.e. ~/.local/share/...].", show_default=False)] = None,
    runs_dir: RunsDirOpt = DEFAULT_RUNS_DIR,
) -> None:
    """Open the monitor on a run, local or over SSH (on a folder of runs: the Runs screen); quitting leaves the
    engine running."""
    from gtl_tui.app import open_monitor

    if low_bandwidth is None:
        low_bandwidth = bool(os.environ.get("SSH_CONNECTION"))
    interval = refresh if refresh is not None else (1.0 if low_bandwidth else 0.25)
    if run.startswith("ssh://"):
        from gtl_tui.remote.client import RemoteRun, SSHTarget

        try:
            target = SSHTarget.parse(run)
        except ValueError as err:
            raise fail(f"error: {err}") from None
        remote = RemoteRun.over_ssh(target, remote_cmd=remote_cmd,
                                    fetch_dir=fetch_dir or default_fetch_dir(target.host, target.path))
        # A first connection that cannot work ends here, in one line, rather than in a monitor that reconnects
        # forever; a slow one (or a server down for now) opens the monitor, which shows the retries.
        if not remote.wait_connected(ATTACH_FIRST_WAIT_S) and remote.fatal is not None:
            remote.close()
            raise fail(f"error: {run}: {remote.fatal}")
        try:
            open_monitor(Path(target.path), event_source=remote, controller=remote, refresh_interval=interval,
                         remote=run)
        finally:
            remote.close()
        return
    from gtl_tui.experiments.runs_index import holds_runs

    local = resolve_run(Path(run), runs_dir)
    if holds_runs(local):  # a folder of runs or a sweep: the Runs screen
        from gtl_tui.screens.runs import open_runs

        return open_runs(local)
    open_monitor(_monitorable(local), refresh_interval=interval)


def replay(
    run: RunArg,
    speed: Annotated[float, typer.Option("--speed", min=0.125, help="Log seconds per second of replay.")] = 10.0,
    runs_dir: RunsDirOpt = DEFAULT_RUNS_DIR,
) -> None:
    """Play a run's event log back through the monitor (space pauses, +/- speed, ./, step by generation)."""
    from gtl_tui.app import open_monitor

    open_monitor(_monitorable(resolve_run(run, runs_dir)), replay=True, speed=speed)
