"""Few-shot evaluations of the run's learngenes (``gtl-tui evaluate``): method x (shots, steps), mean ± ci95.

Hidden while the run has none. The learngene's own row is highlighted so it reads against the baselines.
"""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from gtl_tui.evaluations import Evaluation

HIGHLIGHT = "bold cyan"
MAX_SHOWN = 4  # newest first; older files are only counted


def evaluation_title(ev: Evaluation) -> Text:
    s = ev.settings
    out = Text()
    out.append(f"evaluation {ev.name}", style="bold")
    if ev.error is None:
        ways, episodes = s.get("ways"), s.get("episodes")
        bits = [f"{ways}-way" if ways else "", f"{episodes} episodes" if episodes else "", "% ± 95% CI"]
        finetune = s.get("finetune")
        protocol = finetune.get("name") if isinstance(finetune, dict) else None
        if protocol and protocol != "default":
            bits.append(f"{protocol} fine-tuning")
        init = s.get("nongene_init")
        if init and init != "random":
            bits.append(f"non-gene {init}")
        out.append("  " + ", ".join(b for b in bits if b), style="dim")
    else:
        out.append(f"  {ev.error}", style="red")
    return out


def evaluation_table(ev: Evaluation) -> Table:
    cols = ev.columns
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, show_edge=False)
    table.add_column("method", no_wrap=True)
    for shots, steps in cols:
        table.add_column(f"{shots}-shot {steps} st", justify="right", no_wrap=True)
    for method, row in ev.cells.items():
        table.add_row(method, *(f"{100 * row[c][0]:.1f} ± {100 * row[c][1]:.1f}" if c in row else "-"
                                for c in cols),
                      style=HIGHLIGHT if method == "learngene" else None)
    return table


def render_evaluations(evaluations: list[Evaluation]) -> RenderableType:
    parts: list[RenderableType] = []
    for ev in evaluations[:MAX_SHOWN]:
        parts.append(evaluation_title(ev))
        if ev.error is None:
            parts.append(evaluation_table(ev))
    if len(evaluations) > MAX_SHOWN:
        parts.append(Text(f"+{len(evaluations) - MAX_SHOWN} older in evaluations/", style="dim"))
    return Group(*parts)


class EvaluationView(Static):
    """Set with ``show(evaluations)`` when the run's ``evaluations/`` folder changes (not per event)."""

    DEFAULT_CSS = """
    EvaluationView { height: auto; padding: 0 1; margin-top: 1; border-top: solid $primary-darken-2; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.evaluations: list[Evaluation] = []
        self.display = False

    def show(self, evaluations: list[Evaluation]) -> None:
        self.evaluations = evaluations
        self.display = bool(evaluations)
        self.update(render_evaluations(evaluations))
