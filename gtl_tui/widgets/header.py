"""The run header: what runs where, its state, progress, time and throughput."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from gtl_tui.state import RunState
from gtl_tui.widgets import fmt


def _bar(done: int, total: int, width: int = 10) -> str:
    if total <= 0:
        return " " * width
    filled = round(width * min(done, total) / total)
    return "█" * filled + "░" * (width - filled)


class RunHeader(Widget):
    """Two lines redrawn from a :class:`RunState` (``show``); ``mode`` is an extra badge, e.g. the replay."""

    DEFAULT_CSS = """
    RunHeader { height: 2; background: $panel; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state: RunState | None = None
        self.mode = ""
        self.text = Text("")
        """What the header shows now (tests read it)."""

    def show(self, state: RunState, mode: str = "") -> None:
        self.state, self.mode = state, mode
        self.text = self.render_state(state, mode, self.content_size.width or 120)
        self.refresh()

    def render(self) -> Text:
        if self.state is not None:
            self.text = self.render_state(self.state, self.mode, self.content_size.width or 120)
        return self.text

    @staticmethod
    def render_state(state: RunState, mode: str = "", width: int = 120) -> Text:
        run = state.run
        top = Text()
        top.append("GTL ", style="bold")
        if run is None:
            top.append("waiting for the run to start…", style="dim")
        else:
            top.append(run.name, style="bold cyan")
            top.append(f"  {run.arch} · {run.device} · {run.trainer} · {run.backend}", style="")
            top.append(f"  cfg {run.config_hash[:8]}", style="dim")
            if run.resumed_from is not None:
                top.append(f"  resumed at gen {run.resumed_from}", style="yellow")
        if state.warnings:
            top.append(f"  ⚠ {state.warnings}", style="bold yellow")
        status = state.status
        line = Text()
        line.append(f" {status.upper()} ", style=f"reverse {fmt.STATUS_STYLE.get(status, 'bold')}")
        if mode:
            line.append(" ")
            line.append(f" {mode} ", style="reverse bold cyan")
        # Generations are named from 0 everywhere (g0, g1, ... as in the chart, the events and the lineage); the
        # count beside is of completed ones, as `gtl-tui status` gives it.
        g_total = state.generations
        g = state.current_generation
        line.append(f"  {'g' + str(g) if g >= 0 else 'g-'} {state.generations_done}/{g_total} done")
        if width >= 100:
            line.append(" ")
            line.append(_bar(state.generations_done, g_total), style="cyan")
        line.append(f"  ind {state.evaluated_now}/{state.population}")
        line.append(f"  {'elapsed ' if width >= 90 else ''}{fmt.duration(state.elapsed)}")
        line.append(f"  ETA {fmt.duration(state.eta)}")
        ips = state.images_per_s
        line.append(f"  {ips:,.0f} img/s" if ips is not None else "  - img/s")
        timing = state.last_timing
        if timing and width >= 100 and timing.get("wall"):  # the last generation's split (engine.timing)
            line.append(f"  train {100 * timing.get('train', 0.0) / timing['wall']:.0f}%")
            if timing.get("peak_mem"):
                line.append(f"  mem {timing['peak_mem'] / 2**30:.1f}G")
            if timing.get("gpu_util") is not None:
                line.append(f"  gpu {timing['gpu_util']:.0f}%")
        # Each line is cut to the width, never wrapped: a wrapped first line would push the state line out of the
        # header's two rows (a resumed run at 80 columns showed "resumed at gen 4" and nothing else).
        for part in (top, line):
            part.truncate(width, overflow="ellipsis")
        return Text("\n", no_wrap=True).join([top, line])
