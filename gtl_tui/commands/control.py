"""The run-control commands: ``ls``, ``status``, ``pause``, ``resume``, ``stop``, ``export``.

They talk to a background engine over its control socket and read run directories; no torch import.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from engine.control.client import ControlError, send
from engine.rundir import ERROR_FILE, LOG_FILE, RunDirError, live_engine_pid
from gtl_tui.commands.common import (
    DEFAULT_RUNS_DIR,
    EXIT_FAILED,
    EXIT_USAGE,
    RunArg,
    RunsDirOpt,
    fail,
    resolve_run,
)
from gtl_tui.runs import RunInfo, age, final_learngene, find_runs, read_run

WAIT_S = 120.0


def _read(run: Path) -> RunInfo:
    try:
        return read_run(run)
    except RunDirError as err:
        raise fail(f"error: {err}", EXIT_USAGE) from None


def _not_running_hint(info: RunInfo) -> str:
    run = info.path
    if info.state == "finished":
        gene = final_learngene(Path(run))
        return f"its final learngene is {gene}" if gene else "it has completed"
    if info.state == "failed":
        return f"it failed: {info.error or 'see the log'} (details in {Path(run) / LOG_FILE} and {ERROR_FILE})"
    if info.state == "created":
        return f"it never started; start it with: gtl-tui run --resume {run}"
    return f"continue it with: gtl-tui run --resume {run}"


def _controllable(run: Path, verb: str) -> RunInfo:
    """The run's info when a background engine answers on its socket; else one clear line and exit 1."""
    info = _read(run)
    if info.controllable:
        return info
    if info.live:
        raise fail(f"error: cannot {verb} {info.path}: its engine (pid {info.pid}) has no control socket "
                   "(a --headless run or an engine still starting)", EXIT_FAILED)
    raise fail(f"error: cannot {verb} {info.path}: it is not running ({info.state}); {_not_running_hint(info)}",
               EXIT_FAILED)


def _request(run: Path, cmd: str, what: str = "", **args: object) -> dict:
    try:
        return send(run, cmd, **args)
    except ControlError as err:
        raise fail(f"error: {what}{err}", EXIT_FAILED) from None


def _wait_state(run: Path, states: tuple[str, ...], timeout: float) -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reply = send(run, "status", timeout=5.0)
        except ControlError:
            return None
        if reply.get("state") in states:
            return reply
        time.sleep(0.1)
    return None


def ls(folder: Annotated[Path | None, typer.Argument(help="Folder of run directories (default: --runs-dir).",
                                                     show_default=False)] = None,
       runs_dir: RunsDirOpt = DEFAULT_RUNS_DIR) -> None:
    """List the runs in a folder (or a sweep folder) with their state, generation and best fitness."""
    runs_dir = folder if folder is not None else runs_dir
    from gtl_tui.experiments.commands import ls_sweeps

    try:
        runs = find_runs(runs_dir)
    except RunDirError as err:
        raise fail(f"error: {err}", EXIT_USAGE) from None
    if not runs:
        if not ls_sweeps(runs_dir):
            typer.echo(f"no runs in {runs_dir}")
        return
    colors = {"running": "green", "paused": "yellow", "pausing": "yellow", "finished": "bold green",
              "stopped": "cyan", "failed": "red", "crashed": "red",
              "created": "dim"}
    console = Console()
    rows = []
    for r in runs:
        color = colors.get(r.state, "white")
        best = f"{r.best_fitness:.4f} (#{r.best_id})" if r.best_fitness is not None else "-"
        total = r.generations if r.generations is not None else "?"
        rows.append((escape(r.name), f"[{color}]{r.state}[/]", f"{r.generation}/{total}", best,
                     str(r.pid) if r.pid else "-", age(r.updated)))
    # A name is never cut (it is what the other verbs take): on a narrow terminal the least needed columns go first.
    columns = ["RUN", "STATE", "GENERATION", "BEST FITNESS", "PID", "LAST EVENT"]
    widths = [max(len(c), *(Text.from_markup(row[k]).cell_len for row in rows)) for k, c in enumerate(columns)]
    keep = list(range(len(columns)))
    for drop in (4, 5, 3, 2):  # PID, LAST EVENT, BEST FITNESS, GENERATION
        if sum(widths[k] for k in keep) + 2 * (len(keep) - 1) <= console.width:
            break
        keep.remove(drop)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for k in keep:
        table.add_column(columns[k], no_wrap=k == 0, min_width=widths[0] if k == 0 else None,
                         justify="right" if columns[k] in ("GENERATION", "BEST FITNESS", "PID") else "left")
    for row in rows:
        table.add_row(*(row[k] for k in keep))
    console.print(table)
    ls_sweeps(runs_dir)


