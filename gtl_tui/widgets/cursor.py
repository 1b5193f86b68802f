"""Keys of the line views that move a cursor over their lines (the tables, the lineage tree).

A view using them implements ``action_cursor(step)``, ``action_page(step)`` and ``action_jump(line)`` (-1: last).
"""

from __future__ import annotations

from textual.binding import Binding

CURSOR_BINDINGS = [
    Binding("up", "cursor(-1)", "Up", show=False),
    Binding("down", "cursor(1)", "Down", show=False),
    Binding("pageup", "page(-1)", "Page up", show=False),
    Binding("pagedown", "page(1)", "Page down", show=False),
    Binding("home,ctrl+home", "jump(0)", "Top", show=False),
    Binding("end,ctrl+end", "jump(-1)", "Bottom", show=False),
]
