"""The line above the population table: which generation it shows, and how to browse the others (``[`` / ``]``).

One ``Text`` line, redrawn only when what it says changes (it is updated on every tick of the monitor).
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget


class GenerationPicker(Widget):
    """Says "generation 3 of 0-7" and whether the table follows the current generation."""

    DEFAULT_CSS = """
    GenerationPicker {
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $foreground;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._key: tuple[int, int, int] | None = None
        self._text = Text("")

    @property
    def text(self) -> Text:
        return self._text

    def show(self, shown: int, current: int, first: int) -> None:
        """``shown``: the generation in the table; ``current``: the run's newest; ``first``: the oldest held."""
        key = (shown, current, first)
        if key == self._key:
            return
        self._key = key
        line = Text(no_wrap=True, overflow="ellipsis", end="")
        if shown < 0:
            line.append("no generation yet")
        else:
            line.append("generation ")
            line.append(str(shown), style="bold")
            if shown == current:
                line.append(" (current)")
            else:
                line.append(" (past)", style="bold")
            line.append(f"  of {first}-{current}" if current > first else "")
            line.append("   [ older  ] newer  b best now  E elite", style="dim")
        self._text = line
        self.refresh()

    def render(self) -> Text:
        return self._text
