"""The population of the current generation as a sortable table; the highlighted row is the selection."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from gtl_tui.state import Changes, Individual, RunState
from gtl_tui.widgets import fmt

COLUMNS = (("id", "id"), ("parent", "parent"), ("tasks", "tasks"), ("gene", "gene"),
           ("fitness", "fitness"), ("rank", "rank"), ("state", "state"))
#: Sort keys by column (missing values last), and whether the column sorts descending first.
SORT_KEYS = {
    "id": (lambda r: r.id, False),
    "parent": (lambda r: (r.parent is None, r.parent or 0), False),
    "tasks": (lambda r: ",".join(r.task_names), False),
    "gene": (lambda r: r.fraction, True),
    "fitness": (lambda r: (r.fitness is not None, r.fitness or 0.0), True),
    "rank": (lambda r: (r.rank is None, r.rank or 0), False),
    "state": (lambda r: ("training", "done", "waiting").index(r.state) if r.state in
              ("training", "done", "waiting") else 3, False),
}
RANK_INTERVAL = 2.0  # seconds between re-rankings of a generation in progress (each moves many rows)
SORT_ORDER = ("id", "fitness", "rank", "gene", "parent", "state", "tasks")


class PopulationTable(DataTable):
    """Rows keyed by individual id; updated in place as individuals train (never rebuilt per event)."""

    BINDINGS = [
        Binding("o", "cycle_sort", "Sort", tooltip="Sort by the next column (or click a column header)"),
        Binding("O", "reverse_sort", "Reverse", show=False, tooltip="Reverse the sort order"),
    ]

    class Selected(Message):
        """The user highlighted an individual's row."""

        def __init__(self, individual: int) -> None:
            super().__init__()
            self.individual = individual

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.state: RunState | None = None
        self.generation = -1
        self.sort_column = "id"
        self.sort_reverse = False
        self._shown: dict[int, tuple] = {}
        self._ranked_at = 0.0

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label + "  ", key=key)
        self._label_columns()

    # ---- updates from the app ------------------------------------------------------------------------
    def sync(self, state: RunState, changes: Changes | None, selected: int | None) -> None:
        """Bring the rows up to date: a new generation rebuilds, otherwise only changed rows are touched."""
        self.state = state
        gen = state.current_generation
        if changes is None or changes.reset or gen != self.generation:
            self._rebuild(state, gen, selected)
            return
        ids = [i for i in changes.individuals if i in state.individuals
               and state.individuals[i].generation == gen]
        if not ids:
            return
        now = time.monotonic()
        if now - self._ranked_at >= RANK_INTERVAL and any(state.individuals[i].state == "done" for i in ids):
            self._ranked_at = now
            state.rank_generation(gen)
            ids = [i for i in state.by_generation.get(gen, ()) if i in state.individuals]
        rows = {}
        for i in ids:
            row = self._cells(state.individuals[i])
            if self._shown.get(i) != row:
                rows[i] = row
        if not rows:
            return
        with self._one_refresh():
            for i, row in rows.items():
                old = self._shown.get(i)
                if old is None:
                    self.add_row(*row, key=str(i))
                else:
                    for (key, _), cell, was in zip(COLUMNS, row, old, strict=True):
                        if cell != was:
                            self.update_cell(str(i), key, cell)
                self._shown[i] = row
            self._resort(selected)

    @contextlib.contextmanager
    def _one_refresh(self) -> Iterator[None]:
        """``update_cell`` repaints the table on every call; hundreds of rank changes repaint once."""
        self._held = True
        try:
            yield
        finally:
            self._held = False
            self.refresh()

    def refresh(self, *args: Any, **kwargs: Any) -> PopulationTable:
        if getattr(self, "_held", False):
            return self
        return super().refresh(*args, **kwargs)

    def _rebuild(self, state: RunState, gen: int, selected: int | None) -> None:
        self.generation = gen
        state.rank_generation(gen)
        self._ranked_at = time.monotonic()
        recs = [state.individuals[i] for i in state.by_generation.get(gen, ()) if i in state.individuals]
        with self.prevent(DataTable.RowHighlighted):
            self.clear()
            self._shown = {r.id: self._cells(r) for r in recs}
            for r in self._sorted(recs):
                self.add_row(*self._shown[r.id], key=str(r.id))
            self.select_row(selected)

    @staticmethod
    def _cells(rec: Individual) -> tuple:
        tasks = ",".join(rec.task_names)
        return (
            rec.id,
            "-" if rec.parent is None else str(rec.parent),
            tasks if len(tasks) <= 22 else tasks[:21] + "…",
            f"{rec.fraction:.1%}",
            Text(fmt.fitness(rec.fitness), style="bold" if rec.rank == 1 else ""),
            "-" if rec.rank is None else str(rec.rank),
            Text(rec.state + (" ★" if rec.won else ""), style=fmt.STATE_STYLE.get(rec.state, "")),
        )

    def _sorted(self, recs: list[Individual]) -> list[Individual]:
        key, _ = SORT_KEYS[self.sort_column]
        return sorted(recs, key=key, reverse=self.sort_reverse)

    def _resort(self, selected: int | None) -> None:
        if self.state is None:
            return
        key, _ = SORT_KEYS[self.sort_column]
        recs = self.state.individuals
        keep = self.selected_id()
        with self.prevent(DataTable.RowHighlighted):
            self.sort("id", key=lambda i: key(recs[i]), reverse=self.sort_reverse)
            self.select_row(keep if keep is not None else selected)

    def select_row(self, individual: int | None) -> None:
        """Put the cursor on an individual's row, quietly (no ``Selected`` message)."""
        if individual is None or str(individual) not in self.rows:
            return
        with self.prevent(DataTable.RowHighlighted):
            self.move_cursor(row=self.get_row_index(str(individual)), animate=False)

    def selected_id(self) -> int | None:
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:  # noqa: BLE001 - no valid cursor row
            return None
        return int(key.value) if key.value is not None else None

    def set_sort(self, column: str, reverse: bool | None = None) -> None:
        if column == self.sort_column and reverse is None:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column = column
            self.sort_reverse = SORT_KEYS[column][1] if reverse is None else reverse
        self._label_columns()
        self._resort(self.selected_id())

    def _label_columns(self) -> None:
        for key, label in COLUMNS:
            arrow = (" ▼" if self.sort_reverse else " ▲") if key == self.sort_column else "  "
            self.columns[key].label = Text(label + arrow)  # same width either way: no relayout
        self.refresh()

    # ---- events & actions ----------------------------------------------------------------------------
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table is self and event.row_key.value is not None:
            self.post_message(self.Selected(int(event.row_key.value)))

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.set_sort(str(event.column_key.value))

    def action_cycle_sort(self) -> None:
        nxt = SORT_ORDER[(SORT_ORDER.index(self.sort_column) + 1) % len(SORT_ORDER)]
        self.set_sort(nxt, SORT_KEYS[nxt][1])

    def action_reverse_sort(self) -> None:
        self.set_sort(self.sort_column)
