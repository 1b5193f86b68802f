"""The ``gtl-tui`` command line: the typer app assembled from :mod:`gtl_tui.commands` (console entry: :func:`main`,
also ``python -m gtl_tui.cli``). Importing it imports no torch, so ``--help`` is instant."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup, TyperOption

from gtl_tui.commands import control, evaluate, export, monitor, run, select
from gtl_tui.commands.common import EXIT_USAGE
from gtl_tui.experiments import commands as experiments
from gtl_tui.remote import commands as remote

# Typer vendors click in recent versions and re-exports click's in older ones: take the classes from what it exports.
UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
NoArgsIsHelpError: type[Exception] = getattr(sys.modules[UsageError.__module__], "NoArgsIsHelpError", type(None))


class OneLineErrors(TyperGroup):
    """Bad usage (an unknown option, a value outside a choice) is one line, ``error: ...``, exit code 2, as
    every other bad input of the CLI, instead of a framed usage block."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except NoArgsIsHelpError as err:  # no command at all: the help is the answer
            typer.echo(err.ctx.get_help() if err.ctx else str(err))  # type: ignore[attr-defined]
            sys.exit(EXIT_USAGE)
        except UsageError as err:
            message = err.format_message().replace("Value error, ", "")  # type: ignore[attr-defined]
            typer.secho(f"error: {message}", err=True, fg="red")
            sys.exit(EXIT_USAGE)
        except typer.Abort:
            typer.secho("aborted", err=True, fg="red")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _flag_type(display: Any) -> Any:
    """Typer's rich help shows a ``<bool>`` type beside every flag (``--wait``, ``--json``, ``--help``): a flag
    takes no value, so it shows none."""

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if getattr(self, "is_flag", False) else display(self, ctx)

    return display_type_rich


TyperOption.display_type_rich = _flag_type(TyperOption.display_type_rich)  # type: ignore[method-assign]


def _print_version(value: bool) -> None:
    if value:
        from engine import __version__

        typer.echo(f"gtl-tui {__version__}")
        raise typer.Exit(0)


app = typer.Typer(
    name="gtl-tui",
    cls=OneLineErrors,
    help="Evolve learngenes with Genetic Transfer Learning, watch and control runs from the terminal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                                help="Print the version and exit.")] = False) -> None:
    """Evolve learngenes with Genetic Transfer Learning, watch and control runs from the terminal."""


app.command()(run.run)
app.command()(run.models)
app.command()(monitor.attach)
app.command()(monitor.replay)
app.command("ls")(control.ls)
app.command()(control.status)
app.command()(control.pause)
app.command()(control.resume)
app.command()(control.stop)
app.command()(export.export)
app.command()(remote.stream)
app.command()(remote.serve)
app.command()(evaluate.evaluate)
app.command()(evaluate.pretrain)
app.command()(select.select)
experiments.register(app)  # sweep, compare, report


def main() -> None:
    from pathlib import Path

    if len(sys.argv) == 1 and Path("runs").is_dir():  # `gtl-tui` alone: the Runs screen on ./runs
        sys.argv += ["attach", "runs"]
    app()


if __name__ == "__main__":
    main()
