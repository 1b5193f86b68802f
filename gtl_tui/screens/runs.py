"""The Runs screen: every run and sweep of a folder; Enter opens a run's monitor, ``c`` compares runs.

``gtl-tui attach RUNS_DIR`` (and ``gtl-tui`` alone, on ``./runs``) opens it. The table (``RunsTable``) shows
state, progress, best fitness, the evaluation headline and the overrides that tell each run apart; live runs are
read again every second and the folder every few seconds (new runs of a sweep appear). The compare screen overlays
the fitness curves (a setting's seeds as a mean line with a 95% CI band), diffs the configs and puts the
evaluations side by side.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from gtl_tui.experiments.runs_index import RunRow, refresh_row, scan
from gtl_tui.widgets.overlay_chart import Curve, OverlayChart
from gtl_tui.widgets.runs_table import RunsTable

LIVE_POLL_S = 1.0
RESCAN_S = 5.0


class RunsScreen(Screen[None]):
    """The table of runs, a filter line and the keys."""

    BINDINGS = [
        Binding("slash", "filter", "Filter", tooltip="Show only the runs whose name, state or setting match",
                id="filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="clear-filter"),
        Binding("q", "app.quit", "Quit", tooltip="Quit; the runs keep running", id="quit"),
    ]
    DEFAULT_CSS = """
    RunsScreen #runs-title { height: 1; background: $primary-background; text-style: bold; padding: 0 1; }
    RunsScreen RunsTable { height: 1fr; }
    RunsScreen #filter { dock: bottom; display: none; }
    RunsScreen #filter.shown { display: block; }
    """

    def __init__(self, folder: Path, rows: list[RunRow], cursor: str | None = None) -> None:
        super().__init__()
        self.folder = folder
        self.initial_rows = rows
        self.initial_cursor = cursor

    def compose(self) -> ComposeResult:
        yield Static(id="runs-title")
        yield RunsTable(id="runs")
        yield Input(placeholder="filter: words that name, state or setting contain (Enter keeps, Escape clears)",
                    id="filter")
        yield Footer()

    def on_mount(self) -> None:
        self.table = self.query_one(RunsTable)
        self.table.set_runs(self.initial_rows)
        if self.initial_cursor in self.table.order:
            self.table.move_cursor(row=self.table.order.index(self.initial_cursor), quiet=True)
        self.update_title()
        self.table.focus()
        self.set_interval(LIVE_POLL_S, self.refresh_live)
        self.set_interval(RESCAN_S, self.rescan)

    def update_title(self) -> None:
        rows = list(self.table.rows_by_name.values())
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.state] = counts.get(r.state, 0) + 1
        sweeps = len({r.sweep for r in rows if r.sweep})
        shown = len(self.table.order)
        what = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        text = Text(f"{self.folder}: {len(rows)} runs" + (f" in {sweeps} sweep(s)" if sweeps else "")
                    + (f" ({what})" if what else ""))
        if shown != len(rows):
            text.append(f"  filter {self.table.filter_text!r}: {shown} shown", style="yellow")
        text.append(f"  sort: {self.table.sort_by}{' (reversed)' if self.table.reverse_order else ''}",
                    style="dim")
        self.query_one("#runs-title", Static).update(text)

    # -- live
    def refresh_live(self) -> None:
        for row in [r for r in self.table.rows_by_name.values() if r.live]:
            try:
                self.table.update_row(refresh_row(row, self.folder))
            except (OSError, ValueError):
                continue
        self.update_title()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def rescan(self) -> None:
        rows = scan(self.folder)
        self.app.call_from_thread(self._rescanned, rows)

    def _rescanned(self, rows: list[RunRow]) -> None:
        old = self.table.rows_by_name
        if [r.name for r in rows] != list(old) or any(old[r.name].state != r.state for r in rows):
            self.table.set_runs(rows)
            self.update_title()

    # -- filter
    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("shown")
        box.value = self.table.filter_text
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("shown")
        if self.table.filter_text:
            self.table.filter_text = ""
            self.table.redraw()
            self.update_title()
        self.table.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.table.filter_text = event.value
        self.table.redraw()
        self.update_title()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one("#filter", Input).remove_class("shown")
        self.table.focus()

    # -- messages from the table
    def on_runs_table_opened(self, message: RunsTable.Opened) -> None:
        self.app.exit(message.row)

    def on_runs_table_compare_requested(self, message: RunsTable.CompareRequested) -> None:
        self.app.push_screen(CompareScreen(message.rows))


def curves_of(rows: list[RunRow]) -> tuple[list[Curve], list[Any], dict[str, Any]]:
    """The overlay's curves (one per setting), the settings, and the comparison (``compare --json``)."""
    from gtl_tui.experiments.compare import compare, group, label, load_records, mean_ci

    records = load_records([r.path for r in rows])
    settings = group(records)
    curves = []
    for s in settings:
        gens = sorted({g for r in s.runs for g in r.history})
        stats = [mean_ci([r.history[g].best for r in s.runs if g in r.history]) for g in gens]
        means = [c["mean"] for c in stats]
        curves.append(Curve(f"{label(s.overrides)} (n={len(s.runs)})", gens, means,
                            [m - (c["ci95"] or 0.0) for m, c in zip(means, stats, strict=True)],
                            [m + (c["ci95"] or 0.0) for m, c in zip(means, stats, strict=True)]))
    return curves, settings, compare(records)


