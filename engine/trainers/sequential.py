"""The sequential trainer: one individual after another, each lifetime by :func:`engine.evolution.lifetime.live`
(the CPU default)."""

from __future__ import annotations

from collections.abc import Callable

from engine.evolution.individual import Genome, LifeResult
from engine.evolution.lifetime import LifeContext, live
from engine.trainers.base import OnDone, OnStart


class SequentialTrainer:
    name = "sequential"

    def __init__(self, ctx: LifeContext):
        self.ctx = ctx

    def train_generation(self, genomes: list[Genome], *, on_start: OnStart, on_done: OnDone,
                         safe_point: Callable[[], None]) -> list[LifeResult]:
        results = []
        for genome in genomes:
            safe_point()
            on_start(genome)
            result = live(self.ctx, genome, safe_point)
            on_done(genome, result)
            results.append(result)
        return results

    def close(self) -> None:
        pass
