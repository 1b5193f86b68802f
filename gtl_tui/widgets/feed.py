"""The event feed: one line per event, the newest at the bottom, bounded."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.widgets import RichLog

from engine.events import (
    CheckpointSaved,
    Event,
    GenerationCompleted,
    GenerationStarted,
    IndividualBorn,
    IndividualEvaluated,
    IndividualStarted,
    LearngeneExported,
    Paused,
    Resumed,
    RunFinished,
    RunStarted,
    Tournament,
    Warning_,
)
from gtl_tui.widgets import fmt


def describe(ev: Event) -> tuple[str, str]:
    """A one-line summary of an event and its style."""
    if isinstance(ev, RunStarted):
        extra = f", resumed at gen {ev.resumed_from}" if ev.resumed_from is not None else ""
        return f"run {ev.name} started: {ev.arch} on {ev.device}, P={ev.population} G={ev.generations}{extra}", "bold"
    if isinstance(ev, GenerationStarted):
        return f"generation {ev.generation} started", "bold cyan"
    if isinstance(ev, IndividualBorn):
        parent = f"from #{ev.parent}" if ev.parent is not None else "random"
        muts = f", {fmt.mutation_summary(ev.mutations)}" if ev.mutations else ""
        return f"#{ev.id} born ({parent}), gene {ev.fraction:.1%}{muts}", ""
    if isinstance(ev, IndividualStarted):
        return f"#{ev.id} training", "dim"
    if isinstance(ev, IndividualEvaluated):
        return f"#{ev.id} fitness {ev.fitness:.3f} in {ev.seconds:.1f}s", "green"
    if isinstance(ev, Tournament):
        return f"tournament {', '.join(f'#{i}' for i in ev.group)}: #{ev.winner} wins", "yellow"
    if isinstance(ev, GenerationCompleted):
        return (f"generation {ev.generation} done: best {ev.best:.3f} mean {ev.mean:.3f} worst {ev.worst:.3f}, "
                f"elite #{ev.elite_id} {ev.elite_fitness:.3f}", "bold green")
    if isinstance(ev, CheckpointSaved):
        return f"checkpoint after gen {ev.generation}: {ev.path}", "dim"
    if isinstance(ev, LearngeneExported):
        return f"learngene of #{ev.individual} exported ({ev.reason}): {ev.path}", "bold magenta"
    if isinstance(ev, Paused):
        return f"paused in generation {ev.generation}", "bold yellow"
    if isinstance(ev, Resumed):
        return f"resumed in generation {ev.generation}", "bold yellow"
    if isinstance(ev, Warning_):
        return f"warning: {ev.message}", "bold yellow"
    if isinstance(ev, RunFinished):
        err = f": {ev.error}" if ev.error else ""
        return f"run {ev.status}{err}", "bold red" if ev.status == "failed" else "bold blue"
    return ev.kind, ""


class EventFeed(RichLog):
    """Times are shown relative to the run's start (``origin``), so a feed reads the same anywhere."""

    DEFAULT_CSS = """
    EventFeed { height: 1fr; }
    """

    def __init__(self, *, max_lines: int = 500, id: str | None = None) -> None:
        super().__init__(max_lines=max_lines, wrap=False, markup=False, highlight=False, id=id)
        self.origin: float | None = None

    def add_events(self, events: Iterable[Event]) -> None:
        for ev in events:
            if self.origin is None:
                self.origin = ev.t
            line = Text(f"{fmt.duration(ev.t - self.origin)} ", style="dim")
            text, style = describe(ev)
            line.append(text, style=style)
            self.write(line)
