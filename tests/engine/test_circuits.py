"""The chosen circuit ``pretrained_top20``: the pretrained network's top-|gamma| channels, the learngene's counts,
inherited by the learngene's rule."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from engine.fewshot.circuits import channel_importance, circuit_counts, top_channels
from engine.fewshot.evaluate import EvalSettings, builders
from engine.learngene import extract, inherit, random_channels
from engine.models import create_model


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture()
def pretrained():
    """A conv4 whose BN gammas are known: distinct magnitudes in a shuffled order, half of them negative."""
    m = create_model("conv4", 7, width=0.125, generator=_gen(0))
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                n = mod.num_features
                mags = (torch.randperm(n, generator=_gen(n)) + 1).float() / n
                signs = torch.where(torch.arange(n) % 2 == 0, 1.0, -1.0)
                mod.weight.copy_(mags * signs)
    return m


def test_top_channels_are_the_largest_abs_gamma_with_the_learngenes_counts(pretrained) -> None:
    ancestor = create_model("conv4", 5, width=0.125, generator=_gen(3))
    gene = extract(ancestor, random_channels(ancestor.gene_spec().widths, 0.45, _gen(4)))
    counts = circuit_counts(pretrained, gene)
    assert counts == [len(c) for c in gene.channels]
    chosen = top_channels(pretrained, counts)
    bns = [mod for mod in pretrained.modules() if isinstance(mod, nn.BatchNorm2d)]
    for chans, k, bn in zip(chosen, counts, bns, strict=True):
        gamma = bn.weight.detach().abs()
        assert len(chans) == k and chans == sorted(chans)
        assert set(chans) == set(torch.topk(gamma, k).indices.tolist())  # magnitudes are distinct
        assert gamma[chans].min() > gamma[[c for c in range(len(gamma)) if c not in chans]].max()

    # the builder: the pretrained weights on exactly those channels, the rest as the learngene is born
    s = EvalSettings()
    b = builders(s, ways=3, in_channels=3, image_size=32, gene=gene, pretrained=pretrained)["pretrained_top20"]
    built = b(_gen(11))
    want = inherit(create_model("conv4", 3, width=0.125, generator=_gen(11)), extract(pretrained, chosen),
                   nongene_init=s.nongene_init, nongene_scale=s.nongene_scale)
    for (k, x), y in zip(built.state_dict().items(), want.state_dict().values(), strict=True):
        assert torch.equal(x, y), k
    ref = extract(pretrained, chosen)
    for key, t in extract(built, chosen).tensors.items():
        assert torch.equal(t, ref.tensors[key]), key
    # the same channels in every episode (only the non-gene init differs)
    other = b(_gen(12))
    for key, t in extract(other, chosen).tensors.items():
        assert torch.equal(t, ref.tensors[key]), key
    assert not torch.equal(other.state_dict()["blocks.0.conv.weight"], built.state_dict()["blocks.0.conv.weight"])


def test_counts_follow_the_fraction_on_other_widths(pretrained) -> None:
    wide = create_model("conv4", 5, width=0.25, generator=_gen(3))
    gene = extract(wide, [list(range(k)) for k in (4, 8, 2, 16)])
    assert circuit_counts(pretrained, gene) == [2, 4, 1, 8]  # the same fraction of the narrower slots
    res = create_model("resnet12", 5, width=0.125, generator=_gen(3))
    half = extract(res, [list(range(w // 2)) for w in res.gene_spec().widths])
    assert circuit_counts(pretrained, half) == [4, 4, 4, 4]  # another architecture: the mean ratio (1/2)


def test_importance_without_bn_is_the_filter_norm_and_shared_slots_sum() -> None:
    m = create_model("conv4", 5, width=0.125, generator=_gen(5))
    m.blocks[0].bn = nn.BatchNorm2d(m.blocks[0].bn.num_features, affine=False)  # no gamma: filter norm
    scores = channel_importance(m)
    conv = m.blocks[0].conv
    norms = torch.cat([conv.weight.detach().flatten(1), conv.bias.detach()[:, None]], 1).norm(dim=1) \
        if conv.bias is not None else conv.weight.detach().flatten(1).norm(dim=1)
    torch.testing.assert_close(scores[0], norms.double())
    res = create_model("resnet12", 5, width=0.125, generator=_gen(6))
    with torch.no_grad():
        res.blocks[0].bn3.weight.fill_(0.5)
        res.blocks[0].shortcut_bn.weight.copy_(torch.arange(res.blocks[0].shortcut_bn.num_features).float())
    s = channel_importance(res)[2]  # written by conv3 and the shortcut
    torch.testing.assert_close(s, 0.5 + torch.arange(len(s)).double())
