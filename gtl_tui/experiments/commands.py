"""The experiment verbs of the CLI: ``sweep``, ``compare``, ``report``; and what ``ls``, ``status``, ``pause``,
``resume`` and ``stop`` do on a sweep folder (act on all its runs). No torch import at import time.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gtl_tui.experiments.sweep import MANIFEST, is_sweep_dir, live_sweep_pid, read_manifest
from gtl_tui.experiments.sweepfile import SweepError

WAIT_S = 120.0


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(message, err=True, fg="red")
    return typer.Exit(code)


def _default_config() -> Path:
    from gtl_tui.commands.common import default_config_path

    return default_config_path()


# --------------------------------------------------------------------------------------------- sweep
def sweep(
    sweep_file: Annotated[Path | None, typer.Argument(help="The sweep file (SWEEP.toml).", show_default=False)]
    = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue the sweep in this folder.",
                                                show_default=False)] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where the sweep's folder is created.")] = Path("runs"),
    detach: Annotated[bool, typer.Option("--detach", help="Start in the background and return at once.")] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", help="Override a config field of every run: "
                                                   "section.key=value (repeatable).", show_default=False)] = None,
) -> None:
    """Run a grid of runs over seeds (a sweep file), in the background; --resume continues a killed sweep."""
    from gtl_tui.experiments.sweep import create_sweep, launch, read_manifest

    try:
        if resume is not None:
            if sweep_file is not None or set_:
                raise _fail("error: --resume continues a sweep with its own file; drop SWEEP_FILE and --set")
            sweep_dir = resume.expanduser()
            read_manifest(sweep_dir)
        else:
            if sweep_file is None:
                raise _fail("error: give a sweep file (SWEEP.toml), or --resume SWEEP_DIR")
            from gtl_tui.experiments.sweepfile import plan

            sweep_dir = create_sweep(plan(sweep_file, set_ or [], default_base=_default_config()), runs_dir)
        pid = launch(sweep_dir)
    except SweepError as err:
        raise _fail(f"error: {err}") from None
    n = len(read_manifest(sweep_dir)["points"])
    if detach:
        typer.echo(str(sweep_dir))
        typer.echo(f"sweep running in the background (pid {pid}, {n} runs); follow it with: gtl-tui status "
                   f"{sweep_dir}", err=True)
        return
    typer.echo(f"sweep {sweep_dir}: {n} runs (pid {pid}); Ctrl-C leaves it running", err=True)
    try:
        follow(sweep_dir)
    except KeyboardInterrupt:
        typer.echo(f"\nthe sweep keeps running; see it with: gtl-tui status {sweep_dir}", err=True)


def follow(sweep_dir: Path, poll: float = 0.5) -> None:
    """Print each point's state changes until the sweep process ends."""
    seen: dict[str, str] = {}
    gone = 0
    while True:
        try:
            manifest = read_manifest(sweep_dir)
        except SweepError:
            manifest = None
        if manifest is not None:
            for p in manifest["points"]:
                if seen.get(p["name"]) != p["state"]:
                    seen[p["name"]] = p["state"]
                    typer.echo(f"{p['name']}: {p['state']}")
        if live_sweep_pid(sweep_dir) is None:
            gone += 1
            if gone > 2 and manifest is not None:
                typer.echo(f"sweep {manifest.get('state')}: {sweep_dir}")
                return
        time.sleep(poll)


# --------------------------------------------------------------------------------------------- sweep folders in the run verbs
def sweep_summary(sweep_dir: Path) -> str:
    """One line: the sweep's process state and its points' states."""
    m = read_manifest(sweep_dir)
    pid = live_sweep_pid(sweep_dir)
    counts: dict[str, int] = {}
    for p in m["points"]:
        counts[p["state"]] = counts.get(p["state"], 0) + 1
    states = ", ".join(f"{n} {s}" for s, n in counts.items())
    proc = f"running (pid {pid})" if pid is not None else str(m.get("state"))
    return f"sweep {m.get('name')}: {proc}, {len(m['points'])} runs: {states}"


def sweeps_in(runs_dir: Path) -> list[Path]:
    try:
        return sorted(d for d in runs_dir.iterdir() if d.is_dir() and (d / MANIFEST).is_file())
    except OSError:
        return []


def ls_sweeps(runs_dir: Path) -> int:
    """After ``ls``'s table: the sweep itself (on a sweep folder), or one line per sweep folder inside; returns
    the number of lines printed."""
    runs_dir = runs_dir.expanduser()
    if is_sweep_dir(runs_dir):
        typer.echo(sweep_summary(runs_dir))
        return 1
    n = 0
    for d in sweeps_in(runs_dir):
        try:
            typer.echo(f"{sweep_summary(d)} (gtl-tui ls {d})")
            n += 1
        except SweepError:
            continue
    return n


def _runs_of(sweep_dir: Path) -> list[Any]:
    from gtl_tui.experiments.sweep import sweep_runs
    from gtl_tui.runs import read_run

    return [read_run(r) for r in sweep_runs(sweep_dir)]


