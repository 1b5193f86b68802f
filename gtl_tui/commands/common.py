"""What every command shares: one-line failures and the exit codes, the default config, common arguments.

Exit codes of every ``gtl-tui`` command (the background engine's own are in :mod:`engine.run.daemon`):

- 0 (``EXIT_OK``): done; for ``run``, the run completed or was stopped.
- 1 (``EXIT_FAILED``): the run or the engine could not do it: the run failed, the engine is not running or
  refused (not held, no control socket), the engine did not start.
- 2 (``EXIT_USAGE``): bad input: an unknown option or value, a broken config, a missing or foreign run directory,
  a learngene that cannot be read. Nothing was started or written.
- 130 (``EXIT_ABORTED``): interrupted twice (the second Ctrl-C aborts without a checkpoint).

Every failure prints one line, ``error: ...``, on stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ABORTED = 130

_PACKAGE = Path(__file__).resolve().parent.parent
#: configs/quickstart.toml of a source checkout (a wheel carries a copy in gtl_tui/configs/).
DEFAULT_CONFIG = _PACKAGE.parent / "configs" / "quickstart.toml"

ConfigArg = Annotated[
    Path | None, typer.Argument(help="TOML config (default: configs/quickstart.toml).", show_default=False)
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a config field: section.key=value (repeatable).", show_default=False),
]
RunArg = Annotated[Path, typer.Argument(
    help="A run: its directory, or its name in the runs folder (--runs-dir).", show_default=False)]
RunsDirOpt = Annotated[Path, typer.Option("--runs-dir", help="The runs folder, where run names are looked up.")]
DEFAULT_RUNS_DIR = Path("runs")


def resolve_run(run: Path, runs_dir: Path = DEFAULT_RUNS_DIR) -> Path:
    """A run argument as a directory: the path itself when it exists, else the run of that name in ``runs_dir``
    (a bare name, as `gtl-tui ls` prints it). Anything else is returned as given, for the verb's own error."""
    if run.exists() or len(run.parts) != 1:
        return run
    named = runs_dir.expanduser() / run
    return named if named.exists() else run


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print one line to stderr and return the Exit to raise (``raise fail(...)``)."""
    typer.secho(message, err=True, fg="red")
    return typer.Exit(code)


def default_config_path() -> Path:
    """configs/quickstart.toml of a source checkout, else the copy a wheel install carries."""
    for candidate in (DEFAULT_CONFIG, _PACKAGE / "configs" / "quickstart.toml"):
        if candidate.is_file():
            return candidate
    return Path("configs/quickstart.toml")
