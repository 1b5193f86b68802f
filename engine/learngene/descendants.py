"""Descendants: networks born from an exported learngene that differ from its ancestry network.

A descendant may be wider or narrower (``width_scale`` x0.5 .. x2), deeper (``extra_layers`` PIM layers on top)
or of another architecture (VGG11, ResNet12, Conv-4). The rules (GTL.md, "Descendants"):

* gene channels keep their positions; when a slot's indices do not fit the narrower slot, that slot's gene channels
  move to its first positions (the same remap for every conv that reads or writes the slot, so the circuit stays
  connected);
* nothing flows from a non-gene channel into a gene channel (the gene rows of every conv are zeroed first);
* an inserted conv is the identity on gene channels (a Dirac kernel, channel ``c`` to channel ``c``, with an
  identity BatchNorm) and random elsewhere; a conv that adds into a slot already written (ResNet12's residual
  branches, shortcuts with no gene counterpart) is zero on gene channels, so the gene's signal passes unchanged;
* another architecture: the gene's chain convs are mapped in order onto the target's chain convs within stages of
  equal spatial size; a target conv with no counterpart is an inserted (PIM) conv; where channel counts differ the
  overlapping block of weights is copied; a slot keeps the gene's channel ratio (its first channels when it shrinks).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from engine.learngene.gene import BN_KEYS, Learngene, check_channels, gene_fraction
from engine.learngene.transfer import NongeneInit, inherit, init_nongene
from engine.models import GeneNet, GeneSpec, create_model
from engine.models.registry import arch_spec, unit_widths


@dataclass
class Descendant:
    """A network born from a learngene and where the gene went.

    Attributes:
        model: the network (head freshly initialised).
        channels: gene channel set of every slot of ``model`` (inserted slots carry the channels they pass on).
        slot_map: gene slot -> slot of ``model`` holding it (gene slots dropped by another architecture are absent).
        conv_map: gene conv path -> conv path of ``model`` that received its weights.
        inserted: conv paths of ``model`` that are identity (Dirac) on gene channels.
        zeroed: conv paths of ``model`` that are zero on gene channels (residual branches with no gene weights).
    """

    model: GeneNet
    channels: list[list[int]]
    slot_map: dict[int, int]
    conv_map: dict[str, str]
    inserted: list[str] = field(default_factory=list)
    zeroed: list[str] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        """Share of the descendant's conv weights inside its gene channel sets."""
        return gene_fraction(self.model.gene_spec(), self.channels)


def base_width(gene: Learngene) -> float:
    """The width multiplier of the gene's ancestry network (its first slot over the architecture's at x1)."""
    ref = arch_spec(gene.arch, unit_widths(gene.arch, gene.in_channels), gene.in_channels)
    return gene.widths[0] / ref.widths[0]


