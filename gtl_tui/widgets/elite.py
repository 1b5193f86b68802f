"""The elite (best learngene ever seen), the last generation's numbers and the exports so far."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from gtl_tui.state import RunState
from gtl_tui.widgets import fmt


class EliteView(Static):
    DEFAULT_CSS = """
    EliteView { height: auto; max-height: 8; padding: 0 1; border-top: solid $primary-darken-2; }
    """

    def show(self, state: RunState) -> None:
        self.update(self.render_state(state))

    @staticmethod
    def render_state(state: RunState) -> Text:
        out = Text()
        if not state.stats:
            out.append("elite: none yet (after the first generation)", style="dim")
        else:
            last = state.stats[max(state.stats)]
            out.append("elite ", style="bold")
            out.append(f"#{last.elite_id}", style="bold cyan")
            out.append(f" {fmt.fitness(last.elite_fitness)}", style="bold green")
            rec = state.individuals.get(last.elite_id)
            if rec is not None:
                out.append(f"  gen {rec.generation}, gene {rec.fraction:.1%} "
                           f"({'·'.join(str(s) for s in rec.gene_sizes)} ch)")
                out.append(f"\n  tasks: {', '.join(rec.task_names)}", style="dim")
            out.append(f"\ngen {last.generation}: best {fmt.fitness(last.best)} (#{last.best_id})  "
                       f"mean {fmt.fitness(last.mean)}±{last.std:.3f}  worst {fmt.fitness(last.worst)} "
                       f"div {last.diversity:.2f} {fmt.duration(last.seconds)}")
        if state.exports:
            ex = state.exports[-1]
            out.append(f"\nexported {len(state.exports)}: ", style="bold magenta")
            out.append(f"#{ex.individual} {fmt.fitness(ex.fitness)} → {ex.path}")
        return out
