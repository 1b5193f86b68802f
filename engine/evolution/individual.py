"""What an individual carries into life (its genome) and what its lifetime produced."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from engine.learngene import Learngene


@dataclass
class Genome:
    """An individual at birth."""

    id: int  # (id, k) for its k-th extra lifetime (task.per_individual): the key of that lifetime's random draws
    generation: int
    parent: int | None
    task: list[int]  # global class indices of its k-way task
    channels: list[list[int]]  # its learngene's channel set per gene layer
    gene: Learngene | None = None  # inherited weights (None in generation 0: a random network)
    mutations: list[dict] = field(default_factory=list)
    parent2: int | None = None  # the second parent of a crossover child (mutation.crossover)
    from_parent2: list[int] = field(default_factory=list)  # gene layers whose channels and weights came from it
    life: int = 0  # which of its task.per_individual lifetimes this is (0: the individual's own task)


@dataclass
class LifeResult:
    """The outcome of one lifetime."""

    id: int
    fitness: float
    lifetime_fitness: float
    critic_fitness: float | None
    seconds: float
    train_loss: float | None  # None when the lifetime went non-finite (fitness then 0)
    images: int
    state: dict[str, torch.Tensor]  # the network's weights to inherit from (trained, or at birth if not Lamarckian)
    loss_curve: list[float] | None = None  # mean training loss of each of LOSS_CURVE_POINTS stretches of the lifetime
