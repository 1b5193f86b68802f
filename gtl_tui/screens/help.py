"""The help screen: every key of the monitor, from the live bindings (so remapped keys show as they are)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

#: Every mark the views draw, and what it means (each differs by shape, so it reads without colour too).
SYMBOLS = [
    ("★", "won a tournament: a parent of the next generation", "population, lineage"),
    ("r2", "rank 2 of its generation by fitness (1 = best)", "lineage"),
    ("✝ extinct", "no descendant in the current generation", "lineage"),
    ("▶ #n", "the selected individual", "lineage"),
    ("█  ▲  ▒  ·", "channel inherited from the parent / added by mutation / dropped / not in the learngene",
     "learngene"),
    ("+n -m", "channels added / dropped against the parent (a layer, or a mutation)", "learngene, events"),
    ("L2 swap +2-2", "a mutation: layer, operation, channels in (+) and out (-)", "events, mutations"),
    ("channels in / out", "the channels a mutation put into / took out of the learngene", "mutations"),
    ("━  ┅  ╍", "best / mean / worst fitness per generation (solid, dotted, dashed)", "overview"),
    ("g12", "generation 12: generations are named from 0 everywhere", "everywhere"),
    ("4/6 done", "generations completed of the run's total (as `gtl-tui status` counts them)", "header"),
]

ABOUT = ("The monitor reads the run's event log and never stops the engine by itself: quitting leaves it "
         "running. Reattach with `gtl-tui attach RUN_DIR`. All keys are also in the command palette (ctrl+p).")


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close help")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 96; max-width: 100%; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 0 1; }
    """

    def __init__(self, keys: list[tuple[str, str, str]]) -> None:
        """``keys``: (key, what it does, where) rows."""
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        table = Table(box=None, expand=True, show_header=True, header_style="bold")
        table.add_column("key", style="bold cyan", no_wrap=True)
        table.add_column("action", ratio=3)
        table.add_column("where", style="dim", ratio=1)
        for key, what, where in self.keys:
            table.add_row(key, what, where)
        marks = Table(box=None, expand=True, show_header=True, header_style="bold")
        marks.add_column("mark", style="bold", no_wrap=True)
        marks.add_column("meaning", ratio=3)
        marks.add_column("where", style="dim", ratio=1)
        for mark, meaning, where in SYMBOLS:
            marks.add_row(mark, meaning, where)
        with VerticalScroll():
            yield Static(Text("GTL monitor: keys", style="bold"))
            yield Static(table)
            yield Static(Text("\nMarks", style="bold"))
            yield Static(marks)
            yield Static(Text(ABOUT, style="dim"))
            yield Static(Text("esc / ? / q closes this help", style="italic dim"))

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)
