"""The population of one generation (the current one, or any earlier one picked with ``[`` / ``]``) as a
sortable table; the highlighted row is the selection.

A :class:`VirtualTable`: rows are individual ids, cells are made from the state when a row is drawn, and
sorting sorts the ids, so a generation of 1,000 costs no more to show, sort or update than one of 10.
"""

from __future__ import annotations

import time
from collections.abc import Hashable

from rich.text import Text
from textual.binding import Binding
from textual.message import Message

from gtl_tui.state import Changes, Individual, RunState
from gtl_tui.widgets import fmt
from gtl_tui.widgets.vtable import Cell, Column, VirtualTable

COLUMNS = (("id", "id"), ("gen", "gen"), ("parent", "parent"), ("tasks", "tasks"), ("gene", "gene"),
           ("fitness", "fitness"), ("rank", "rank"), ("state", "state"))
TASKS_WIDTH = 22
MIN_WIDTHS = {"id": 4, "gen": 5, "parent": 8, "tasks": 7, "gene": 6, "fitness": 9, "rank": 6, "state": 10}
#: Sort keys by column (missing values last), and whether the column sorts descending first.
SORT_KEYS = {
    "id": (lambda r: r.id, False),
    "gen": (lambda r: r.generation, False),
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


class PopulationTable(VirtualTable):
    """Rows keyed by individual id; a row is redrawn when its individual changes (never rebuilt per event)."""

    BINDINGS = [
        Binding("o", "cycle_sort", "Sort", tooltip="Sort by the next column (or click a column header)"),
        Binding("O", "reverse_sort", "Reverse", show=False, tooltip="Reverse the sort order"),
    ]

    class Browsed(Message):
        """The table now shows another generation (``[`` / ``]``)."""

        def __init__(self, generation: int) -> None:
            super().__init__()
            self.generation = generation

    class Selected(Message):
        """The user highlighted an individual's row."""

        def __init__(self, individual: int) -> None:
            super().__init__()
            self.individual = individual

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state: RunState | None = None
        self.generation = -1
        """The generation shown."""
        self.view_generation: int | None = None
        """The generation picked with ``[`` / ``]``; None follows the current one."""
        self.sort_column = "id"
        self.sort_reverse = False
        self._ranked_at = 0.0
        self._rank_due: object | None = None  # the timer of a re-ranking put off by RANK_INTERVAL
        self._widths = dict(MIN_WIDTHS)
        """Column widths: at least the label and its sort arrow; id, parent, tasks and rank grow to fit."""
        self._label_columns()

    # ---- updates from the app ------------------------------------------------------------------------
    def sync(self, state: RunState, changes: Changes | None, selected: int | None) -> None:
        """Bring the rows up to date: a new generation rebuilds, otherwise only changed rows are redrawn."""
        self.state = state
        gen = self.shown_generation(state)
        if changes is None or changes.reset or gen != self.generation:
            self._rebuild(state, gen, selected)
            return
        ids = [i for i in changes.individuals if i in state.individuals
               and state.individuals[i].generation == gen]
        if not ids:
            return
        now = time.monotonic()
        if any(state.individuals[i].state == "done" for i in ids):
            if now - self._ranked_at >= RANK_INTERVAL:
                self._ranked_at = now
                state.rank_generation(gen)
                ids = self._members(state, gen)  # ranks moved everywhere
            elif self._rank_due is None:
                # Put off, not dropped: the newest result would otherwise show rank "-" until the next one lands.
                self._rank_due = self.set_timer(self._ranked_at + RANK_INTERVAL - now, self._rank_later)
        new = [i for i in ids if self.get_row_index(i) is None]
        self._fit_columns(state, ids)
        self.update_rows(ids)
        self._resort(selected, extra=new)

    def _rank_later(self) -> None:
        self._rank_due = None
        state = self.state
        if state is None or self.shown_generation(state) != self.generation:
            return  # another generation was rebuilt (and ranked) meanwhile
        self._ranked_at = time.monotonic()
        state.rank_generation(self.generation)
        ids = self._members(state, self.generation)
        self.update_rows(ids)
        self._resort(self.selected_id())

    def shown_generation(self, state: RunState) -> int:
        """The picked generation while the run still holds it (a resume may drop it), else the current one."""
        if self.view_generation is not None and self.view_generation in state.by_generation \
                and self.view_generation != state.current_generation:
            return self.view_generation
        self.view_generation = None
        return state.current_generation

    def browse(self, step: int) -> int | None:
        """Show the generation ``step`` away from the shown one (clamped to those held); reaching the current
        one follows it again. Returns the generation now shown, None when there is none."""
        state = self.state
        if state is None or not state.by_generation:
            return None
        gens = sorted(state.by_generation)
        here = self.generation if self.generation in state.by_generation else gens[-1]
        k = min(max(gens.index(here) + step, 0), len(gens) - 1)
        self.view_generation = gens[k] if gens[k] != state.current_generation else None
        gen = self.shown_generation(state)
        if gen != self.generation:
            self._rebuild(state, gen, None)
        self.post_message(self.Browsed(gen))
        return gen

    def _members(self, state: RunState, gen: int) -> list[int]:
        return [i for i in state.by_generation.get(gen, ()) if i in state.individuals]

    def _rebuild(self, state: RunState, gen: int, selected: int | None) -> None:
        self.generation = gen
        state.rank_generation(gen)
        self._ranked_at = time.monotonic()
        ids = self._members(state, gen)
        self._widths = dict(MIN_WIDTHS)
        self._label_columns()
        self._fit_columns(state, ids)
        self.set_rows(self._sorted(ids), self._row, cursor=selected)

    def _fit_columns(self, state: RunState, ids: list[int]) -> None:
        """Widen the id, parent, tasks and rank columns to what ``ids`` need (they never shrink)."""
        if not ids:
            return
        recs = state.individuals
        w = self._widths
        need = {"id": len(str(max(ids))), "gen": len(str(self.generation)),
                "rank": len(str(len(state.by_generation.get(self.generation, ())))),
                "tasks": min(TASKS_WIDTH, max(len(",".join(recs[i].task_names)) for i in ids))}
        need["parent"] = need["id"]
        if any(need[k] > w[k] for k in need):
            for k in need:
                w[k] = max(w[k], need[k])
            self._label_columns()

    def _row(self, key: Hashable) -> tuple[Cell, ...]:
        assert self.state is not None and isinstance(key, int)
        return self._cells(self.state.individuals[key])

    @staticmethod
    def _cells(rec: Individual) -> tuple[Cell, ...]:
        tasks = ",".join(rec.task_names)
        return (
            str(rec.id),
            str(rec.generation),
            "-" if rec.parent is None else str(rec.parent),
            tasks if len(tasks) <= TASKS_WIDTH else tasks[:TASKS_WIDTH - 1] + "…",
            f"{rec.fraction:.1%}",
            Text(fmt.fitness(rec.fitness), style="bold" if rec.rank == 1 else ""),
            "-" if rec.rank is None else str(rec.rank),
            Text(rec.state + (" ★" if rec.won else ""), style=fmt.STATE_STYLE.get(rec.state, "")),
        )

    def _sorted(self, ids: list[int]) -> list[int]:
        """``ids`` in the sort order (stable: ties keep their order)."""
        assert self.state is not None
        key, _ = SORT_KEYS[self.sort_column]
        recs = self.state.individuals
        return sorted(ids, key=lambda i: key(recs[i]), reverse=self.sort_reverse)

    def _resort(self, selected: int | None, extra: list[int] | None = None) -> None:
        if self.state is None:
            return
        recs = self.state.individuals
        keep = self.selected_id()
        ids = [i for i in self.keys if i in recs] + (extra or [])
        self.set_rows(self._sorted(ids), cursor=keep if keep is not None else selected)

    def select_row(self, individual: int | None) -> None:
        """Put the cursor on an individual's row, quietly (no ``Selected`` message); none when it has no row."""
        index = self.get_row_index(individual) if individual is not None else None
        if index is not None:
            self.move_cursor(row=index, quiet=True)
        else:
            self.hide_cursor()

    def selected_id(self) -> int | None:
        key = self.cursor_key
        return key if isinstance(key, int) else None

    def set_sort(self, column: str, reverse: bool | None = None) -> None:
        if column == self.sort_column and reverse is None:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column = column
            self.sort_reverse = SORT_KEYS[column][1] if reverse is None else reverse
        self._label_columns()
        self._resort(self.selected_id())

    def _tasks_width(self) -> int:
        """The tasks column gives way first on a narrow terminal (at 80 columns the generation column needs its
        room), down to its minimum; the other columns always show whole."""
        want = self._widths["tasks"]
        room = self.scrollable_content_region.width if self.is_mounted else 0
        if room <= 0:
            return want
        others = sum(self._widths[k] + 2 for k, _ in COLUMNS if k != "tasks") + 2
        return max(MIN_WIDTHS["tasks"], min(want, room - others))

    def on_resize(self) -> None:
        super().on_resize()
        tasks = next((c.width for c in self.columns if c.key == "tasks"), None)
        if tasks is not None and tasks != self._tasks_width():
            self._label_columns()

    def _label_columns(self) -> None:
        widths = self._widths
        cols = []
        for key, label in COLUMNS:
            arrow = (" ▼" if self.sort_reverse else " ▲") if key == self.sort_column else "  "
            width = widths[key] if key != "tasks" else self._tasks_width()
            cols.append(Column(key, Text(label + arrow), width))
        self.set_columns(cols)

    # ---- events & actions ----------------------------------------------------------------------------
    def on_virtual_table_row_highlighted(self, event: VirtualTable.RowHighlighted) -> None:
        if event.table is self and isinstance(event.key, int):
            event.stop()
            self.post_message(self.Selected(event.key))

    def on_virtual_table_header_selected(self, event: VirtualTable.HeaderSelected) -> None:
        event.stop()
        self.set_sort(event.column)

    def action_cycle_sort(self) -> None:
        nxt = SORT_ORDER[(SORT_ORDER.index(self.sort_column) + 1) % len(SORT_ORDER)]
        self.set_sort(nxt, SORT_KEYS[nxt][1])

    def action_reverse_sort(self) -> None:
        self.set_sort(self.sort_column)
