"""The event feed: one line per event, the newest at the bottom, bounded.

Built on the Line API: adding an event stores its summary (a string and a style); a line is rendered only when
it is on screen. (A ``RichLog`` renders every line as it is written: 500 lines on attach cost ~0.3 s.)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from rich.text import Text
from textual.cache import LRUCache
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

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
from gtl_tui.widgets.focus import NoFocusRestyle


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


class EventFeed(NoFocusRestyle, ScrollView, can_focus=True):
    """Times are shown relative to the run's start (``origin``), so a feed reads the same anywhere."""

    DEFAULT_CSS = """
    EventFeed {
        height: 1fr;
        background: $surface;
        color: $foreground;
        overflow-y: scroll;
    }
    """

    def __init__(self, *, max_lines: int = 500, id: str | None = None) -> None:
        super().__init__(id=id)
        self.max_lines = max_lines
        self.origin: float | None = None
        self._items: deque[tuple[str, str, str]] = deque(maxlen=max_lines)  # (time, text, style)
        self._first = 0  # number of the oldest line kept (lines are numbered from the last clear)
        self._width = 0
        self._strips: LRUCache[int, Strip] = LRUCache(256)

    def clear(self) -> None:
        self._items.clear()
        self._strips.clear()
        self._first = 0
        self._width = 0
        self.virtual_size = Size(0, 0)
        self.refresh()

    def add_events(self, events: Iterable[Event]) -> None:
        """Append a line per event (the oldest drop out past ``max_lines``) and follow the end."""
        n = len(self._items)
        for ev in events:
            if self.origin is None:
                self.origin = ev.t
            text, style = describe(ev)
            when = fmt.duration(ev.t - self.origin)
            self._items.append((when, text, style))
            self._width = max(self._width, len(when) + 1 + len(text))
            n += 1
        self._first += max(0, n - len(self._items))
        self.virtual_size = Size(self._width, len(self._items))
        self.refresh()
        self.scroll_end(animate=False)

    @property
    def lines(self) -> list[Strip]:
        """Every line kept, rendered (for tests; drawing renders only the visible ones)."""
        return [self._strip(k) for k in range(len(self._items))]

    def _strip(self, index: int) -> Strip:
        number = self._first + index
        strip = self._strips.get(number)
        if strip is None:
            when, text, style = self._items[index]
            line = Text(f"{when} ", style="dim", end="")
            line.append(text, style=style)
            strip = Strip(line.render(self.app.console), line.cell_len)
            self._strips.set(number, strip)
        return strip

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if index >= len(self._items):
            return Strip.blank(width, base)
        return self._strip(index).crop_extend(scroll_x, scroll_x + width, None).apply_style(base)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()
