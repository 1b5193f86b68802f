"""The row of tab names above the views: one widget drawn as two lines (names, and a bar under the active one).

Textual's ``TabbedContent`` is a dozen widgets (a ``ContentTab`` per tab, an animated ``Underline``, containers):
on every switch each of them was restyled, twice when the focus moved, and the underline moved in a frame of its
own, which was a third of a tab switch. This draws the same row as one ``Text`` and maps a click to its tab.
The views themselves live in a ``ContentSwitcher``; the app switches both.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget


class TabBar(Widget):
    """Tab names with their number keys; ``active`` is the shown tab's id. A click posts :class:`TabBar.Clicked`."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"tabbar--active", "tabbar--inactive", "tabbar--key", "tabbar--bar", "tabbar--rule"}
    DEFAULT_CSS = """
    TabBar {
        height: 2;
        background: $panel;
        & > .tabbar--active { color: $foreground; text-style: bold; }
        & > .tabbar--inactive { color: $foreground-muted; }
        & > .tabbar--key { color: $accent; }
        & > .tabbar--bar { color: $primary; }
        & > .tabbar--rule { color: $panel-lighten-2; }
    }
    """

    active: reactive[str] = reactive("", layout=False)

    class Clicked(Message):
        """The user clicked the name of tab ``tab``."""

        def __init__(self, tab: str) -> None:
            super().__init__()
            self.tab = tab

    def __init__(self, tabs: list[tuple[str, str]], active: str, *, id: str | None = None) -> None:
        """``tabs``: (id, title) in order; the n-th is shown with the key n."""
        super().__init__(id=id)
        self.tabs = tabs
        self.set_reactive(TabBar.active, active)
        self._spans: list[tuple[int, int, str]] = []  # (start, end, tab id) of each name on the line

    def render(self) -> Text:
        style = self.get_component_rich_style
        active, inactive = style("tabbar--active", partial=True), style("tabbar--inactive", partial=True)
        key, bar, rule = (style(c, partial=True) for c in ("tabbar--key", "tabbar--bar", "tabbar--rule"))
        names = Text(no_wrap=True, overflow="crop", end="")
        under = Text(no_wrap=True, overflow="crop", end="")
        spans = []
        for n, (tab, title) in enumerate(self.tabs, 1):
            start = names.cell_len
            names.append(" ")
            names.append(str(n), style=key)
            names.append(f" {title} ", style=active if tab == self.active else inactive)
            spans.append((start, names.cell_len, tab))
            under.append("━" * (names.cell_len - start) if tab == self.active else "─" * (names.cell_len - start),
                         style=bar if tab == self.active else rule)
        width = self.size.width
        if width > under.cell_len:
            under.append("─" * (width - under.cell_len), style=rule)
        self._spans = spans
        return Text("\n", no_wrap=True, overflow="crop", end="").join([names, under])

    def on_click(self, event: events.Click) -> None:
        for start, end, tab in self._spans:
            if start <= event.x < end:
                event.stop()
                self.post_message(self.Clicked(tab))
                return
