"""Recombination (``mutation.crossover``): a child of two tournament winners takes, per gene layer, the channel set
and the weights of either parent.

A layer is owned by one parent: the child's channel set of that slot is the owner's, and so are the weights *into*
it (the conv kernels ``W[S_out][:, S_in]``, bias and BatchNorm entries of ``S_out``). The columns ``S_in`` follow
the child's previous slot, which may belong to the other parent: the owner's trained network holds weights for
every input channel, so they are read from it at the child's positions, and the circuit stays closed.
"""

from __future__ import annotations

import numpy as np

from engine.learngene import Learngene, extract
from engine.learngene.gene import BN_KEYS
from engine.models import GeneNet


def cross_channels(first: list[list[int]], second: list[list[int]],
                   rng: np.random.Generator) -> tuple[list[list[int]], list[int]]:
    """Per slot, the first or the second parent's channel set (a fair coin each). Returns the child's sets and the
    slots taken from the second parent; with two slots or more each parent gives at least one."""
    n = len(first)
    take = rng.random(n) < 0.5
    if n >= 2 and (take.all() or not take.any()):  # a child of both: flip one slot
        take[int(rng.integers(n))] ^= True
    channels = [list(second[s]) if take[s] else list(first[s]) for s in range(n)]
    return channels, [s for s in range(n) if take[s]]


def cross_gene(first: GeneNet, second: GeneNet, channels: list[list[int]], from_second: list[int]) -> Learngene:
    """The child's learngene over ``channels``: each conv's weights (and its bias and BatchNorm) from the trained
    network of the parent that owns its out slot."""
    gene = extract(first, channels)
    if not from_second:
        return gene
    other = extract(second, channels)
    owned = set(from_second)
    for ref in gene.spec().convs:
        if ref.out_slot in owned:
            keys = [f"{ref.conv}.weight", f"{ref.conv}.bias"]
            if ref.bn is not None:
                keys += [f"{ref.bn}.{k}" for k in BN_KEYS]
            for key in keys:
                if key in gene.tensors:
                    gene.tensors[key] = other.tensors[key]
    return gene
