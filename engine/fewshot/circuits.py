"""Cheap circuits of a pretrained network: the baselines a learngene must beat without any evolution.

``pretrained_random20`` takes random channels of the pretrained network; ``pretrained_top20`` takes the most
*important* ones, chosen once from the pretrained weights alone. Both take as many channels per slot as the
learngene has (:func:`circuit_counts`) and are inherited into a fresh network by the learngene's own rule
(:func:`engine.learngene.inherit`, the same non-gene init), so the only difference from the learngene is which
channels and weights the circuit holds.

Importance of a channel of a slot: ``|gamma|`` of the BatchNorm after each conv that writes the slot (network
slimming: a channel a BN scales towards zero contributes little downstream), or, for a conv without a
BatchNorm, the L2 norm of its filter (plus bias). A slot written by several convs (ResNet12's last conv and
its shortcut) sums its writers' scores.
"""

from __future__ import annotations

import statistics

import torch
from torch import nn

from engine.learngene import Learngene
from engine.models import GeneNet


def circuit_counts(pretrained: GeneNet, gene: Learngene) -> list[int]:
    """Channels per slot of the pretrained network for a circuit of the learngene's size: the learngene's counts
    when the widths agree, the same fraction per slot when only the widths differ, and the learngene's mean channel
    ratio for another architecture."""
    spec = pretrained.gene_spec()
    if list(spec.widths) == list(gene.widths):
        return [len(c) for c in gene.channels]
    if len(spec.widths) == len(gene.widths):
        return [max(1, round(len(c) / w * tw)) for c, w, tw in zip(gene.channels, gene.widths, spec.widths,
                                                                    strict=True)]
    ratio = statistics.fmean(len(c) / w for c, w in zip(gene.channels, gene.widths, strict=True))
    return [max(1, round(ratio * w)) for w in spec.widths]


@torch.no_grad()
def channel_importance(model: GeneNet) -> list[torch.Tensor]:
    """One score per channel of every slot (float64, CPU): summed |BN gamma| (filter norm without a BN) of the
    convs writing the slot."""
    spec = model.gene_spec()
    mods = dict(model.named_modules())
    scores = [torch.zeros(w, dtype=torch.float64) for w in spec.widths]
    for ref in spec.convs:
        bn = mods[ref.bn] if ref.bn is not None else None
        if isinstance(bn, nn.BatchNorm2d) and bn.weight is not None:
            s = bn.weight.detach().abs()
        else:
            conv: nn.Conv2d = mods[ref.conv]
            w = conv.weight.detach().flatten(1)
            if conv.bias is not None:
                w = torch.cat([w, conv.bias.detach()[:, None]], 1)
            s = w.norm(dim=1)
        scores[ref.out_slot] += s.to("cpu", torch.float64)
    return scores


def top_channels(model: GeneNet, counts: list[int]) -> list[list[int]]:
    """The ``counts[s]`` most important channels of every slot ``s``, sorted (ties: the lower index)."""
    out = []
    for score, k in zip(channel_importance(model), counts, strict=True):
        order = torch.sort(-score, stable=True).indices  # descending, ties in index order
        out.append(sorted(order[:k].tolist()))
    return out
