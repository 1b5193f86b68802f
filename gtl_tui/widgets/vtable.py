"""A virtual table on Textual's Line API: only the visible rows are rendered, whatever the row count.

``DataTable`` builds a row object per row and re-renders cells through Rich's layout engine; with 1,000
individuals (or 40,000 mutations) that made every sort, tab switch and live tick cost hundreds of
milliseconds. Here the table holds only an ordered list of row keys and a function that gives a row's cells;
a row is turned into a :class:`Strip` when it scrolls into view (and cached), so sorting is sorting the keys.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from gtl_tui.widgets.cursor import CURSOR_BINDINGS
from gtl_tui.widgets.focus import NoFocusRestyle

Cell = str | Text
"""A cell: plain text, or a Rich ``Text`` whose styles are kept."""


@dataclass
class Column:
    """One column: ``width`` cells of content between one cell of padding on each side."""

    key: str
    label: str | Text
    width: int
    justify: Literal["left", "right"] = "left"


def fit(cell: Cell, width: int, justify: str) -> Text:
    """``cell`` cut (with an ellipsis) or padded to exactly ``width`` cells."""
    text = Text(cell) if isinstance(cell, str) else cell.copy()
    text.end = ""
    if text.cell_len > width:
        text.truncate(width, overflow="ellipsis")
    pad = width - text.cell_len
    if pad > 0:
        if justify == "right":
            text.pad_left(pad)
        else:
            text.pad_right(pad)
    return text


class VirtualTable(NoFocusRestyle, ScrollView, can_focus=True):
    """Rows are keys in display order (``set_rows``); ``row`` gives a key's cells when it is drawn.

    The header stays on the first line; the cursor is a whole row. Moving the cursor (keys, mouse, or
    ``move_cursor``) posts :class:`RowHighlighted`; clicking a header posts :class:`HeaderSelected`.
    """

    BINDINGS = CURSOR_BINDINGS
    COMPONENT_CLASSES = {"vtable--header", "vtable--cursor", "vtable--cursor-blurred", "vtable--even-row",
                         "vtable--odd-row"}
    DEFAULT_CSS = """
    VirtualTable {
        background: $surface;
        color: $foreground;
        height: 1fr;
        &:dark > .vtable--even-row { background: $surface-darken-1 40%; }
        & > .vtable--header { text-style: bold; background: $panel; color: $foreground; }
        &:ansi > .vtable--header { background: ansi_bright_blue; color: ansi_default; }
        & > .vtable--even-row { background: $surface-lighten-1 50%; }
        & > .vtable--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
        & > .vtable--cursor-blurred {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """

    class RowHighlighted(Message):
        """The cursor moved to another row."""

        def __init__(self, table: VirtualTable, index: int, key: Hashable) -> None:
            super().__init__()
            self.table, self.index, self.key = table, index, key

        @property
        def control(self) -> VirtualTable:
            return self.table

    class HeaderSelected(Message):
        """A column header was clicked."""

        def __init__(self, table: VirtualTable, column: str) -> None:
            super().__init__()
            self.table, self.column = table, column

        @property
        def control(self) -> VirtualTable:
            return self.table

    def __init__(self, columns: Sequence[Column] = (), *, zebra_stripes: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self.columns: list[Column] = list(columns)
        self.zebra_stripes = zebra_stripes
        self.keys: list[Hashable] = []
        """Row keys in display order."""
        self.cursor_row = 0
        self.cursor_shown = True
        """False while the row asked for is not in the table (e.g. the run's elite, from an older generation):
        no row is highlighted then, so none looks selected; the next move shows the cursor again."""
        self._index: dict[Hashable, int] | None = {}
        self._cells_of: Callable[[Hashable], Sequence[Cell]] = lambda key: ()
        self._lines: LRUCache[tuple[Hashable, int], Strip] = LRUCache(1024)  # (row key, look) -> drawn row
        self._header: Strip | None = None
        self._styles: dict[str, Style] = {}

    # ---- content -------------------------------------------------------------------------------------
    def set_columns(self, columns: Sequence[Column]) -> None:
        self.columns = list(columns)
        self._invalidate()

    def set_rows(self, keys: Sequence[Hashable], row: Callable[[Hashable], Sequence[Cell]] | None = None, *,
                 cursor: Hashable | None = None) -> None:
        """Show ``keys`` in this order (cells from ``row``, or the last one given); no message is posted.

        The cursor goes to ``cursor``'s row if given and shown, else stays on its key, else on its index. A
        ``cursor`` that is not among ``keys`` hides the cursor (``cursor_shown``).
        """
        keep = cursor if cursor is not None else self.cursor_key
        self.keys = list(keys)
        self._index = None
        if row is not None:
            self._cells_of = row
        self._lines.clear()
        index = self.get_row_index(keep) if keep is not None else None
        if cursor is not None:
            self.cursor_shown = index is not None
        self.cursor_row = min(max(index if index is not None else self.cursor_row, 0), max(len(self.keys) - 1, 0))
        self._resize()
        self._scroll_to_cursor()
        self.refresh()

    def update_rows(self, keys: Iterable[Hashable]) -> None:
        """Rows whose cells changed: drawn again (the order is the caller's: ``set_rows``)."""
        changed = set(keys)
        for k in [k for k in self._lines.keys() if k[0] in changed]:
            self._lines.discard(k)
        self.refresh()

    @property
    def row_count(self) -> int:
        return len(self.keys)

    @property
    def cursor_key(self) -> Hashable | None:
        return self.keys[self.cursor_row] if self.cursor_shown and 0 <= self.cursor_row < len(self.keys) else None

    def get_row_index(self, key: Hashable) -> int | None:
        """The display index of ``key``'s row, or None."""
        if self._index is None:
            self._index = {k: n for n, k in enumerate(self.keys)}
        return self._index.get(key)

    def move_cursor(self, *, row: int, animate: bool = False, quiet: bool = False) -> None:
        """Put the cursor on row ``row`` (clamped) and scroll it into view; posts ``RowHighlighted``
        when it moved (unless ``quiet``)."""
        if not self.keys:
            return
        row = min(max(row, 0), len(self.keys) - 1)
        moved = row != self.cursor_row or not self.cursor_shown
        old = self.cursor_key
        self.cursor_row, self.cursor_shown = row, True
        self._scroll_to_cursor()
        if moved:
            self.update_rows([old, self.cursor_key])
            if not quiet:
                self.post_message(self.RowHighlighted(self, row, self.cursor_key))

    def hide_cursor(self) -> None:
        """No row highlighted (the selection is not in the table); the next move shows the cursor again."""
        if self.cursor_shown:
            old = self.cursor_key
            self.cursor_shown = False
            self.update_rows([old])

    def _scroll_to_cursor(self) -> None:
        """Scroll just enough to show the cursor's row (and no further than the last row)."""
        height = self.scrollable_content_region.height
        if height <= 1:
            return  # not laid out yet (a hidden tab): ``on_resize`` comes back here
        visible = height - 1
        top = min(round(self.scroll_y), max(0, len(self.keys) - visible))
        if self.cursor_row < top:
            top = self.cursor_row
        elif self.cursor_row >= top + visible:
            top = self.cursor_row - visible + 1
        if top != round(self.scroll_y):
            self.scroll_to(y=top, animate=False, immediate=True)

    # ---- drawing -------------------------------------------------------------------------------------
    def _resize(self) -> None:
        width = sum(c.width + 2 for c in self.columns)
        self.virtual_size = Size(width, len(self.keys) + 1)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._invalidate()

    def _invalidate(self) -> None:
        """Everything drawn goes (new columns or styles)."""
        self._header = None
        self._styles.clear()
        self._lines.clear()
        self._resize()
        self.refresh()

    def on_resize(self) -> None:
        self._scroll_to_cursor()  # the cached lines stay valid: they are as wide as the columns, not the widget

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.rich_style if name == "base" else self.get_component_rich_style(name)
        return style

    def _line(self, cells: Sequence[Cell], style: Style, post: Style | None = None) -> Strip:
        line = Text(end="")
        for col, cell in zip(self.columns, cells, strict=False):
            line.append(" ")
            line.append_text(fit(cell, col.width, col.justify))
            line.append(" ")
        width = self.virtual_size.width
        segments = Segment.apply_style(line.render(self.app.console), style, post)
        return Strip(segments).adjust_cell_length(width, style)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        if y == 0:
            if self._header is None:
                self._header = self._line([c.label for c in self.columns],
                                          self._style("base") + self._style("vtable--header"))
            strip = self._header
        else:
            index = y - 1 + scroll_y
            if index >= len(self.keys):
                return Strip.blank(width, self._style("base"))
            strip = self._row_strip(index)
        return strip.crop_extend(scroll_x, scroll_x + width, self._style("base"))

    def _row_strip(self, index: int) -> Strip:
        key = self.keys[index]
        cursor = index == self.cursor_row and self.cursor_shown
        kind = (2 if self.has_focus else 3) if cursor else index % 2 if self.zebra_stripes else 1
        strip = self._lines.get((key, kind))
        if strip is None:
            row_style = self._style("vtable--even-row" if kind == 0 else "vtable--odd-row")
            post = self._style("vtable--cursor" if kind == 2 else "vtable--cursor-blurred") if cursor else None
            strip = self._line(self._cells_of(key), self._style("base") + row_style, post)
            self._lines.set((key, kind), strip)
        return strip

    # ---- input ---------------------------------------------------------------------------------------
    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        x, y = offset.x + round(self.scroll_x), offset.y
        if y == 0:
            edge = 0
            for col in self.columns:
                edge += col.width + 2
                if x < edge:
                    self.post_message(self.HeaderSelected(self, col.key))
                    break
            return
        index = y - 1 + round(self.scroll_y)
        if index < len(self.keys):
            self.move_cursor(row=index)

    def action_cursor(self, step: int) -> None:
        # A hidden cursor comes back where it is before it moves.
        self.move_cursor(row=self.cursor_row + step if self.cursor_shown else self.cursor_row)

    def action_page(self, step: int) -> None:
        self.move_cursor(row=self.cursor_row + step * max(self.scrollable_content_region.height - 1, 1))

    def action_jump(self, row: int) -> None:
        self.move_cursor(row=row if row >= 0 else len(self.keys) - 1)
