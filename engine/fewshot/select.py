"""Choosing a run's learngene by transfer instead of by one lifetime's fitness.

Evolution ranks individuals on their own task's held-out accuracy, which is partly the luck of one task: the last
generation's best or the elite of a run can transfer worse than its ancestors (docs/evaluation.md, issue 18). Here
every individual the gene archive holds for the last ``generations`` generations is scored on **meta-validation**
episodes (classes that neither evolution nor the meta-test evaluation sees), the descendant's few-shot accuracy
with no fine-tuning (nearest class mean: forward passes only, so dozens of candidates cost minutes on a CPU), all
candidates on the same episodes and the same non-gene inits. The meta-test classes stay untouched for
``gtl-tui evaluate``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.fewshot.evaluate import EvalSettings, builders, evaluate
from engine.run.gene_archive import archived_generations, load_generation

SELECTION_FILE = "selection.json"  # in the run directory: the ranking of the last selection


@dataclass(frozen=True)
class Candidate:
    id: int
    generation: int
    fitness: float  # its own lifetime's fitness, what evolution ranked it by
    val: float  # mean meta-validation accuracy in [0, 1]
    ci95: float


def select_learngene(run_dir: str | Path, dataset: Any, settings: EvalSettings, *, generations: int = 8,
                     progress: Callable[[str, int, int], None] | None = None) -> list[Candidate]:
    """Score every archived individual of the last ``generations`` generations on ``settings`` (its split, shots
    and episodes; steps [0] is expected) and return them best first (ties: the later generation, then the higher
    fitness, then the lower id). Raises ValueError (one line) when the archive holds no generation."""
    run_dir = Path(run_dir)
    held = archived_generations(run_dir)
    if not held:
        raise ValueError(f"{run_dir.name} has no gene archive to choose from (run.gene_history = 0, or no "
                         "generation completed)")
    if generations < 1:
        raise ValueError(f"generations must be >= 1 (got {generations})")
    genes: dict[int, tuple[Any, float, int]] = {}
    for g in held[-generations:]:
        for i, (gene, fitness) in load_generation(run_dir, g).items():
            genes[i] = (gene, fitness, g)
    methods = {str(i): builders(settings, ways=settings.ways, in_channels=dataset.channels,
                                image_size=dataset.image_size, gene=gene)["learngene"]
               for i, (gene, _, _) in sorted(genes.items())}
    report = evaluate(dataset, settings, methods, progress=progress)
    cands = []
    for r in report["results"]:
        if r["steps"] == min(settings.steps):
            i = int(r["method"])
            cands.append(Candidate(i, genes[i][2], genes[i][1], r["mean"], r["ci95"]))
    return sorted(cands, key=lambda c: (-c.val, -c.generation, -c.fitness, c.id))


def selection_record(cands: list[Candidate], settings: EvalSettings, generations: int, exported: str) -> dict:
    """What ``selection.json`` holds: the settings, the learngene exported and the whole ranking."""
    return {"settings": asdict(settings) | {"generations": generations}, "exported": exported,
            "ranking": [asdict(c) for c in cands]}
