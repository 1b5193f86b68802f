"""``run`` (start a run, or continue one, and watch it) and ``models``. torch is imported by the engine only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gtl_tui.commands.common import ConfigArg, SetOpt, default_config_path, fail, resolve_run


def _engine_missing(err: ImportError) -> typer.Exit:
    return fail(f"error: the engine is not installed ({err.name or err}): pip install 'gtl-tui[engine]'")


def run(
    config: ConfigArg = None,
    set_: SetOpt = None,
    headless: Annotated[bool, typer.Option("--headless", help="Run in the foreground with a progress display.")] = False,
    detach: Annotated[bool, typer.Option("--detach", help="Start in the background and return at once.")] = False,
    resume: Annotated[
        Path | None, typer.Option("--resume", help="Continue this run (its directory, or its name in --runs-dir) from its checkpoint.")
    ] = None,
    generations: Annotated[int | None, typer.Option(
        "--generations", min=1, help="With --resume: run until this many generations (continues a finished run).",
        show_default=False)] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Where run directories are created (and --resume names looked up).")] = Path("runs"),
    name: Annotated[str | None, typer.Option("--name", help="Run directory name (default: config name + time).")] = None,
) -> None:
    """Start a GTL run (or continue one with --resume) and open the monitor on it."""
    try:
        from engine.config import ConfigError, load_config
        from engine.run.runner import RunDirError, check_run_dir, create_run_dir
    except ImportError as err:
        raise _engine_missing(err) from None

    try:
        if resume is not None:
            if config is not None or set_:
                raise fail("error: --resume continues a run with its own config; drop CONFIG and --set")
            run_dir = check_run_dir(resolve_run(resume, runs_dir))
            from engine.run.runner import load_run_config
            from gtl_tui.runs import resume_problem

            load_run_config(run_dir)  # fail early on a damaged config
            problem = resume_problem(run_dir, extending=generations is not None)
            if problem is not None:
                raise fail(f"error: {problem}")
            if generations is not None:
                from engine.run.runner import extend_run

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


def models() -> None:
    """List the registered network architectures."""
    try:
        from engine.models import available_models
    except ImportError as err:
        raise _engine_missing(err) from None

    for m in available_models():
        typer.echo(m)
