"""The footer: the keys that work here, each clickable; one widget drawn as one line.

Textual's ``Footer`` recomposes a widget per key whenever the focus moves, which on a tab switch cost more
than drawing the tab (~0.1-0.2 s on a slow machine). This draws the same keys as one ``Text`` and maps a
click back to its key.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget


class KeyBar(Widget):
    """Shown bindings of the focused chain (``Binding.show``), and the command palette key on the right."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"keybar--key", "keybar--description"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        & > .keybar--key { color: $footer-key-foreground; background: $footer-key-background; text-style: bold; }
        & > .keybar--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._spans: list[tuple[int, int, str]] = []  # (start, end, key) of each key on the line
        self._drawn: tuple | None = None  # what the line shows, to skip redrawing the same keys

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen) -> None:
        # Textual signals after every focus change (after the frame is drawn): redraw only if the keys changed.
        if screen is self.screen and self._signature(*self._items()) != self._drawn:
            self.refresh()

    @staticmethod
    def _signature(items: list[tuple[Binding, bool]], palette: tuple[Binding, bool] | None) -> tuple:
        return tuple((b.key, b.description, on) for b, on in items), palette and (palette[0].key, palette[1])

    def _items(self) -> tuple[list[tuple[Binding, bool]], tuple[Binding, bool] | None]:
        active = self.screen.active_bindings
        seen: set[str] = set()
        items = []
        for _, binding, enabled, _ in active.values():
            if binding.show and binding.action not in seen:
                seen.add(binding.action)
                items.append((binding, enabled))
        palette = None
        if self.app.ENABLE_COMMAND_PALETTE and self.app.COMMAND_PALETTE_BINDING in active:
            _, binding, enabled, _ = active[self.app.COMMAND_PALETTE_BINDING]
            palette = (binding, enabled)
        return items, palette

    def render(self) -> Text:
        items, palette = self._items()
        self._drawn = self._signature(items, palette)
        key_style = self.get_component_rich_style("keybar--key", partial=True)
        desc_style = self.get_component_rich_style("keybar--description", partial=True)
        line = Text(no_wrap=True, overflow="crop", end="")
        spans = []
        for binding, enabled in items:
            start = line.cell_len
            line.append(f" {self.app.get_key_display(binding)} ", style=key_style)
            line.append(f"{binding.description} ", style=desc_style)
            if not enabled:
                line.stylize("dim", start)
            spans.append((start, line.cell_len, binding.key.split(",")[0]))
        if palette is not None:
            binding, _ = palette
            tail = Text("▏", style=desc_style)
            tail.append(f"{self.app.get_key_display(binding)} ", style=key_style)
            tail.append(f"{binding.description} ", style=desc_style)
            start = max(line.cell_len, self.size.width - tail.cell_len)
            line.append(" " * (start - line.cell_len))
            line.append_text(tail)
            spans.append((start, line.cell_len, binding.key.split(",")[0]))
        self._spans = spans
        return line

    def on_click(self, event: events.Click) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                event.stop()
                self.app.simulate_key(key)
                return
