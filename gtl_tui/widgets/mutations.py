"""Every mutation of the run, newest first, filterable by layer, operation and the selected lineage."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Checkbox, DataTable, Label, Select

from gtl_tui.state import RunState
from gtl_tui.widgets import fmt

MAX_ROWS = 200  # newest matching mutations shown (rebuilt on each change, so kept small; filters narrow it)
OPS = ("swap", "add", "drop")


class MutationHistory(Vertical):
    DEFAULT_CSS = """
    MutationHistory { height: 1fr; }
    MutationHistory #mutation-filters { height: 3; }
    MutationHistory Select { width: 18; }
    MutationHistory Checkbox { width: auto; }
    MutationHistory #mutation-count { padding: 1 0 0 1; color: $text-muted; width: 1fr; }
    MutationHistory DataTable { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state: RunState | None = None
        self.individual: int | None = None
        self.n_layers = 0

    def compose(self) -> ComposeResult:
        with Horizontal(id="mutation-filters"):
            yield Select([], prompt="any layer", id="filter-layer")
            yield Select([(op, op) for op in OPS], prompt="any op", id="filter-op")
            yield Checkbox("lineage", id="filter-lineage", tooltip="Only the selected individual's lineage")
            yield Label("", id="mutation-count")
        yield DataTable(id="mutation-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in (("gen", "gen"), ("ind", "individual"), ("layer", "layer"), ("op", "op"),
                           ("in", "channels in"), ("out", "channels out")):
            table.add_column(label, key=key)

    def show(self, state: RunState, individual: int | None) -> None:
        self.state, self.individual = state, individual
        n_layers = max((len(r.layer_widths) for r in state.individuals.values()), default=0) \
            if self.n_layers == 0 else self.n_layers
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
        rows = []
        total = 0
        for m in reversed(self.state.mutations):
            if (layer is not Select.NULL and m.layer != layer) or (op is not Select.NULL and m.op != op) \
                    or (lineage is not None and m.individual not in lineage):
                continue
            total += 1
            if len(rows) < MAX_ROWS:
                rows.append((m.generation, f"#{m.individual}", f"L{m.layer}",
                             Text(m.op, style=fmt.OP_STYLE.get(m.op, "")),
                             Text(fmt.channels(m.added), style="green"),
                             Text(fmt.channels(m.removed), style="red")))
        table = self.query_one(DataTable)
        table.clear()
        table.add_rows(rows)
        shown = f" (newest {MAX_ROWS} shown)" if total > MAX_ROWS else ""
        self.query_one("#mutation-count", Label).update(
            f"{total}/{len(self.state.mutations)}{shown}")
