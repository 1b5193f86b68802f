"""CLI verbs for remote use: ``stream`` (server side of ``attach ssh://...``) and ``serve`` (browser)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

SERVE_HOST = "127.0.0.1"  # never a public interface: reach it with `ssh -L`


def stream(
    run_dir: Annotated[Path, typer.Argument(help="Run directory on this machine.")],
    offset: Annotated[int, typer.Option("--from", help="Byte offset in events.jsonl to relay from.")] = 0,
) -> None:
    """Relay a run's events and control socket over stdin/stdout (used by `attach ssh://...`)."""
    from gtl_tui.commands.common import fail
    from gtl_tui.remote.stream import StreamError, main
    from gtl_tui.sources import run_dir_problem  # no torch: the stream must start fast

    problem = run_dir_problem(run_dir)
    if problem is not None:
        raise fail(f"error: {problem}")
    try:
        code = main(run_dir, offset)
    except StreamError as err:
        raise fail(f"error: {err}") from None
    raise typer.Exit(code)


def serve(
    run_dir: Annotated[Path, typer.Argument(help="Run directory to monitor in a browser.")],
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1.")] = 8000,
) -> None:
    """Serve the monitor to a browser on 127.0.0.1 only, behind a secret token printed in the URL."""
    from gtl_tui.commands.common import fail
    from gtl_tui.sources import run_dir_problem

    problem = run_dir_problem(run_dir)
    if problem is not None:
        raise fail(f"error: {problem}")
    try:
        from gtl_tui.remote.serve import GuardedServer, new_token
    except ImportError:
        raise fail("error: serving needs textual-serve: pip install 'gtl-tui[serve]'") from None
    command = " ".join(shlex.quote(w) for w in [sys.executable, "-m", "gtl_tui.cli", "attach",
                                                  str(run_dir.resolve())])
    server = GuardedServer(command, token=new_token(), host=SERVE_HOST, port=port, title=f"gtl-tui {run_dir.name}")
    # The token is printed, never put on a command line: other local users can read argv (ps), not our stdout.
    typer.echo(f"serving on {server.url()}")
    typer.echo(f"(from a laptop: ssh -L {port}:127.0.0.1:{port} THIS_HOST, then open that URL; keep it secret)")
    server.serve()
