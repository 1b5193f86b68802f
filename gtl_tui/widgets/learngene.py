"""The selected individual's learngene: per layer a strip of its channels and the difference from its parent."""

from __future__ import annotations

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widget import Widget

from gtl_tui.state import RunState
from gtl_tui.widgets.focus import NoFocusRestyle

#: (char, style) per channel class; a cell covering several channels shows the first class present. Each class
#: has its own shape, not only its own colour: without colour (NO_COLOR, TERM=screen) the strip still reads.
CELL = {"added": ("▲", "bold bright_cyan"), "dropped": ("▒", "red"), "inherited": ("█", "green"),
        "gene": ("█", "green"), "none": ("·", "bright_black")}
PRIORITY = ("added", "dropped", "inherited", "gene", "none")


def gene_strip(width: int, inherited: set[int], added: set[int], dropped: set[int], cells: int) -> Text:
    """One layer's ``width`` channels in at most ``cells`` characters, each covering the same whole number."""
    per = channels_per_cell(width, cells)
    text = Text()
    for lo in range(0, width, per):
        present = set()
        for ch in range(lo, min(lo + per, width)):
            if ch in added:
                present.add("added")
            elif ch in dropped:
                present.add("dropped")
            elif ch in inherited:
                present.add("inherited")
            else:
                present.add("none")
        kind = next(k for k in PRIORITY if k in present)
        char, style = CELL[kind]
        text.append(char, style=style)
    return text


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """One character per value, its height scaled between the smallest and the largest."""
    lo, hi = min(values), max(values)
    span = hi - lo
    return "".join(SPARK[min(len(SPARK) - 1, int((v - lo) / span * len(SPARK)))] if span > 0 else SPARK[0]
                   for v in values)


def channels_per_cell(width: int, cells: int) -> int:
    return max(1, -(-width // max(cells, 1)))


def render_learngene(state: RunState, individual: int | None, width: int) -> Text:
    if individual is None or individual not in state.individuals:
        return Text("no individual selected yet", style="dim")
    rec = state.individuals[individual]
    parent = state.individuals.get(rec.parent) if rec.parent is not None else None
    out = Text()
    out.append(f"learngene of #{rec.id}", style="bold cyan")
    out.append(f"  gen {rec.generation}  parent {'#' + str(rec.parent) if rec.parent is not None else '-'}")
    out.append(f"  fitness {'-' if rec.fitness is None else f'{rec.fitness:.3f}'}")
    if rec.loss_curve:
        out.append("\ntraining loss ")
        out.append(f"{rec.loss_curve[0]:.3f} → {rec.loss_curve[-1]:.3f} ", style="bold")
        out.append(sparkline(rec.loss_curve), style="cyan")
    out.append(f"\n{sum(rec.gene_sizes)} of {sum(rec.layer_widths)} channels, ")
    out.append(f"{rec.fraction:.1%}", style="bold")
    out.append(" of the conv parameters")
    if parent is not None:
        delta = rec.fraction - parent.fraction
        out.append(f"  ({delta:+.1%} vs parent)", style="green" if delta >= 0 else "red")
    elif rec.parent is None:
        out.append("  (generation 0: random channels)", style="dim")
    diffs = state.gene_diff(individual)
    cells = max(8, width - 26)
    for layer, (w, (inh, add, drop)) in enumerate(zip(rec.layer_widths, diffs, strict=False)):
        size = rec.gene_sizes[layer] if layer < len(rec.gene_sizes) else len(inh) + len(add)
        out.append(f"\nL{layer:<2} {size:>4}/{w:<4} ", style="bold")
        out.append_text(gene_strip(w, inh, add, drop, cells))
        if parent is not None:
            out.append(f" +{len(add)}", style="bright_cyan" if add else "dim")
            out.append(f" -{len(drop)}", style="red" if drop else "dim")
    out.append("\n\n")
    if parent is not None:
        for kind, label in (("inherited", "inherited"), ("added", "added"), ("dropped", "dropped"),
                            ("none", "not in")):
            char, style = CELL[kind]
            out.append(char, style=style)
            out.append(f" {label} ")
    else:
        out.append(CELL["gene"][0], style=CELL["gene"][1])
        out.append(" in gene  ")
        out.append(CELL["none"][0], style=CELL["none"][1])
        out.append(" not in")
    per = channels_per_cell(max(rec.layer_widths or [1]), cells)
    if per > 1:
        out.append(f" (1 cell: {per} ch)", style="dim")
    return out


class LearngeneView(Widget, can_focus=False):
    DEFAULT_CSS = """
    LearngeneView { height: auto; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state: RunState | None = None
        self.individual: int | None = None
        self._text: tuple[int, Text] | None = None  # (width, text): a layout measures it, then draws it

    def show(self, state: RunState, individual: int | None) -> None:
        self.state, self.individual = state, individual
        self._text = None
        self.refresh(layout=True)

    def render(self) -> Text:
        if self.state is None:
            return Text("")
        width = self.size.width or 80
        if self._text is None or self._text[0] != width:
            self._text = (width, render_learngene(self.state, self.individual, width))
        return self._text[1]


class LearngeneScroll(NoFocusRestyle, VerticalScroll):
    """The learngene tab's scrolling pane (the learngene and its evaluations); it takes the tab's keys."""