class CompareScreen(Screen[None]):
    """Fitness curves overlaid, the configs' differences, the evaluations side by side; Escape goes back."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back", tooltip="Back to the runs", id="back")]
    DEFAULT_CSS = """
    CompareScreen #compare-title { height: 1; background: $primary-background; text-style: bold; padding: 0 1; }
    CompareScreen OverlayChart { height: 14; }
    CompareScreen VerticalScroll { height: 1fr; }
    """

    def __init__(self, rows: list[RunRow]) -> None:
        super().__init__()
        self.rows = rows
        self.curves, self.settings, self.comparison = curves_of(rows)

    def compose(self) -> ComposeResult:
        yield Static(Text(f"comparing {len(self.rows)} runs in {len(self.settings)} setting(s): mean over seeds, "
                          "band 95% CI"), id="compare-title")
        yield OverlayChart(self.curves, id="overlay")
        with VerticalScroll():
            yield Static(self.config_diff(), id="config-diff")
            yield Static(self.evaluations(), id="evaluations")
        yield Footer()

    def config_diff(self) -> Table:
        from gtl_tui.experiments.compare import setting_keys

        records = [r for s in self.settings for r in s.runs]
        keys = setting_keys(records) + ["run.seed"]
        t = Table(title="config differences", title_justify="left", header_style="bold", expand=False)
        t.add_column("key", style="bold")
        for r in records:
            t.add_column(r.name, overflow="fold")
        for k in keys:
            t.add_row(k, *(json.dumps(r.config.get(k)) for r in records))
        return t

    def evaluations(self) -> Table | Text:
        from gtl_tui.experiments.compare import cell_key, label

        cols = list(dict.fromkeys(cell_key(c) for s in self.comparison["settings"] for c in s["evaluation"]))
        if not cols:
            return Text("no evaluation yet (gtl-tui evaluate RUN, or [evaluate] in the sweep file)", style="dim")
        t = Table(title="evaluations: accuracy %, mean ± 95% CI over seeds", title_justify="left",
                  header_style="bold")
        t.add_column("method, shots, steps", style="bold")
        for s in self.comparison["settings"]:
            t.add_column(label(s["overrides"]), justify="right")
        for col in cols:
            cells = []
            for s in self.comparison["settings"]:
                c = next((x for x in s["evaluation"] if cell_key(x) == col), None)
                cells.append("-" if c is None else f"{100 * c['mean']:.1f}"
                             + (f" ± {100 * c['ci95']:.1f}" if c["ci95"] is not None else ""))
            t.add_row(f"{col[0]}, {col[2]}-shot, {col[3]} steps" + ("" if col[1] == "default" else f", {col[1]}"),
                      *cells)
        return t


class RunsApp(App[RunRow | None]):
    """The Runs screen as an app: returns the run chosen with Enter (its monitor opens next), or None."""

    TITLE = "gtl-tui runs"

    def __init__(self, folder: str | Path, *, rows: list[RunRow] | None = None, cursor: str | None = None) -> None:
        super().__init__()
        self.animation_level = "none"
        self.folder = Path(folder)
        self.rows = rows if rows is not None else scan(self.folder)
        self.cursor = cursor

    def on_mount(self) -> None:
        self.push_screen(RunsScreen(self.folder, self.rows, self.cursor))


def monitor_from_runs(run_dir: Path) -> App[None]:
    """A run's monitor opened from the Runs screen: Escape (or q) closes it, back to the runs."""
    from gtl_tui.app import MonitorApp

    class MonitorFromRuns(MonitorApp):
        BINDINGS = [Binding("escape", "quit", "Runs", tooltip="Back to the runs; the engine keeps running",
                            id="back-to-runs")]

    return MonitorFromRuns(run_dir)


def open_runs(folder: Path) -> None:
    """The Runs screen; Enter opens a run's monitor, whose Escape (or q) comes back to the runs."""
    cursor = None
    while True:
        chosen = RunsApp(folder, cursor=cursor).run()
        if chosen is None:
            return
        cursor = chosen.name
        monitor_from_runs(chosen.path).run()
