"""Every mutation of the run, newest first, filterable by layer, operation and the selected lineage.

A :class:`VirtualTable` of indices into ``RunState.mutations``: filtering builds a list of ints, and only the
rows on screen are ever formatted, so all of a 40,000-mutation history is there to scroll through.
"""

from __future__ import annotations

import itertools

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Checkbox, Label, Select

from gtl_tui.state import Mutation, RunState
from gtl_tui.widgets import fmt
from gtl_tui.widgets.vtable import Cell, Column, VirtualTable

OPS = ("swap", "add", "drop")
CHANNELS_WIDTH = 20  # channel lists are cut to this (the table fits 80 columns)


class MarkedCheckbox(Checkbox):
    """A checkbox whose mark is there only when checked (Textual's shows an X either way, told apart by colour)."""

    @property
    def BUTTON_INNER(self) -> str:  # type: ignore[override]  # noqa: N802 (Textual's name)
        return "X" if self.value else " "


class MutationHistory(Vertical):
    DEFAULT_CSS = """
    MutationHistory { height: 1fr; }
    MutationHistory #mutation-filters { height: 3; }
    MutationHistory Select { width: 18; }
    MutationHistory Checkbox { width: auto; }
    MutationHistory #mutation-count { padding: 1 0 0 1; color: $text-muted; width: 1fr; }
    MutationHistory VirtualTable { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state: RunState | None = None
        self.individual: int | None = None
        self.n_layers = 0
        self._filled: tuple | None = None  # what the rows were last filtered from

    def compose(self) -> ComposeResult:
        with Horizontal(id="mutation-filters"):
            yield Select([], prompt="any layer", id="filter-layer")
            yield Select([(op, op) for op in OPS], prompt="any op", id="filter-op")
            yield MarkedCheckbox("lineage", id="filter-lineage", tooltip="Only the selected individual's lineage")
            yield Label("", id="mutation-count")
        yield VirtualTable(self._columns(1, 1), id="mutation-table")

    @staticmethod
    def _columns(gen_digits: int, id_digits: int) -> list[Column]:
        return [Column("gen", "gen", max(3, gen_digits)),
                Column("ind", "individual", max(10, id_digits + 1)), Column("layer", "layer", 5),
                Column("op", "op", 4), Column("in", "channels in", CHANNELS_WIDTH),
                Column("out", "channels out", CHANNELS_WIDTH)]

    def show(self, state: RunState, individual: int | None) -> None:
        self.state, self.individual = state, individual
        newest = itertools.islice(reversed(state.individuals.values()), 100)  # one architecture per run
        n_layers = max((len(r.layer_widths) for r in newest), default=0) if self.n_layers == 0 else self.n_layers
        if n_layers != self.n_layers:
            self.n_layers = n_layers
            self.query_one("#filter-layer", Select).set_options([(f"L{k}", k) for k in range(n_layers)])
        self._fill()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._fill()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        self._fill()

    def _fill(self) -> None:
        if self.state is None:
            return
        layer = self.query_one("#filter-layer", Select).value
        op = self.query_one("#filter-op", Select).value
        lineage = set(self.state.lineage(self.individual)) \
            if self.query_one("#filter-lineage", Checkbox).value and self.individual is not None else None
        muts = self.state.mutations  # this list: a resume replaces it, and a new one comes with a new _fill
        filled = (id(muts), len(muts), layer, op, frozenset(lineage) if lineage is not None else None)
        if filled == self._filled:
            return  # the same rows (another individual selected, no lineage filter): keep what is drawn
        self._filled = filled
        rows = [k for k in range(len(muts) - 1, -1, -1)
                if (layer is Select.NULL or muts[k].layer == layer) and (op is Select.NULL or muts[k].op == op)
                and (lineage is None or muts[k].individual in lineage)]
        table = self.query_one(VirtualTable)
        gens = max((m.generation for m in muts[-1:]), default=0)
        ids = max((m.individual for m in muts[-1:]), default=0)
        columns = self._columns(len(str(gens)), len(str(ids)))
        if columns != table.columns:  # a new width re-lays the screen out: only when it changes
            table.set_columns(columns)
        table.set_rows(rows, lambda k: self._row(muts[k]))  # type: ignore[index]
        count = f"{len(rows)}/{len(muts)}"
        label = self.query_one("#mutation-count", Label)
        if str(label.content) != count:
            label.update(count)

    @staticmethod
    def _row(m: Mutation) -> tuple[Cell, ...]:
        return (str(m.generation), f"#{m.individual}", f"L{m.layer}", Text(m.op, style=fmt.OP_STYLE.get(m.op, "")),
                Text(fmt.channels(m.added, CHANNELS_WIDTH), style="green"),
                Text(fmt.channels(m.removed, CHANNELS_WIDTH), style="red"))