def sweep_status(sweep_dir: Path, as_json: bool) -> None:
    from gtl_tui.runs import age

    try:
        m = read_manifest(sweep_dir)
        infos = {Path(i.path).name: i for i in _runs_of(sweep_dir)}
        line = sweep_summary(sweep_dir)
    except SweepError as err:
        raise _fail(f"error: {err}") from None
    if as_json:
        out = {"sweep": {k: m.get(k) for k in ("name", "state", "max_parallel", "seeds", "grid", "set")},
               "pid": live_sweep_pid(sweep_dir),
               "points": [{"name": p["name"], "overrides": p["overrides"], "state": p["state"],
                           "run": infos[p["name"]].to_dict() if p["name"] in infos else None} for p in m["points"]]}
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(line)
    table = Table(box=None, header_style="bold")
    for col in ("RUN", "STATE", "GENERATION", "BEST FITNESS", "LAST EVENT"):
        table.add_column(col)
    for p in m["points"]:
        info = infos.get(p["name"])
        if info is None:
            table.add_row(escape(p["name"]), p["state"], "-", "-", "-")
            continue
        total = info.generations if info.generations is not None else "?"
        best = f"{info.best_fitness:.4f}" if info.best_fitness is not None else "-"
        # queued: a placed point whose Ray task waits for room (its run directory holds only its config yet)
        queued = p["state"] in ("queued", "pending") and info.pid is None and live_sweep_pid(sweep_dir) is not None
        state = p["state"] if p["state"] in ("evaluating", "evaluated") or queued else info.state
        table.add_row(escape(p["name"]), state, f"{info.generation}/{total}", best, age(info.updated))
    Console().print(table)


def sweep_control(sweep_dir: Path, verb: str, wait: bool = True) -> None:
    """``pause``/``resume``/``stop`` on every run of the sweep that has a live engine; ``stop`` first ends the
    sweep process, so that it starts nothing new (``gtl-tui sweep --resume`` goes on later)."""
    from engine.control.client import ControlError, send
    from engine.rundir import live_engine_pid

    try:
        infos = _runs_of(sweep_dir)
    except SweepError as err:
        raise _fail(f"error: {err}") from None
    if verb == "stop":
        pid = live_sweep_pid(sweep_dir)
        if pid:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + WAIT_S
            while live_sweep_pid(sweep_dir) is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            infos = _runs_of(sweep_dir)  # it may have started one more run meanwhile
            typer.echo(f"sweep process (pid {pid}) ended; continue with: gtl-tui sweep --resume {sweep_dir}")
    targets = [i for i in infos if i.controllable]
    if not targets:
        typer.echo(f"no run of {sweep_dir} is running")
        return
    failed = 0
    for info in targets:
        try:
            reply = send(Path(info.path), verb)
            typer.echo(f"{info.name}: {verb} requested ({reply.get('state')})")
        except ControlError as err:
            failed += 1
            typer.secho(f"{info.name}: error: {err}", err=True, fg="red")
    if wait and verb in ("pause", "stop"):
        deadline = time.monotonic() + WAIT_S
        for info in targets:
            run = Path(info.path)
            while time.monotonic() < deadline:
                if verb == "stop" and live_engine_pid(run) is None:
                    break
                if verb == "pause":
                    try:
                        if send(run, "status", timeout=5.0).get("state") == "paused":
                            break
                    except ControlError:
                        break
                time.sleep(0.1)
        word = "paused" if verb == "pause" else "stopped"
        typer.echo(f"{len(targets) - failed} run(s) {word}")
    if failed:
        raise typer.Exit(1)


# --------------------------------------------------------------------------------------------- compare
def compare(
    targets: Annotated[list[Path], typer.Argument(help="Run directories, or a sweep folder.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV (one row per setting and measure).")] = False,
    as_markdown: Annotated[bool, typer.Option("--markdown", help="Print a GitHub table (a column per setting).")
                           ] = False,
) -> None:
    """Group runs by setting (overrides, seeds aside): final best/mean fitness and evaluations, mean ± 95% CI."""
    from gtl_tui.experiments import compare as cmp

    if as_json + as_csv + as_markdown > 1:
        raise _fail("error: choose one of --json, --csv and --markdown")
    try:
        result = cmp.compare(cmp.load_records(targets))
    except SweepError as err:
        raise _fail(f"error: {err}") from None
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    elif as_csv:
        typer.echo(cmp.to_csv(result), nl=False)
    elif as_markdown:
        typer.echo(cmp.to_markdown(result), nl=False)
    else:
        Console().print(cmp.table(result))


# --------------------------------------------------------------------------------------------- report
def report(
    targets: Annotated[list[Path], typer.Argument(help="Run directories, or a sweep folder.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder of the report (created).")] = Path("report"),
    tensorboard: Annotated[Path | None, typer.Option(
        "--tensorboard", help="Also write the per-generation scalars as TensorBoard event files here.",
        show_default=False)] = None,
) -> None:
    """Figures (fitness, lineage, channel map, evaluations), CSVs and a self-contained index.html."""
    from gtl_tui.experiments.report import build_report

    try:
        written = build_report(targets, out, tensorboard)
    except SweepError as err:
        raise _fail(f"error: {err}") from None
    typer.echo(f"report: {out / 'index.html'} ({len(written)} files)")


def register(app: typer.Typer) -> None:
    """Add the experiment verbs to the CLI."""
    app.command()(sweep)
    app.command()(compare)
    app.command()(report)
