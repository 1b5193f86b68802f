"""The elite (best learngene ever seen), the last generation's numbers and the exports so far."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from gtl_tui.state import RunState
from gtl_tui.widgets import fmt

SPARK = "▁▂▃▄▅▆▇█"
SPARK_LEN = 24  # generations shown in the training-share history


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
            timing_line = EliteView.timing_line(state)
            if timing_line is not None:
                out.append("\n")
                out.append_text(timing_line)
        if state.exports:
            ex = state.exports[-1]
            out.append(f"\nexported {len(state.exports)}: ", style="bold magenta")
            out.append(f"#{ex.individual} {fmt.fitness(ex.fitness)} → {ex.path}")
        return out

    @staticmethod
    def timing_line(state: RunState) -> Text | None:
        """Where the last generation's wall time went, and the training share of the last generations."""
        gens = [g for g in sorted(state.stats) if state.stats[g].timing and state.stats[g].timing.get("wall")]
        if not gens:
            return None
        t = state.stats[gens[-1]].timing
        assert t is not None
        wall = t["wall"]
        out = Text("time ", style="bold")
        out.append(f"train {100 * t.get('train', 0.0) / wall:.0f}%  host {100 * t.get('host', 0.0) / wall:.0f}%  "
                   f"wait {100 * t.get('wait', 0.0) / wall:.0f}% of {fmt.duration(wall)}")
        if t.get("peak_mem"):
            out.append(f"  peak {t['peak_mem'] / 2**30:.1f} GiB")
        if t.get("gpu_util") is not None:
            out.append(f"  gpu {t['gpu_util']:.0f}%")
        shares = [min(1.0, max(0.0, state.stats[g].timing["train"] / state.stats[g].timing["wall"]))  # type: ignore[index]
                  for g in gens[-SPARK_LEN:]]
        out.append(f"  train share g{gens[-len(shares)]}-g{gens[-1]} ", style="dim")
        out.append("".join(SPARK[min(len(SPARK) - 1, int(x * len(SPARK)))] for x in shares), style="cyan")
        return out
