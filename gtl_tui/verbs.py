"""The run-control verbs of the CLI: ``ls``, ``status``, ``pause``, ``resume``, ``stop``, ``export``.

They talk to a background engine over its control socket and read run directories; no torch import.
``register(app)`` adds them to the typer app of :mod:`gtl_tui.cli`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from engine.control_client import ControlError, send
from engine.daemon import LOG_FILE, live_engine_pid
from gtl_tui.runs import RunError, RunInfo, age, final_learngene, find_runs, read_run

RunArg = Annotated[Path, typer.Argument(help="Run directory.", show_default=False)]
WAIT_S = 120.0


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(message, err=True, fg="red")
    return typer.Exit(code)


def _read(run: Path) -> RunInfo:
    try:
        return read_run(run)
    except RunError as err:
        raise _fail(f"error: {err}", 2) from None


def _not_running_hint(info: RunInfo) -> str:
    run = info.path
    if info.state == "finished":
        gene = final_learngene(Path(run))
        return f"its final learngene is {gene}" if gene else "it has completed"
    if info.state == "failed":
        return f"it failed: {info.error or 'see the log'} (details in {Path(run) / LOG_FILE} and error.txt)"
    return f"continue it with: gtl-tui run --resume {run}"


def _controllable(run: Path, verb: str) -> RunInfo:
    """The run's info when a background engine answers on its socket; else one clear line and exit 1."""
    info = _read(run)
    if info.controllable:
        return info
    if info.live:
        raise _fail(f"error: cannot {verb} {info.path}: its engine (pid {info.pid}) has no control socket "
                    "(a --headless run or an engine still starting)")
    raise _fail(f"error: cannot {verb} {info.path}: it is not running ({info.state}); {_not_running_hint(info)}")


def _request(run: Path, cmd: str, what: str = "", **args: object) -> dict:
    try:
        return send(run, cmd, **args)
    except ControlError as err:
        raise _fail(f"error: {what}{err}") from None


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


def ls(runs_dir: Annotated[Path, typer.Argument(help="Folder of run directories.")] = Path("runs")) -> None:
    """List the runs in RUNS_DIR with their state, generation and best fitness."""
    try:
        runs = find_runs(runs_dir)
    except RunError as err:
        raise _fail(f"error: {err}", 2) from None
    if not runs:
        typer.echo(f"no runs in {runs_dir}")
        return
    colors = {"running": "green", "paused": "yellow", "pausing": "yellow", "finished": "bold green",
              "stopped": "cyan", "failed": "red", "crashed": "red"}
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


def status(run: RunArg, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show the state of a run: running, paused, finished, stopped, failed or crashed."""
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
          wait: Annotated[bool, typer.Option(help="Wait until the training thread has paused.")] = True) -> None:
    """Pause a running engine at its next safe point (nothing trains while paused)."""
    info = _controllable(run, "pause")
    reply = _request(run, "pause")
    if wait and reply.get("state") not in ("paused", "starting"):
        reply = _wait_state(run, ("paused",), WAIT_S) or reply
    if reply.get("state") == "paused":
        typer.echo(f"paused in generation {reply.get('generation')}; resume with: gtl-tui resume {info.path}")
    else:
        typer.echo(f"pause requested ({reply.get('state')}): the engine pauses at its next safe point")


def resume(run: RunArg) -> None:
    """Resume a paused engine (to continue a stopped or crashed run: gtl-tui run --resume RUN)."""
    _controllable(run, "resume")
    reply = _request(run, "resume")
    if reply.get("state") == "paused":  # the training thread wakes up within a moment
        reply = _wait_state(run, ("running", "stopping"), WAIT_S) or reply
    typer.echo(f"resumed: the engine is {reply.get('state')}")


def stop(run: RunArg,
         wait: Annotated[bool, typer.Option(help="Wait until the engine has checkpointed and exited.")] = True,
         ) -> None:
    """Stop an engine gracefully: checkpoint, then exit; gtl-tui run --resume RUN continues it later."""
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


def _copy_atomic(src: Path, dst: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _export_offline(info: RunInfo, individual: int | None, out: Path | None) -> None:
    """Export from a run whose engine is gone: the final learngene in learngenes/ for the best, else any
    individual of any generation from the run's gene archive (``engine.gene_archive``, which imports torch:
    export is no light-client verb)."""
    gene = final_learngene(Path(info.path)) if individual is None else None
    if gene is None:
        from engine.gene_archive import export_offline

        out_path = out
        if out is not None and out.is_dir():
            out_path = out / f"{Path(info.path).name}-{'best' if individual is None else f'ind{individual}'}"
        try:
            weights, manifest = export_offline(Path(info.path), individual, out_path)
        except ValueError as err:
            raise _fail(f"error: cannot export from {info.path} ({info.state}): {err}") from None
        except OSError as err:
            raise _fail(f"error: export: {err}") from None
        from engine.control_server import scp_line

        what = "the best learngene" if individual is None else f"the learngene of individual {individual}"
        typer.echo(f"the engine is not running ({info.state}); {what}, from the genes the run kept:")
        typer.echo(f"learngene {weights}\nmanifest  {manifest}\n{scp_line(weights, manifest)}")
        return
    from engine.control_server import scp_line

    weights, manifest = gene, gene.with_suffix(".json")
    if out is not None:
        stem = out / f"{Path(info.path).name}-best" if out.is_dir() else out
        if stem.suffix in (".safetensors", ".json"):
            stem = stem.with_suffix("")
        try:
            stem.parent.mkdir(parents=True, exist_ok=True)
            new_w, new_m = stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")
            _copy_atomic(weights, new_w)
            _copy_atomic(manifest, new_m)
        except OSError as err:
            raise _fail(f"error: export: {err}") from None
        weights, manifest = new_w, new_m
    what = "final learngene" if info.state == "finished" else "newest learngene exported from it"
    typer.echo(f"the engine is not running ({info.state}); the run's {what}:")
    typer.echo(f"learngene {weights}\nmanifest  {manifest}\n{scp_line(weights, manifest)}")


def export(
    run: RunArg,
    individual: Annotated[int | None, typer.Option("--individual", "-i", min=0,
                                                   help="An individual's id (default: the best).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output path or folder (default: RUN/learngenes/).")]
    = None,
) -> None:
    """Export the best learngene (or an individual's) as .safetensors + .json and print an scp line."""
    info = _read(run)
    out_abs = out.expanduser().resolve() if out is not None else None
    if not info.controllable:
        if info.live:
            raise _fail(f"error: cannot export from {info.path}: its engine (pid {info.pid}) has no control socket")
        _export_offline(info, individual, out_abs)
        return
    args: dict[str, object] = {}
    if individual is not None:
        args["individual"] = individual
    if out_abs is not None:
        args["out"] = str(out_abs)
    reply = _request(run, "export", "export failed: ", **args)
    typer.echo(f"learngene {reply['path']}\nmanifest  {reply['manifest']}\n{reply['scp']}")


def register(app: typer.Typer) -> None:
    """Add the verbs to the CLI."""
    app.command("ls")(ls)
    app.command()(status)
    app.command()(pause)
    app.command()(resume)
    app.command()(stop)
    app.command()(export)
