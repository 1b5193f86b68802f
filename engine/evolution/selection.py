"""Tournament selection: shuffle the population into groups of ``t``; each group's fittest wins."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TournamentResult:
    group: list[int]  # positions in the population
    winner: int


def tournament_round(fitness: list[float], size: int, rng: np.random.Generator) -> list[TournamentResult]:
    """One round: a random permutation cut into groups of ``size`` (the last may be smaller).

    The winner is the group member with the highest fitness; ties go to the member drawn first.
    """
    order = rng.permutation(len(fitness)).tolist()
    results = []
    for start in range(0, len(order), size):
        group = order[start:start + size]
        winner = max(group, key=lambda i: (fitness[i], -group.index(i)))
        results.append(TournamentResult(group=group, winner=winner))
    return results


def select_parents(fitness: list[float], *, n: int, size: int, rng: np.random.Generator) -> list[TournamentResult]:
    """Run rounds of tournaments until ``n`` winners are chosen; returns the tournaments that chose them."""
    chosen: list[TournamentResult] = []
    while len(chosen) < n:
        chosen.extend(tournament_round(fitness, size, rng)[: n - len(chosen)])
    return chosen
