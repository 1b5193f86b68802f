"""The interface every trainer implements; the evolution loop sees nothing else of a trainer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from engine.evolution.individual import Genome, LifeResult

OnStart = Callable[[Genome], None]
OnDone = Callable[[Genome, LifeResult], None]


class Trainer(Protocol):
    name: str

    def train_generation(self, genomes: list[Genome], *, on_start: OnStart, on_done: OnDone,
                         safe_point: Callable[[], None]) -> list[LifeResult]:
        """Train every genome; call ``on_start``/``on_done`` per individual; return results in genome order."""
        ...

    def close(self) -> None: ...
