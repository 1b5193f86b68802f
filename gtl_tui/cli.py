"""The ``gtl-tui`` command line. Importing this module stays free of torch so ``--help`` is instant."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="gtl-tui",
    help="Evolve learngenes with Genetic Transfer Learning, watch and control runs from the terminal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "quickstart.toml"

ConfigArg = Annotated[
    Path | None, typer.Argument(help="TOML config (default: configs/quickstart.toml).", show_default=False)
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a config field: section.key=value (repeatable).", show_default=False),
]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line to stderr and return the Exit to raise."""
    typer.secho(message, err=True, fg="red")
    return typer.Exit(code)


def default_config_path() -> Path:
    """configs/quickstart.toml of a source checkout, else the copy a wheel install carries."""
    for candidate in (DEFAULT_CONFIG, Path(__file__).resolve().parent / "configs" / "quickstart.toml"):
        if candidate.is_file():
            return candidate
    return Path("configs/quickstart.toml")


@app.command()
def run(
    config: ConfigArg = None,
    set_: SetOpt = None,
    headless: Annotated[bool, typer.Option("--headless", help="Run in the foreground with a progress display.")] = False,
    detach: Annotated[bool, typer.Option("--detach", help="Start in the background and return at once.")] = False,
    resume: Annotated[
        Path | None, typer.Option("--resume", help="Continue the run in this directory from its checkpoint.")
    ] = None,
    generations: Annotated[int | None, typer.Option(
        "--generations", min=1, help="With --resume: run until this many generations (continues a finished run).",
        show_default=False)] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run directories are created.")] = Path("runs"),
    name: Annotated[str | None, typer.Option("--name", help="Run directory name (default: config name + time).")] = None,
) -> None:
    """Start a GTL run (or continue one with --resume) and open the monitor on it."""
    from engine.config import ConfigError, load_config
    from engine.runner import RunDirError, check_run_dir, create_run_dir

    try:
        if resume is not None:
            if config is not None or set_:
                raise fail("error: --resume continues a run with its own config; drop CONFIG and --set")
            run_dir = check_run_dir(resume)
            from engine.runner import load_run_config
            from gtl_tui.runs import resume_problem

            load_run_config(run_dir)  # fail early on a damaged config
            problem = resume_problem(run_dir, extending=generations is not None)
            if problem is not None:
                raise fail(f"error: {problem}")
            if generations is not None:
                from engine.runner import extend_run

                extend_run(run_dir, generations)
        else:
            if generations is not None:
                raise fail("error: --generations goes with --resume; for a new run use --set evolution.generations=N")
            cfg = load_config(config or default_config_path(), set_ or [])
            run_dir = create_run_dir(cfg, runs_dir, name)
    except (ConfigError, RunDirError) as err:
        raise fail(f"error: {err}") from None
    if headless:
        from gtl_tui.headless import run_headless

        raise typer.Exit(run_headless(run_dir))
    from gtl_tui.background import start_and_monitor

    raise typer.Exit(start_and_monitor(run_dir, detach=detach, resume=resume is not None))


@app.command()
def models() -> None:
    """List the registered network architectures."""
    from engine.models import available_models

    for m in available_models():
        typer.echo(m)



RunDirArg = Annotated[Path, typer.Argument(help="The run directory (holds events.jsonl).", show_default=False)]


def _monitorable(run_dir: Path) -> Path:
    """The run directory, or a one-line error and exit code 2."""
    from gtl_tui.sources import run_dir_problem

    problem = run_dir_problem(run_dir)
    if problem is not None:
        raise fail(f"error: {problem}")
    return run_dir


@app.command()
def attach(
    run: Annotated[str, typer.Argument(help="Run directory, or ssh://[user@]host[:port]/path/to/run.",
                                       show_default=False)],
    refresh: Annotated[float | None, typer.Option("--refresh", min=0.05,
                                                  help="Seconds between reads of the log.")] = None,
    low_bandwidth: Annotated[bool | None, typer.Option(
        "--low-bandwidth/--no-low-bandwidth",
        help="1 s refresh, no animation (default: on when SSH_CONNECTION is set).")] = None,
    remote_cmd: Annotated[str | None, typer.Option(
        "--remote-cmd", help="gtl-tui on the server, e.g. ~/venv/bin/gtl-tui (env GTL_TUI_REMOTE_CMD).")] = None,
    fetch_dir: Annotated[Path, typer.Option("--fetch-dir", help="Where exports of a remote run are copied.")] = Path(
        "learngenes"),
) -> None:
    """Open the monitor on a run, local or over SSH (on a folder of runs: the Runs screen); quitting leaves the
    engine running."""
    import os

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
        remote = RemoteRun.over_ssh(target, remote_cmd=remote_cmd, fetch_dir=fetch_dir)
        try:
            open_monitor(Path(target.path), event_source=remote, controller=remote, refresh_interval=interval,
                         remote=run)
        finally:
            remote.close()
        return
    from gtl_tui.experiments.runs_index import holds_runs

    local = Path(run)
    if holds_runs(local):  # a folder of runs or a sweep: the Runs screen
        from gtl_tui.screens.runs import open_runs

        return open_runs(local)
    open_monitor(_monitorable(local), refresh_interval=interval)


@app.command()
def replay(
    run_dir: RunDirArg,
    speed: Annotated[float, typer.Option("--speed", min=0.125, help="Log seconds per second of replay.")] = 10.0,
) -> None:
    """Play a run's event log back through the monitor (space pauses, +/- speed, ./, step by generation)."""
    from gtl_tui.app import open_monitor

    open_monitor(_monitorable(run_dir), replay=True, speed=speed)

from gtl_tui import verbs  # noqa: E402 (ls, status, pause, resume, stop, export)

verbs.register(app)

from gtl_tui.remote import commands as remote_commands  # noqa: E402 (stream, serve)

remote_commands.register(app)

from gtl_tui.experiments import commands as experiment_commands  # noqa: E402 (sweep, compare, report)

experiment_commands.register(app)

from gtl_tui import evaluate_cmd  # noqa: E402 (evaluate, pretrain)

evaluate_cmd.register(app)


def main() -> None:
    import sys

    if len(sys.argv) == 1 and Path("runs").is_dir():  # `gtl-tui` alone: the Runs screen on ./runs
        sys.argv += ["attach", "runs"]
    app()


if __name__ == "__main__":
    main()
