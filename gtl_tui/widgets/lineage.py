"""The selected individual's family: its ancestors back to generation 0 and its descendants.

Drawn like a ``Tree`` (guides, ▼/▶ to fold a branch) but on the Line API: ``show`` lays the family out as a
list of lines once, and only the lines on screen are rendered. (``Tree`` re-styled every line on each of
several repaints after a rebuild: ~0.3 s per selection on a long run.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from gtl_tui.state import RunState
from gtl_tui.widgets import fmt
from gtl_tui.widgets.cursor import CURSOR_BINDINGS
from gtl_tui.widgets.focus import NoFocusRestyle

MAX_DESCENDANTS = 300  # nodes drawn below the selected individual
GUIDE_SPACE, GUIDE_VERTICAL, GUIDE_LAST, GUIDE_CROSS = "   ", "│  ", "└─ ", "├─ "
ICON_OPEN, ICON_CLOSED = "▼ ", "▶ "


@dataclass(eq=False)
class LineageNode:
    """One line of the lineage: an individual (``data``) or a note such as "… 2 other children"."""

    label: Text
    data: int | None = None
    children: list[LineageNode] = field(default_factory=list)
    expanded: bool = True

    def add(self, label: Text, data: int | None = None) -> LineageNode:
        node = LineageNode(label, data)
        self.children.append(node)
        return node


class LineageTree(NoFocusRestyle, ScrollView, can_focus=True):
    """Rebuilt (``show``) when the selection or the family changes; small by construction."""

    BINDINGS = [
        *CURSOR_BINDINGS,
        Binding("enter,space", "toggle", "Fold", show=False, tooltip="Fold or unfold the branch under the cursor"),
    ]
    COMPONENT_CLASSES = {"lineage--guides", "lineage--cursor", "lineage--cursor-blurred"}
    DEFAULT_CSS = """
    LineageTree {
        height: 1fr;
        background: $surface;
        color: $foreground;
        & > .lineage--guides { color: $surface-lighten-2; }
        & > .lineage--cursor {
            color: $block-cursor-foreground;
            background: $block-cursor-background;
            text-style: $block-cursor-text-style;
        }
        & > .lineage--cursor-blurred {
            text-style: $block-cursor-blurred-text-style;
            background: $block-cursor-blurred-background;
        }
        &:light > .lineage--guides { color: $surface-darken-1; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.individual: int | None = None
        self.root = LineageNode(Text("lineage"))
        self.cursor_line = 0
        self._lines: list[tuple[str, LineageNode]] = []  # (guides, node) of each visible line
        self._strips: LRUCache[tuple[int, int], Strip] = LRUCache(512)  # (line, look) -> drawn line
        self._styles: tuple[Style, ...] | None = None  # guides, cursor, blurred cursor: once per style change
        self._shown_size = Size(0, 0)  # the content size when last shown (a hidden tab has no size)

    def label_for(self, state: RunState, i: int, *, selected: bool = False) -> Text:
        rec = state.individuals[i]
        text = Text()
        if selected:
            text.append("▶ ", style="bold cyan")
        text.append(f"#{i}", style="bold cyan" if selected else "bold")
        text.append(f" g{rec.generation} ", style="dim")
        text.append(fmt.fitness(rec.fitness), style="green" if rec.fitness is not None else "dim")
        if rec.rank is not None:
            text.append(f" r{rec.rank}", style="dim")
        text.append(f" {rec.fraction:.0%}", style="dim")
        if rec.won:
            text.append(" ★", style="yellow")
        if rec.mutations:
            text.append("  " + fmt.mutation_summary(rec.mutations), style="magenta")
        elif rec.parent is not None:
            text.append("  no mutation", style="dim")
        if state.is_extinct(i):
            text.append("  ✝ extinct", style="red")
            text.stylize("dim")
        return text

    def show(self, state: RunState, individual: int | None) -> None:
        self.individual = individual
        self.root = LineageNode(Text("no individual yet", style="dim"))
        if individual is None or individual not in state.individuals:
            self._layout(None)
            return
        path = state.lineage(individual)
        back = len(path) - 1  # the path holds the individual itself: g1 -> g0 is one generation back
        self.root.label = Text(f"lineage of #{individual}: {back} generation{'s' if back != 1 else ''} back to "
                               f"#{path[0]}, {len(state.descendants(individual))} descendants", style="bold")
        node = self.root
        for i in path:
            is_sel = i == individual
            child = node.add(self.label_for(state, i, selected=is_sel), i)
            if not is_sel:
                others = len(state.children.get(i, ())) - 1
                if others > 0:
                    child.add(Text(f"… {others} other {'child' if others == 1 else 'children'}", style="dim"))
            node = child
        self._add_descendants(state, node, individual)
        self._layout(node)

    def _add_descendants(self, state: RunState, node: LineageNode, individual: int) -> None:
        budget = MAX_DESCENDANTS
        frontier = [(node, individual)]
        while frontier and budget > 0:
            nxt = []
            for parent_node, i in frontier:
                kids = [k for k in state.children.get(i, ()) if k in state.individuals]
                kids.sort(key=lambda k: -(state.individuals[k].fitness or -1.0))
                for k in kids:
                    if budget <= 0:
                        parent_node.add(Text("… more", style="dim"))
                        break
                    budget -= 1
                    nxt.append((parent_node.add(self.label_for(state, k), k), k))
            frontier = nxt

    # ---- layout & drawing ----------------------------------------------------------------------------
    def _layout(self, cursor: LineageNode | None) -> None:
        """Flatten the visible nodes into lines; the cursor goes to ``cursor`` (else stays on its node)."""
        keep = cursor or (self._lines[self.cursor_line][1] if self.cursor_line < len(self._lines) else None)
        lines: list[tuple[str, LineageNode]] = []

        def walk(node: LineageNode, prefix: str, guide: str) -> None:
            lines.append((prefix + guide, node))
            if node.expanded:
                below = prefix + ("" if not guide else GUIDE_SPACE if guide == GUIDE_LAST else GUIDE_VERTICAL)
                for n, child in enumerate(node.children):
                    walk(child, below, GUIDE_LAST if n == len(node.children) - 1 else GUIDE_CROSS)

        walk(self.root, "", "")
        self._lines = lines
        self._strips.clear()
        index = next((n for n, (_, node) in enumerate(lines) if node is keep), 0)
        self.cursor_line = min(index, len(lines) - 1)
        width = max(len(g) + 2 + node.label.cell_len for g, node in lines)
        self.virtual_size = Size(width, len(lines))
        self.refresh()
        self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        # Hidden, the view has no size: it scrolls for the height it had when last shown, so that showing it
        # does not scroll it (one more layout and a repaint of every line).
        height = self.scrollable_content_region.height or self._height_when_shown()
        if height <= 1:
            return  # never laid out yet: ``on_resize`` comes back here
        top = min(round(self.scroll_y), max(0, len(self._lines) - height))
        if self.cursor_line < top:
            top = self.cursor_line
        elif self.cursor_line >= top + height:
            top = self.cursor_line - height // 2
        if top != round(self.scroll_y):
            self.scroll_to(y=top, animate=False, immediate=True)

    def on_resize(self) -> None:
        if self.container_size.height > 1:
            self._shown_size = self.container_size
        self._scroll_to_cursor()

    def _height_when_shown(self) -> int:
        """Lines on screen once shown again at the last size: less a row when the content will need a
        horizontal scrollbar (Textual's rule for scrollbars with ``overflow: auto``)."""
        (w, h), (vw, vh) = self._shown_size, self.virtual_size
        if h <= 1:
            return 0  # never shown
        across, down = vw > w, vh > h
        if down and not across:
            across = vw > w - self.styles.scrollbar_size_vertical
        if across and not down:
            down = vh > h - self.styles.scrollbar_size_horizontal
        return h - (self.styles.scrollbar_size_horizontal if across else 0)

    def draw_ahead(self) -> None:
        """Draw into the cache the lines the view will show when its tab is shown next (called while hidden:
        at the size it had when last shown, scrolled to the cursor)."""
        self._scroll_to_cursor()
        for y in range(self._height_when_shown()):
            self.render_line(y)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()
        self._styles = None
        self.refresh()

    def _line_styles(self) -> tuple[Style, Style, Style]:
        # Resolving a component class walks the stylesheet: once per style change, not once per line.
        if self._styles is None:
            self._styles = tuple(self.get_component_rich_style(name, partial=True) for name in
                                 ("lineage--guides", "lineage--cursor", "lineage--cursor-blurred"))
        return self._styles

    def line_kind(self, index: int) -> int:
        """How line ``index`` looks: 0 a plain line, 1 the cursor (focused), 2 the cursor (not focused)."""
        return 0 if index != self.cursor_line else 1 if self.has_focus else 2

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = y + scroll_y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if index >= len(self._lines):
            return Strip.blank(width, base)
        kind = self.line_kind(index)
        strip = self._strips.get((index, kind))
        if strip is None:
            guide_style, *cursor_styles = self._line_styles()
            guides, node = self._lines[index]
            head = guides + ((ICON_OPEN if node.expanded else ICON_CLOSED) if node.children else "")
            label = node.label
            if kind:
                label = label.copy()
                label.stylize(cursor_styles[kind - 1])
            # The guide style is the line's base style, under the label's own (``Text.render`` leaves a label's
            # base style out when it has no spans, so it goes into the base too).
            under = guide_style + self.app.console.get_style(label.style)
            strip = Strip([Segment(head, guide_style), *Segment.apply_style(label.render(self.app.console), under)])
            self._strips.set((index, kind), strip)
        return strip.crop_extend(scroll_x, scroll_x + width, None).apply_style(base)

    # ---- input ---------------------------------------------------------------------------------------
    def move_cursor(self, line: int) -> None:
        if not self._lines:
            return
        self.cursor_line = min(max(line, 0), len(self._lines) - 1)
        self.refresh()
        self._scroll_to_cursor()

    def action_cursor(self, step: int) -> None:
        self.move_cursor(self.cursor_line + step)

    def action_page(self, step: int) -> None:
        self.move_cursor(self.cursor_line + step * max(self.scrollable_content_region.height - 1, 1))

    def action_jump(self, line: int) -> None:
        self.move_cursor(line if line >= 0 else len(self._lines) - 1)

    def action_toggle(self) -> None:
        """Fold or unfold the branch under the cursor."""
        if self.cursor_line < len(self._lines):
            node = self._lines[self.cursor_line][1]
            if node.children:
                node.expanded = not node.expanded
                self._layout(node)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        line = offset.y + round(self.scroll_y)
        if line < len(self._lines):
            if line == self.cursor_line:
                self.action_toggle()
            else:
                self.move_cursor(line)
