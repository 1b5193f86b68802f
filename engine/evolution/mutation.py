"""Structural mutation of a learngene's channel sets: swap, add or drop a few channels within a size band.

Every operation is returned as data (``{"layer", "op", "added", "removed"}``) so the lineage can be shown and
replayed. Channel sets are sorted lists of channel indices, one per gene layer (slot).
"""

from __future__ import annotations

import math

import numpy as np

OPS = ("swap", "add", "drop")


def size_band(width: int, ratio_band: tuple[float, float]) -> tuple[int, int]:
    """Smallest and largest allowed gene size of a layer with ``width`` channels (at least 1 channel)."""
    lo = max(1, math.ceil(ratio_band[0] * width - 1e-9))
    hi = min(width, max(lo, math.floor(ratio_band[1] * width + 1e-9)))
    return lo, hi


def mutate_channels(
    channels: list[list[int]],
    widths: list[int],
    *,
    rate: float,
    max_channels: int,
    op_weights: dict[str, float],
    ratio_band: tuple[float, float],
    rng: np.random.Generator,
) -> tuple[list[list[int]], list[dict]]:
    """Mutate each layer's channel set with probability ``rate``; returns new sets and the mutation records.

    A layer already outside its band is only moved towards it (add when too small, drop when too large).
    """
    new_sets: list[list[int]] = []
    records: list[dict] = []
    for layer, (chans, width) in enumerate(zip(channels, widths, strict=True)):
        chans = sorted(chans)
        if rng.random() >= rate:
            new_sets.append(chans)
            continue
        lo, hi = size_band(width, ratio_band)
        outside = [c for c in range(width) if c not in set(chans)]
        room_add = min(hi - len(chans), len(outside))
        room_drop = len(chans) - lo
        allowed = {
            "swap": 1 if outside and chans and lo <= len(chans) <= hi else 0,
            "add": 1 if room_add > 0 else 0,
            "drop": 1 if room_drop > 0 else 0,
        }
        weights = np.array([op_weights.get(op, 0.0) * allowed[op] for op in OPS], dtype=float)
        if weights.sum() <= 0:
            new_sets.append(chans)
            continue
        op = OPS[int(rng.choice(len(OPS), p=weights / weights.sum()))]
        limit = {"swap": min(len(chans), len(outside)), "add": room_add, "drop": room_drop}[op]
        n = int(rng.integers(1, min(max_channels, limit) + 1))
        added: list[int] = []
        removed: list[int] = []
        if op in ("swap", "drop"):
            removed = sorted(int(c) for c in rng.choice(chans, size=n, replace=False))
        if op in ("swap", "add"):
            added = sorted(int(c) for c in rng.choice(outside, size=n, replace=False))
        new_sets.append(sorted((set(chans) - set(removed)) | set(added)))
        records.append({"layer": layer, "op": op, "added": added, "removed": removed})
    return new_sets, records


def jaccard_diversity(population: list[list[list[int]]]) -> float:
    """Mean pairwise Jaccard distance of the population's channel sets, averaged over layers (0: all equal)."""
    n = len(population)
    if n < 2:
        return 0.0
    total, pairs = 0.0, 0
    for i in range(n):
        for j in range(i + 1, n):
            dist = 0.0
            for a, b in zip(population[i], population[j], strict=True):
                sa, sb = set(a), set(b)
                union = len(sa | sb)
                dist += 1.0 - (len(sa & sb) / union if union else 1.0)
            total += dist / len(population[i])
            pairs += 1
    return total / pairs