def _sweep(run: Path) -> bool:
    from gtl_tui.experiments.sweep import is_sweep_dir

    return is_sweep_dir(run)


def status(run: RunArg, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
           runs_dir: RunsDirOpt = DEFAULT_RUNS_DIR) -> None:
    """Show the state of a run (running, paused, finished, stopped, failed or crashed), or of a sweep's runs."""
    run = resolve_run(run, runs_dir)
    if _sweep(run):
        from gtl_tui.experiments.commands import sweep_status

        return sweep_status(run, as_json)
    info = _read(run)
    if as_json:
        typer.echo(json.dumps(info.to_dict(), indent=2))
        return
    total = info.generations if info.generations is not None else "?"
    lines = [f"{info.path}: {info.state}" + (f" (pid {info.pid})" if info.pid else "")]
    gen = f"generation {info.generation}/{total} done"
    if info.individual is not None and info.population:
        gen += f", individual {info.individual}/{info.population} of the next"
    lines.append(gen)
    if info.best_fitness is not None:
        lines.append(f"best fitness {info.best_fitness:.4f} (individual {info.best_id})")
    lines.append(f"last event {age(info.updated)}")
    if not info.live:
        lines.append(_not_running_hint(info))
    typer.echo("\n".join(lines))


def pause(run: RunArg,
          wait: Annotated[bool, typer.Option(help="Wait until the training thread has paused.")] = True,
          runs_dir: RunsDirOpt = DEFAULT_RUNS_DIR) -> None:
    """Pause a running engine at its next safe point (nothing trains while paused); on a sweep, all its runs."""
    run = resolve_run(run, runs_dir)
    if _sweep(run):
        from gtl_tui.experiments.commands import sweep_control

        return sweep_control(run, "pause", wait)
    info = _controllable(run, "pause")
    reply = _request(run, "pause")
    if wait and reply.get("state") not in ("paused", "starting"):
        reply = _wait_state(run, ("paused",), WAIT_S) or reply
    if reply.get("state") == "paused":
        typer.echo(f"paused in generation {reply.get('generation')}; resume with: gtl-tui resume {info.path}")
    else:
        typer.echo(f"pause requested ({reply.get('state')}): the engine pauses at its next safe point")


def resume(run: RunArg, runs_dir: RunsDirOpt = DEFAULT_RUNS_DIR) -> None:
    """Resume a paused engine (to continue a stopped or crashed run: gtl-tui run --resume RUN); on a sweep, all."""
    run = resolve_run(run, runs_dir)
    if _sweep(run):
        from gtl_tui.experiments.commands import sweep_control

        return sweep_control(run, "resume")
    _controllable(run, "resume")
    reply = _request(run, "resume")
    if reply.get("state") == "paused":  # the training thread wakes up within a moment
        reply = _wait_state(run, ("running", "stopping"), WAIT_S) or reply
    typer.echo(f"resumed: the engine is {reply.get('state')}")


def stop(run: RunArg,
         wait: Annotated[bool, typer.Option(help="Wait until the engine has checkpointed and exited.")] = True,
         runs_dir: RunsDirOpt = DEFAULT_RUNS_DIR) -> None:
    """Stop an engine gracefully: checkpoint, then exit; gtl-tui run --resume RUN continues it later. On a sweep:
    the sweep process and all its runs (gtl-tui sweep --resume SWEEP continues them)."""
    run = resolve_run(run, runs_dir)
    if _sweep(run):
        from gtl_tui.experiments.commands import sweep_control

        return sweep_control(run, "stop", wait)
    info = _controllable(run, "stop")
    _request(run, "stop")
    if wait:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and live_engine_pid(run) is not None:
            time.sleep(0.1)
        after = _read(run)
        if not after.live:
            typer.echo(f"{after.state} after {after.generation} generation(s); "
                       + (f"continue with: gtl-tui run --resume {info.path}" if after.state == "stopped"
                          else _not_running_hint(after)))
            return
    typer.echo(f"stop requested: the engine checkpoints and exits at its next safe point (pid {info.pid})")
