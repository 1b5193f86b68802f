"""Descendants of a learngene: same, wider, narrower, deeper (PIM) and other architectures (tiny widths, CPU)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from engine.learngene import extract, gene_fraction, inherit, random_channels
from engine.learngene.descendants import base_width, build_descendant
from engine.models import GeneNet, create_model

ARCHS = ["conv4", "vgg11", "resnet12"]
WIDTH = 0.25


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def trained_gene(arch: str, seed: int = 0, ratio: float = 0.45):
    """A gene with non-trivial BN statistics (a few train-mode forwards), as an evolved gene has."""
    model = create_model(arch, 5, width=WIDTH, generator=gen(seed))
    model.train()
    with torch.no_grad():
        for k in range(3):
            model(torch.randn(8, 3, 32, 32, generator=gen(100 + k)))
    channels = random_channels(model.gene_spec().widths, ratio, gen(seed + 1))
    return extract(model, channels)


def block_outputs(model: GeneNet, x: torch.Tensor) -> list[torch.Tensor]:
    outs: list[torch.Tensor] = []
    hooks = [b.register_forward_hook(lambda m, i, o: outs.append(o)) for b in model.blocks]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    return outs


def block_out_slot(arch: str, b: int) -> int:
    return 3 * b + 2 if arch == "resnet12" else b


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("scale,extra", [(1.0, 0), (2.0, 0), (1.5, 0), (0.5, 0), (1.0, 2), (2.0, 1)])
def test_descendant_computes_the_gene_circuit_at_birth(arch: str, scale: float, extra: int) -> None:
    gene = trained_gene(arch)
    ref = inherit(create_model(arch, 5, width=WIDTH, generator=gen(7)), gene)
    d = build_descendant(gene, 5, width_scale=scale, extra_layers=extra, generator=gen(8))
    x = torch.randn(4, 3, 32, 32, generator=gen(9))
    ref_out, out = block_outputs(ref, x), block_outputs(d.model, x)
    n_main = len(ref_out)
    assert len(out) == n_main + extra
    for b in range(n_main):
        s = block_out_slot(arch, b)
        got = out[b][:, d.channels[d.slot_map[s]]]
        want = ref_out[b][:, gene.channels[s]]
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    last = block_out_slot(arch, n_main - 1)
    for b in range(n_main, n_main + extra):  # PIM layers pass the gene's signal unchanged
        torch.testing.assert_close(out[b][:, d.channels[d.slot_map[last]]], ref_out[-1][:, gene.channels[last]],
                                   atol=1e-5, rtol=1e-5)
    widths = d.model.gene_spec().widths
    assert widths[0] == round(gene.widths[0] * scale)
    assert len(d.inserted) == (extra if arch != "resnet12" else 2 * extra)


@pytest.mark.parametrize("arch", ARCHS)
def test_perturbing_non_gene_channels_leaves_gene_channels_alone(arch: str) -> None:
    gene = trained_gene(arch)
    d = build_descendant(gene, 5, width_scale=2.0, extra_layers=1, generator=gen(3))
    x = torch.randn(2, 3, 32, 32, generator=gen(4))
    before = block_outputs(d.model, x)
    with torch.no_grad():  # scramble every weight that is not on a gene row
        for m in d.model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.add_(torch.randn(m.weight.shape, generator=gen(5)))
    spec = d.model.gene_spec()
    mods = dict(d.model.named_modules())
    with torch.no_grad():
        for ref in spec.convs:  # restore gene rows (and their zero inputs) from a fresh build
            fresh = dict(build_descendant(gene, 5, width_scale=2.0, extra_layers=1, generator=gen(3)).model
                         .named_modules())[ref.conv].weight
            rows = torch.tensor(d.channels[ref.out_slot])
            mods[ref.conv].weight[rows] = fresh[rows]
    after = block_outputs(d.model, x)
    last = len(after) - 1
    s = len(spec.widths) - 1 if arch != "resnet12" else block_out_slot(arch, 3)
    torch.testing.assert_close(after[last][:, d.channels[s]], before[last][:, d.channels[s]])


def test_narrow_descendant_remaps_channels_that_do_not_fit() -> None:
    gene = trained_gene("conv4")  # width 0.25: 16 channels per slot; x0.5 has 8
    small = [[0, 1, 15], [2, 3, 14], [0, 5, 9], [1, 2, 3]]
    model = create_model("conv4", 5, width=WIDTH, generator=gen(0))
    gene = extract(model.eval(), small)
    d = build_descendant(gene, 5, width_scale=0.5, generator=gen(1))
    assert d.model.gene_spec().widths == [8, 8, 8, 8]
    assert d.channels == [[0, 1, 2], [0, 1, 2], [0, 1, 2], [1, 2, 3]]  # slots that do not fit move to the front
    x = torch.randn(3, 3, 32, 32, generator=gen(2))
    ref = inherit(create_model("conv4", 5, width=WIDTH, generator=gen(5)), gene)
    for b, (o, r) in enumerate(zip(block_outputs(d.model, x), block_outputs(ref, x), strict=True)):
        torch.testing.assert_close(o[:, d.channels[b]], r[:, gene.channels[b]], atol=1e-5, rtol=1e-5)


def test_too_narrow_is_a_clear_error() -> None:
    gene = trained_gene("conv4", ratio=0.9)
    with pytest.raises(ValueError, match="more than the descendant"):
        build_descendant(gene, 5, width_scale=0.5)
    with pytest.raises(ValueError, match="width_scale"):
        build_descendant(gene, 5, width_scale=0)


@pytest.mark.parametrize("src,dst", [("vgg11", "resnet12"), ("resnet12", "vgg11"), ("conv4", "vgg11"),
                                     ("conv4", "resnet12"), ("resnet12", "conv4")])
def test_other_architecture_maps_layers_by_stage(src: str, dst: str) -> None:
    gene = trained_gene(src)
    d = build_descendant(gene, 5, arch=dst, generator=gen(2))
    assert d.model.arch == dst
    assert d.model(torch.randn(2, 3, 32, 32, generator=gen(3))).shape == (2, 5)
    assert d.conv_map, "some gene layers must be mapped"
    spec, mods = d.model.gene_spec(), dict(d.model.named_modules())
    gspec = gene.spec()
    first_gene = gspec.convs[0].conv
    assert d.conv_map[first_gene] == spec.convs[0].conv  # the image-reading conv maps onto the image-reading conv
    for gconv, tconv in d.conv_map.items():  # mapped weights are copied (overlapping block)
        ref = next(r for r in spec.convs if r.conv == tconv)
        w = gene.tensors[f"{gconv}.weight"]
        rows = d.channels[ref.out_slot]
        cols = list(range(3)) if ref.in_slot == -1 else d.channels[ref.in_slot]
        n_out, n_in = min(len(rows), w.shape[0]), min(len(cols), w.shape[1])
        got = mods[tconv].weight[rows[:n_out]][:, cols[:n_in]]
        torch.testing.assert_close(got, w[:n_out, :n_in])
    assert 0 < d.fraction < 1


def test_fraction_and_width_of_a_same_arch_descendant() -> None:
    gene = trained_gene("vgg11")
    assert base_width(gene) == pytest.approx(WIDTH)
    same = build_descendant(gene, 5, generator=gen(0))
    assert same.fraction == pytest.approx(gene.fraction)
    wide = build_descendant(gene, 5, width_scale=2.0, generator=gen(0))
    assert wide.fraction == pytest.approx(gene_fraction(wide.model.gene_spec(), gene.channels))
    assert wide.fraction < gene.fraction / 3  # same gene channels in a network twice as wide
