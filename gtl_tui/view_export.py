"""`x` in the monitor: the data behind the view on screen as CSV, beside an SVG of the screen.

For a figure or a table a paper needs now, without waiting for ``gtl-tui report``: each tab's rows come from the
same :class:`RunState` the view draws, so the file holds what the user sees (the generation browsed, the individual
selected, the events filtered). Pure functions of the state; the app writes the files (atomically) and says where.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from gtl_tui.state import RunState


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def overview_csv(state: RunState) -> str:
    """One row per completed generation: best, mean, worst, std, diversity, elite, time, throughput."""
    return _csv(["generation", "best", "mean", "worst", "std", "diversity", "best_id", "elite_id", "elite_fitness",
                 "seconds", "images_per_s"],
                ([s.generation, s.best, s.mean, s.worst, s.std, s.diversity, s.best_id, s.elite_id, s.elite_fitness,
                  s.seconds, s.images_per_s] for s in (state.stats[g] for g in sorted(state.stats))))


def population_csv(state: RunState, generation: int) -> str:
    """The individuals of ``generation`` (the one the table shows)."""
    recs = [state.individuals[i] for i in state.by_generation.get(generation, ()) if i in state.individuals]
    return _csv(["id", "generation", "parent", "tasks", "gene_fraction", "gene_sizes", "fitness", "rank", "state",
                 "won_tournament"],
                ([r.id, r.generation, "" if r.parent is None else r.parent, " ".join(r.task_names), r.fraction,
                  " ".join(map(str, r.gene_sizes)), "" if r.fitness is None else r.fitness,
                  "" if r.rank is None else r.rank, r.state, int(r.won)] for r in recs))


def lineage_csv(state: RunState, individual: int | None) -> str:
    """The selected individual's ancestors back to generation 0, oldest first, with what each mutation did."""
    path = state.lineage(individual) if individual is not None and individual in state.individuals else []
    recs = [state.individuals[i] for i in path if i in state.individuals]
    return _csv(["id", "generation", "parent", "fitness", "rank", "gene_fraction", "mutations"],
                ([r.id, r.generation, "" if r.parent is None else r.parent, "" if r.fitness is None else r.fitness,
                  "" if r.rank is None else r.rank, r.fraction,
                  "; ".join(f"L{m.get('layer')} {m.get('op')} +{list(m.get('added') or [])} "
                            f"-{list(m.get('removed') or [])}" for m in r.mutations)] for r in recs))


def mutations_csv(state: RunState) -> str:
    """Every mutation of the run, newest first (as the table lists them)."""
    return _csv(["generation", "individual", "layer", "op", "channels_in", "channels_out"],
                ([m.generation, m.individual, m.layer, m.op, " ".join(map(str, m.added)),
                  " ".join(map(str, m.removed))] for m in reversed(state.mutations)))


def learngene_csv(state: RunState, individual: int | None) -> str:
    """Per layer of the selected individual: width, gene size and its channels inherited, added and dropped."""
    if individual is None or individual not in state.individuals:
        return _csv(["layer", "width", "gene_size", "inherited", "added", "dropped"], [])
    rec = state.individuals[individual]
    rows = []
    for layer, (width, (inh, add, drop)) in enumerate(zip(rec.layer_widths, state.gene_diff(individual),
                                                          strict=False)):
        rows.append([layer, width, rec.gene_sizes[layer] if layer < len(rec.gene_sizes) else len(inh) + len(add),
                     " ".join(map(str, sorted(inh))), " ".join(map(str, sorted(add))),
                     " ".join(map(str, sorted(drop)))])
    return _csv(["layer", "width", "gene_size", "inherited", "added", "dropped"], rows)


def events_csv(lines: Iterable[tuple[str, str]]) -> str:
    """The feed's lines as shown (under its filter): time and text."""
    return _csv(["time", "event"], lines)
