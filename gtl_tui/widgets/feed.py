"""The event feed: one line per event, the newest at the bottom, bounded, searchable.

Each line shows the wall-clock time (local), the time since the run started, and the event. ``EventLog`` puts a
filter box above the feed: the feed then shows only the lines that contain its text (any case).

Built on the Line API: adding an event stores its summary (a string and a style); a line is rendered only when
it is on screen. (A ``RichLog`` renders every line as it is written: 500 lines on attach cost ~0.3 s.)
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.cache import LRUCache
from textual.containers import Vertical
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input

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
        self.query = ""
        """Only lines containing this (any case) are shown; empty shows all."""
        self._shown: list[int] | None = None  # numbers of the lines shown under a query (None: all)

    def clear(self) -> None:
        self._items.clear()
        self._strips.clear()
        self._first = 0
        self._width = 0
        self._shown = None if not self.query else []
        self.virtual_size = Size(0, 0)
        self.refresh()

    def set_query(self, query: str) -> None:
        """Show only the lines that contain ``query`` (case-insensitive); an empty query shows them all."""
        self.query = query.strip().lower()
        if not self.query:
            self._shown = None
        else:
            self._shown = [self._first + k for k, item in enumerate(self._items) if self._matches(item)]
        self._resize()
        self.scroll_end(animate=False)

    def _matches(self, item: tuple[str, str, str]) -> bool:
        return self.query in item[0].lower() or self.query in item[1].lower()

    @property
    def shown(self) -> int:
        """How many lines the feed shows (all kept ones, or those matching the query)."""
        return len(self._items) if self._shown is None else len(self._shown)

    def _resize(self) -> None:
        if self._shown is not None:
            self._shown = [n for n in self._shown if n >= self._first]  # lines dropped past max_lines
        self.virtual_size = Size(self._width, self.shown)
        self.refresh()

    def add_events(self, events: Iterable[Event]) -> None:
        """Append a line per event (the oldest drop out past ``max_lines``) and follow the end."""
        n = len(self._items)
        for ev in events:
            if self.origin is None:
                self.origin = ev.t
            text, style = describe(ev)
            when = f"{time.strftime('%H:%M:%S', time.localtime(ev.t))} {fmt.duration(ev.t - self.origin):>8}"
            item = (when, text, style)
            self._items.append(item)
            self._width = max(self._width, len(when) + 1 + len(text))
            if self._shown is not None and self._matches(item):
                self._shown.append(self._first + n)
            n += 1
        self._first += max(0, n - len(self._items))
        self._resize()
        self.scroll_end(animate=False)

    def shown_items(self) -> list[tuple[str, str]]:
        """(time, text) of each line shown, oldest first (what `x` writes)."""
        return [self._items[self._index(y)][:2] for y in range(self.shown)]

    @property
    def lines(self) -> list[Strip]:
        """Every line kept, rendered (for tests; drawing renders only the visible ones)."""
        return [self._strip(self._index(y)) for y in range(self.shown)]

    def _index(self, y: int) -> int:
        """The index in ``_items`` of the feed's ``y``-th shown line."""
        return y if self._shown is None else self._shown[y] - self._first

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
        row = scroll_y + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if row >= self.shown:
            return Strip.blank(width, base)
        return self._strip(self._index(row)).crop_extend(scroll_x, scroll_x + width, None).apply_style(base)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()


class EventLog(Vertical):
    """The feed under a filter box: ``/`` (on the Events tab) types into the box, Escape clears it."""

    DEFAULT_CSS = """
    EventLog { height: 1fr; }
    EventLog #feed-filter { height: 1; border: none; padding: 0 1; background: $panel; }
    EventLog #feed-filter:focus { background: $boost; }
    """
    BINDINGS = [Binding("slash", "search", "Search", tooltip="Filter the events by text", show=False)]

    def __init__(self, *, max_lines: int = 500, id: str | None = None) -> None:
        super().__init__(id=id)
        self.max_lines = max_lines

    def compose(self) -> ComposeResult:
        yield Input(placeholder="/ filter events (any text; Escape clears)", id="feed-filter")
        yield EventFeed(max_lines=self.max_lines, id="feed")

    def action_search(self) -> None:
        self.query_one(Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_one(EventFeed).set_query(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one(EventFeed).focus()

    def on_key(self, event) -> None:
        box = self.query_one(Input)
        if event.key == "escape" and box.has_focus:
            event.stop()
            box.value = ""
            self.query_one(EventFeed).focus()