def slot_resolutions(model: GeneNet, image_size: int) -> dict[int, int]:
    """Spatial side of the output of each slot (the conv output, before any pool), from a meta-device forward."""
    spec = model.gene_spec()
    meta = copy.deepcopy(model).to("meta") if not _on_meta(model) else model
    mods = dict(meta.named_modules())
    sides: dict[str, int] = {}
    hooks = [mods[r.conv].register_forward_hook(lambda m, i, o, p=r.conv: sides.__setitem__(p, int(o.shape[-1])))
             for r in spec.convs]
    try:
        with torch.no_grad():
            meta.features(torch.empty(1, spec.in_channels, image_size, image_size, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    return {r.out_slot: sides[r.conv] for r in spec.convs}


def _on_meta(model: nn.Module) -> bool:
    return all(p.device.type == "meta" for p in model.parameters())


def _chain(spec: GeneSpec) -> list[tuple[str, int, int]]:
    """The main path: (conv, in slot, out slot) of each conv that writes a slot first, in forward order."""
    seen: set[int] = set()
    out = []
    for r in spec.convs:
        if r.out_slot not in seen:
            seen.add(r.out_slot)
            out.append((r.conv, r.in_slot, r.out_slot))
    return out


def map_layers(gene_spec: GeneSpec, gene_res: dict[int, int], spec: GeneSpec, res: dict[int, int],
               same_arch: bool) -> tuple[dict[int, int], dict[str, str]]:
    """Gene slot -> target slot and gene conv -> target conv.

    Same architecture: identity on every gene conv and slot. Otherwise chain convs are paired in order within each
    spatial size; stages only one side has are left out.
    """
    if same_arch:
        return ({s: s for s in range(len(gene_spec.widths))}, {r.conv: r.conv for r in gene_spec.convs})
    by_side: dict[int, list[tuple[str, int, int]]] = {}
    for c in _chain(spec):
        by_side.setdefault(res[c[2]], []).append(c)
    slot_map: dict[int, int] = {}
    conv_map: dict[str, str] = {}
    used: dict[int, int] = {}
    for conv, _, out in _chain(gene_spec):
        side = gene_res[out]
        k = used.get(side, 0)
        targets = by_side.get(side, [])
        if k < len(targets):
            slot_map[out] = targets[k][2]
            conv_map[conv] = targets[k][0]
            used[side] = k + 1
    return slot_map, conv_map


def _fit(chans: list[int], width: int, slot: int) -> list[int]:
    if len(chans) > width:
        raise ValueError(f"slot {slot}: the gene has {len(chans)} channels, more than the descendant's {width}")
    return list(chans) if chans[-1] < width else list(range(len(chans)))


def build_descendant(gene: Learngene, num_classes: int, *, arch: str | None = None, width_scale: float = 1.0,
                     extra_layers: int = 0, image_size: int = 32, generator: torch.Generator | None = None,
                     nongene_init: NongeneInit = "random", nongene_scale: float = 0.1) -> Descendant:
    """A fresh descendant of ``gene``: architecture ``arch`` (default: the gene's), width ``width_scale`` times the
    ancestry network's, ``extra_layers`` PIM layers on top. Non-gene weights follow ``nongene_init`` as in
    :func:`~engine.learngene.inherit`.

    Raises:
        ValueError: a bad scale, or a slot too narrow for the gene's channels.
    """
    arch = arch or gene.arch
    if not 0 < width_scale <= 8:
        raise ValueError(f"width_scale must be in (0, 8] (got {width_scale})")
    width = base_width(gene) * width_scale
    model = create_model(arch, num_classes, width=width, in_channels=gene.in_channels, image_size=image_size,
                         generator=generator, extra_layers=extra_layers)
    spec = model.gene_spec()
    if arch == gene.arch and width_scale == 1.0 and extra_layers == 0 and list(spec.widths) == list(gene.widths):
        inherit(model, gene, nongene_init=nongene_init, nongene_scale=nongene_scale)
        n = len(gene.widths)
        return Descendant(model, [list(c) for c in gene.channels], {s: s for s in range(n)},
                          {r.conv: r.conv for r in spec.convs})
    gspec = gene.spec()
    same = arch == gene.arch
    slot_map, conv_map = map_layers(gspec, {} if same else slot_resolutions(_probe(gene), image_size), spec,
                                    {} if same else slot_resolutions(model, image_size), same)
    channels: dict[int, list[int]] = {}
    for s, t in slot_map.items():
        chans = list(gene.channels[s])
        if not same:  # another architecture: the gene keeps its channel ratio, its first channels if it must shrink
            chans = chans[:max(1, round(len(chans) / gene.widths[s] * spec.widths[t]))]
        channels[t] = _fit(chans, spec.widths[t], t)
    to_gene = {t: c for c, t in conv_map.items()}
    gconvs = {r.conv: r for r in gspec.convs}
    mods = dict(model.named_modules())
    written: set[int] = set()
    inserted, zeroed = [], []
    with torch.no_grad():
        for ref in spec.convs:
            conv: nn.Conv2d = mods[ref.conv]
            init_nongene(conv, nongene_init, nongene_scale)
            t_in = list(range(spec.in_channels)) if ref.in_slot == -1 else channels[ref.in_slot]
            if ref.out_slot not in channels:  # an inserted slot passes on the channels it reads
                channels[ref.out_slot] = _fit(t_in, spec.widths[ref.out_slot], ref.out_slot)
            t_out = channels[ref.out_slot]
            rows = torch.tensor(t_out)
            conv.weight[rows] = 0.0
            if conv.bias is not None:
                conv.bias[rows] = 0.0
            bn = mods[ref.bn] if ref.bn is not None else None
            if ref.conv in to_gene:
                g = gconvs[to_gene[ref.conv]]
                w = gene.tensors[f"{g.conv}.weight"]
                if tuple(w.shape[2:]) != tuple(conv.weight.shape[2:]):
                    raise ValueError(f"{g.conv} -> {ref.conv}: kernel sizes differ")
                n_out, n_in = min(len(t_out), w.shape[0]), min(len(t_in), w.shape[1])
                cols = torch.tensor(t_in[:n_in])
                conv.weight[rows[:n_out, None], cols[None, :]] = w[:n_out, :n_in].to(conv.weight.dtype)
                if conv.bias is not None and f"{g.conv}.bias" in gene.tensors:
                    conv.bias[rows[:n_out]] = gene.tensors[f"{g.conv}.bias"][:n_out]
                if bn is not None and g.bn is not None:
                    for key in BN_KEYS:
                        getattr(bn, key)[rows[:n_out]] = gene.tensors[f"{g.bn}.{key}"][:n_out]
            elif ref.out_slot in written or (ref.out_slot in slot_map.values() and ref.conv not in to_gene
                                              and _has_gene_writer(spec, ref.out_slot, to_gene)):
                zeroed.append(ref.conv)  # adds into a gene slot: zero on gene channels (weights zeroed above)
                if bn is not None:
                    bn.weight[rows] = 0.0
                    bn.bias[rows] = 0.0
            else:
                inserted.append(ref.conv)  # PIM: identity on gene channels
                kh, kw = conv.weight.shape[2:]
                n = min(len(t_out), len(t_in))
                conv.weight[rows[:n], torch.tensor(t_in[:n]), kh // 2, kw // 2] = 1.0
                if bn is not None:
                    bn.weight[rows] = 1.0
                    bn.bias[rows] = 0.0
                    bn.running_mean[rows] = 0.0
                    bn.running_var[rows] = 1.0 - bn.eps
            written.add(ref.out_slot)
    chans = check_channels(spec, [channels[s] for s in range(len(spec.widths))])
    return Descendant(model, chans, slot_map, conv_map, inserted, zeroed)


def _has_gene_writer(spec: GeneSpec, slot: int, to_gene: dict[str, str]) -> bool:
    return any(r.out_slot == slot and r.conv in to_gene for r in spec.convs)


def _probe(gene: Learngene) -> GeneNet:
    with torch.device("meta"):
        from engine.models.registry import _factory

        return _factory(gene.arch)(1, width=base_width(gene), in_channels=gene.in_channels)

