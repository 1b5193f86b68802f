"""Trainers run the lifetimes of a whole generation. The evolution loop only sees this interface.

``SequentialTrainer`` trains one individual after another (the CPU default). A population trainer (all
individuals at once on a GPU) and a Ray trainer implement the same ``train_generation``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

from engine.evolution.individual import Genome, LifeResult
from engine.evolution.lifetime import LifeContext, live

OnStart = Callable[[Genome], None]
OnDone = Callable[[Genome, LifeResult], None]


class Trainer(Protocol):
    name: str

    def train_generation(self, genomes: list[Genome], *, on_start: OnStart, on_done: OnDone,
                         safe_point: Callable[[], None]) -> list[LifeResult]:
        """Train every genome; call ``on_start``/``on_done`` per individual; return results in genome order."""
        ...

    def close(self) -> None: ...


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


_TRAINERS: dict[str, Callable[[LifeContext], Trainer]] = {"sequential": SequentialTrainer}


def register_trainer(name: str, factory: Callable[[LifeContext], Trainer]) -> None:
    _TRAINERS[name] = factory


def make_trainer(ctx: LifeContext) -> Trainer:
    """The trainer the config asks for ('auto': population on CUDA when available, else sequential)."""
    run = ctx.cfg.run
    if run.backend == "ray":
        from engine.distributed import RayTrainer  # optional extra

        return RayTrainer(ctx)
    if ctx.device.type == "cuda":
        # Shapes are fixed within a run, so cuDNN may time its algorithms once per shape. Its heuristics chose a
        # generic weight-gradient kernel for the grouped convolutions: a third of a VGG11 population step (H100).
        torch.backends.cudnn.benchmark = True
    name = run.trainer
    if name == "auto":
        name = "population" if ctx.device.type == "cuda" and "population" in _available() else "sequential"
    factories = _available()
    if name not in factories:
        raise ValueError(f"run.trainer {name!r} is not available (have: {', '.join(factories)})")
    return factories[name](ctx)


def _available() -> dict[str, Callable[[LifeContext], Trainer]]:
    try:  # the population trainer registers itself on import
        import engine.population  # noqa: F401
    except ImportError:
        pass
    return _TRAINERS
