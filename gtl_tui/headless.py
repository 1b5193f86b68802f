"""``gtl-tui run --headless``: the engine in the foreground with a rich progress display."""

from __future__ import annotations

import signal
from pathlib import Path

from rich.console import Console

from gtl_tui.progress import ProgressView


def run_headless(run_dir: Path) -> int:
    """Run the evolution of ``run_dir`` in this process; returns the exit code.

    Ctrl-C (or SIGTERM) stops gracefully at the next safe point; the run can be continued with ``--resume``.
    """
    from engine.config import ConfigError
    from engine.data import DataError
    from engine.run.runner import run_in_dir
    from engine.run.signals import RunSignals

    console = Console(stderr=True)
    view = ProgressView(console)
    signals = RunSignals()

    def on_signal(signum: int, frame: object) -> None:
        if signals.stop_requested:
            raise KeyboardInterrupt
        console.print("[yellow]stopping at the next safe point (again to abort)...[/]")
        signals.request_stop()

    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    try:
        with view.progress:
            finished = run_in_dir(run_dir, signals=signals, listeners=[view])
    except (ConfigError, DataError, ValueError) as err:
        console.print(f"[red]error:[/] {err}")
        return 2
    except KeyboardInterrupt:
        console.print(f"[red]aborted.[/] Continue with: gtl-tui run --resume {run_dir}")
        return 130
    except Exception as err:  # the log has run_finished(failed) and error.txt the traceback
        console.print(f"[red]run failed:[/] {type(err).__name__}: {err} (traceback in {run_dir / 'error.txt'})")
        return 1
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    if finished.status == "stopped":
        console.print(f"stopped after generation {finished.generations_done - 1}. "
                      f"Continue with: gtl-tui run --resume {run_dir}")
        return 0
    best = f"{finished.best_fitness:.3f}" if finished.best_fitness is not None else "n/a"
    console.print(f"[green]done[/]: {run_dir} (best fitness {best})")
    return 0
