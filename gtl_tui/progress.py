"""Two progress bars and a line per generation, from the run's events: the display of ``run --headless`` and the
plain fallback monitor of a background run. No torch."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from engine import events as ev


class ProgressView:
    """Folds events into two progress bars (generations, individuals) and a fitness line."""

    def __init__(self, console: Console):
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=console,
        )
        self.gen_task = self.progress.add_task("generations", total=None, info="")
        self.ind_task = self.progress.add_task("individuals", total=None, info="")

    def __call__(self, e: ev.Event) -> None:
        p = self.progress
        if isinstance(e, ev.RunStarted):
            p.update(self.gen_task, total=e.generations, completed=e.resumed_from or 0)
            p.update(self.ind_task, total=e.population, completed=0)
            where = f"resumed at generation {e.resumed_from}" if e.resumed_from is not None else "started"
            self.console.print(f"[bold]{e.name}[/]: {where} on {e.device} ({e.trainer} trainer), "
                               f"{e.arch}, population {e.population}, {e.generations} generations")
        elif isinstance(e, ev.GenerationStarted):
            p.update(self.ind_task, completed=0, info=f"g{e.generation}")
        elif isinstance(e, ev.IndividualEvaluated):
            p.advance(self.ind_task)
            p.update(self.ind_task, info=f"g{e.generation}  last {e.fitness:.3f} ({e.seconds:.1f}s)")
        elif isinstance(e, ev.GenerationCompleted):
            p.advance(self.gen_task)
            p.update(self.gen_task, info=f"best {e.best:.3f}  mean {e.mean:.3f}  elite {e.elite_fitness:.3f}")
            self.console.print(f"generation {e.generation:3d}: best {e.best:.3f}  mean {e.mean:.3f}  "
                               f"worst {e.worst:.3f}  diversity {e.diversity:.2f}  "
                               f"{e.seconds:.1f}s  {e.images_per_s:,.0f} img/s")
        elif isinstance(e, ev.Paused):
            self.console.print("[yellow]paused[/]")
        elif isinstance(e, ev.Resumed):
            self.console.print("[green]resumed[/]")
        elif isinstance(e, ev.LearngeneExported):
            self.console.print(f"learngene exported: {e.path} (individual {e.individual}, fitness {e.fitness:.3f}, "
                               f"{e.fraction:.1%} of conv parameters)")
        elif isinstance(e, ev.Warning_):
            self.console.print(f"[yellow]warning:[/] {e.message}")
