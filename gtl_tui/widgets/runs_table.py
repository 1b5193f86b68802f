"""The table of the Runs screen: one row per run, sortable, filterable, with marks for comparison.

Built on :class:`~gtl_tui.widgets.vtable.VirtualTable`: only the visible rows are drawn, so sorting, filtering
or marking 200 runs costs a sort of keys and a few lines, not a rebuild of every row.
"""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.message import Message

from gtl_tui.experiments.runs_index import RunRow
from gtl_tui.widgets.vtable import Column, VirtualTable

STATE_STYLE = {"running": "green", "starting": "green", "paused": "yellow", "pausing": "yellow",
               "stopping": "yellow", "finished": "bold green", "stopped": "cyan", "failed": "red",
               "crashed": "red", "created": "dim"}
#: What each column sorts by (the mark column sorts marked rows first), its label, width and side.
COLUMNS = (("marked", "", 1, "left"), ("name", "run", 24, "left"), ("state", "state", 8, "left"),
           ("progress", "gen", 5, "right"), ("best", "best", 6, "right"),
           ("eval", "5-shot lg/scr", 13, "left"), ("seed", "seed", 4, "right"), ("setting", "setting", 24, "left"))
SORTS = tuple(c[0] for c in COLUMNS)


def _num(v: float | None) -> float:
    return float("-inf") if v is None else v


class RunsTable(VirtualTable):
    """Runs as rows. Space marks a row, ``a`` marks (or unmarks) every run of the row's sweep, ``s`` sorts by
    the next column, ``r`` reverses the order; Enter posts :class:`Opened`, ``c`` :class:`CompareRequested`."""

    BINDINGS = [
        Binding("enter", "open", "Open", tooltip="Open this run's monitor (Escape comes back)", id="open"),
        Binding("space", "toggle_mark", "Mark", tooltip="Mark or unmark this run for comparison", id="mark"),
        Binding("a", "mark_sweep", "Mark sweep", tooltip="Mark (or unmark) every run of this run's sweep",
                id="mark-sweep"),
        Binding("s", "sort_next", "Sort", tooltip="Sort by the next column", id="sort"),
        Binding("r", "reverse", "Reverse", tooltip="Reverse the order", id="reverse"),
        Binding("c", "compare", "Compare", tooltip="Compare the marked runs (or this run's sweep)", id="compare"),
    ]

    class Opened(Message):
        """Enter on a run: open its monitor."""

        def __init__(self, row: RunRow) -> None:
            super().__init__()
            self.row = row

    class CompareRequested(Message):
        """Compare these runs."""

        def __init__(self, rows: list[RunRow]) -> None:
            super().__init__()
            self.rows = rows

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__([Column(k, label, w, j) for k, label, w, j in COLUMNS], id=id)
        self.rows_by_name: dict[str, RunRow] = {}
        self.order: list[str] = []
        self.marked: set[str] = set()
        self.filter_text = ""
        self.sort_by = "name"
        self.reverse_order = False

    # -- data
    def set_runs(self, rows: list[RunRow]) -> None:
        self.rows_by_name = {r.name: r for r in rows}
        self.marked &= set(self.rows_by_name)
        self.fit_columns()
        self.redraw()

    def fit_columns(self) -> None:
        """Share the width left by the fixed columns between the run's name and its setting, so that the table
        fits the screen (80 columns too) without a horizontal scroll."""
        rows = self.rows_by_name.values()
        want_name = max((len(r.name) for r in rows), default=3)
        want_setting = max((len(r.setting()) for r in rows), default=7)
        fixed = sum(w + 2 for k, _, w, _ in COLUMNS if k not in ("name", "setting")) + 4
        room = max((self.size.width or 120) - 1 - fixed, 20)  # 1: the vertical scrollbar
        name_w = min(want_name, max(12, room - min(want_setting, room // 2)))
        setting_w = max(room - name_w, 7)
        widths = {"name": name_w, "setting": setting_w}
        self.set_columns([Column(k, label, widths.get(k, w), j) for k, label, w, j in COLUMNS])

    def on_resize(self) -> None:
        super().on_resize()
        if self.rows_by_name:
            self.fit_columns()

    def visible(self) -> list[RunRow]:
        words = self.filter_text.lower().split()
        rows = [r for r in self.rows_by_name.values()
                if all(w in f"{r.name} {r.state} {r.setting()} seed={r.seed}".lower() for w in words)]
        return sorted(rows, key=self._key, reverse=self.reverse_order)

    def _key(self, r: RunRow) -> tuple:
        by = self.sort_by
        if by == "marked":
            return (r.name not in self.marked, r.name)
        if by == "state":
            return (r.state, r.name)
        if by == "progress":
            return (r.generation / (r.generations or 1), r.name)
        if by == "best":
            return (_num(r.best), r.name)
        if by == "eval":
            return (_num(r.headline[0] - r.headline[1]) if r.headline else float("-inf"), r.name)
        if by == "seed":
            return (str(r.seed), r.name)
        if by == "setting":
            return (r.setting(), r.name)
        return (r.name,)

    def cells(self, r: RunRow) -> list[Text]:
        mark = Text("●", style="bold magenta") if r.name in self.marked else Text(" ")
        best = Text(f"{r.best:.3f}" if r.best is not None else "-", justify="right")
        if r.headline:
            lg, sc = r.headline
            head = Text(f"{100 * lg:.1f} / {100 * sc:.1f}", style="green" if lg > sc else "red")
        else:
            head = Text("-", style="dim")
        return [mark, Text(r.name), Text(r.state, style=STATE_STYLE.get(r.state, "")),
                Text(r.progress(), justify="right"), best, head, Text(str(r.seed)), Text(r.setting(), style="dim")]

    def redraw(self) -> None:
        """Show the rows in the current order and filter, the cursor staying on the same run."""
        self.order = [r.name for r in self.visible()]
        self.set_rows(self.order, lambda name: self.cells(self.rows_by_name[name]))

    def update_row(self, row: RunRow) -> None:
        """Draw one run's cells again (a live run's progress, a mark)."""
        self.rows_by_name[row.name] = row
        self.update_rows([row.name])

    def current(self) -> RunRow | None:
        key = self.cursor_key
        return self.rows_by_name.get(key) if key is not None else None

    # -- actions
    def action_toggle_mark(self) -> None:
        r = self.current()
        if r is not None:
            self.marked ^= {r.name}
            self.update_row(r)

    def action_mark_sweep(self) -> None:
        r = self.current()
        if r is None:
            return
        group = {n for n, x in self.rows_by_name.items() if x.sweep == r.sweep} if r.sweep else {r.name}
        self.marked = self.marked - group if group <= self.marked else self.marked | group
        self.update_rows(group)

    def action_sort_next(self) -> None:
        self.sort_by = SORTS[(SORTS.index(self.sort_by) + 1) % len(SORTS)]
        self.redraw()

    def action_reverse(self) -> None:
        self.reverse_order = not self.reverse_order
        self.redraw()

    def action_compare(self) -> None:
        rows = [self.rows_by_name[n] for n in self.order if n in self.marked]
        if not rows:
            r = self.current()
            if r is not None:
                rows = [x for x in self.rows_by_name.values() if x.sweep == r.sweep] if r.sweep else [r]
        if rows:
            self.post_message(self.CompareRequested(rows))

    def action_open(self) -> None:
        r = self.current()
        if r is not None:
            self.post_message(self.Opened(r))
