"""Moving learngenes in and out of networks: extract, inherit (birth) and gene masks."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from engine.learngene.gene import BN_KEYS, Channels, Learngene, check_channels, gene_shapes
from engine.models import GeneNet

NongeneInit = Literal["random", "scaled", "zero"]


def _as_channels(channels: Channels | Learngene) -> Channels:
    return channels.channels if isinstance(channels, Learngene) else channels


def _index(chans: list[int], device: torch.device) -> torch.Tensor:
    return torch.tensor(chans, dtype=torch.long, device=device)


def _in_index(in_channels: int, slot: int, channels: list[list[int]]) -> list[int]:
    """The channels a conv reads from ``slot``: every image channel for slot -1."""
    return list(range(in_channels)) if slot == -1 else channels[slot]


def extract(model: GeneNet, channels: Channels | Learngene) -> Learngene:
    """Copy the gene weights over ``channels`` out of ``model`` (detached CPU fp32 tensors)."""
    spec = model.gene_spec()
    chans = check_channels(spec, _as_channels(channels))
    mods = dict(model.named_modules())
    tensors: dict[str, torch.Tensor] = {}

    def take(t: torch.Tensor, idx: list[int]) -> torch.Tensor:
        return t.detach()[_index(idx, t.device)].to("cpu", torch.float32).contiguous()

    for ref in spec.convs:
        conv: nn.Conv2d = mods[ref.conv]
        s_out, s_in = chans[ref.out_slot], _in_index(spec.in_channels, ref.in_slot, chans)
        w = conv.weight.detach()
        block = w.index_select(0, _index(s_out, w.device)).index_select(1, _index(s_in, w.device))
        tensors[f"{ref.conv}.weight"] = block.to("cpu", torch.float32).contiguous()
        if conv.bias is not None:
            tensors[f"{ref.conv}.bias"] = take(conv.bias, s_out)
        if ref.bn is not None:
            bn = mods[ref.bn]
            for key in BN_KEYS:
                tensors[f"{ref.bn}.{key}"] = take(getattr(bn, key), s_out)
    return Learngene(model.arch, spec.in_channels, list(spec.widths), chans, tensors)


def inherit(model: GeneNet, gene: Learngene, *, nongene_init: NongeneInit = "random",
            nongene_scale: float = 0.1) -> GeneNet:
    """Birth: write ``gene`` into a fresh ``model`` of the same architecture and widths, in place.

    For every conv, the rows of the gene's out channels are zeroed, then ``W[S_out][:, S_in]`` is set to the gene
    weights, so no weight leads from a non-gene channel into a gene channel and the gene's circuit is closed.
    The conv bias and the BN parameters and statistics of ``S_out`` are copied. The other conv weights (and
    biases) follow ``nongene_init``: "random" keeps the fresh init, "scaled" multiplies it by ``nongene_scale``,
    "zero" zeroes it; non-gene BN entries keep their fresh values. The head stays as it is.

    Returns:
        ``model``, for chaining.

    Raises:
        ValueError: the model does not match the gene (architecture, image channels, widths, tensors), or a bad
            ``nongene_init``.
    """
    _check_nongene_init(nongene_init)
    spec = model.gene_spec()
    if model.arch != gene.arch:
        raise ValueError(f"cannot inherit a {gene.arch} learngene into a {model.arch} network")
    if spec.in_channels != gene.in_channels or list(spec.widths) != list(gene.widths):
        raise ValueError(f"network widths {spec.widths} (image channels {spec.in_channels}) differ from the "
                         f"learngene's {gene.widths} (image channels {gene.in_channels})")
    chans = check_channels(spec, gene.channels)
    mods = dict(model.named_modules())
    want = gene_shapes(spec, chans, {r.conv: mods[r.conv].bias is not None for r in spec.convs})
    for name, shape in want.items():
        t = gene.tensors.get(name)
        if t is None or tuple(t.shape) != shape:
            got = None if t is None else tuple(t.shape)
            raise ValueError(f"learngene tensor {name}: expected shape {shape}, got {got}")
    with torch.no_grad():
        for ref in spec.convs:
            conv: nn.Conv2d = mods[ref.conv]
            w, dev = conv.weight, conv.weight.device
            init_nongene(conv, nongene_init, nongene_scale)
            rows = _index(chans[ref.out_slot], dev)
            cols = _index(_in_index(spec.in_channels, ref.in_slot, chans), dev)
            w[rows] = 0.0
            w[rows[:, None], cols[None, :]] = gene.tensors[f"{ref.conv}.weight"].to(dev, w.dtype)
            if conv.bias is not None:
                conv.bias[rows] = gene.tensors[f"{ref.conv}.bias"].to(dev, conv.bias.dtype)
            if ref.bn is not None:
                bn = mods[ref.bn]
                for key in BN_KEYS:
                    dst = getattr(bn, key)
                    dst[rows] = gene.tensors[f"{ref.bn}.{key}"].to(dev, dst.dtype)
    return model


def _check_nongene_init(mode: str) -> None:
    if mode not in ("random", "scaled", "zero"):
        raise ValueError(f"nongene_init must be 'random', 'scaled' or 'zero' (got {mode!r})")


def init_nongene(conv: nn.Conv2d, mode: NongeneInit, scale: float) -> None:
    """The non-gene initialisation of a conv, before the gene is written into it (births and descendants alike):
    "random" keeps its fresh init, "scaled" multiplies it by ``scale``, "zero" zeroes it."""
    _check_nongene_init(mode)
    with torch.no_grad():
        for p in (conv.weight, conv.bias):
            if p is None:
                continue
            if mode == "scaled":
                p.mul_(scale)
            elif mode == "zero":
                p.zero_()


def gene_masks(model: GeneNet, channels: Channels | Learngene) -> dict[str, torch.Tensor]:
    """Parameter name -> bool mask of its shape, True exactly on the gene weights.

    Covers every parameter of ``model`` (all False for the head and anything outside the gene): conv weights
    on ``W[S_out][:, S_in]``, conv biases and BN weights/biases on ``S_out``. Used to scale learning rates.
    """
    spec = model.gene_spec()
    chans = check_channels(spec, _as_channels(channels))
    params = dict(model.named_parameters())
    masks = {n: torch.zeros_like(p, dtype=torch.bool) for n, p in params.items()}
    for ref in spec.convs:
        m = masks[f"{ref.conv}.weight"]
        rows = _index(chans[ref.out_slot], m.device)
        cols = _index(_in_index(spec.in_channels, ref.in_slot, chans), m.device)
        m[rows[:, None], cols[None, :]] = True
        names = [f"{ref.conv}.bias"] + ([f"{ref.bn}.weight", f"{ref.bn}.bias"] if ref.bn is not None else [])
        for name in names:
            if name in masks:
                masks[name][rows] = True
    return masks


def into_gene_masks(model: GeneNet, channels: Channels | Learngene) -> dict[str, torch.Tensor]:
    """Conv weight name -> bool mask of its shape, True exactly on the weights from non-gene channels into gene
    channels (``W[S_out][:, not S_in]``): the weights a birth zeroes and a gene leaves behind. The first conv reads
    every image channel, so its mask is all False."""
    spec = model.gene_spec()
    chans = check_channels(spec, _as_channels(channels))
    mods = dict(model.named_modules())
    masks: dict[str, torch.Tensor] = {}
    for ref in spec.convs:
        w = mods[ref.conv].weight
        m = torch.zeros_like(w, dtype=torch.bool)
        if ref.in_slot != -1:
            rows = _index(chans[ref.out_slot], m.device)
            outside = torch.ones(w.shape[1], dtype=torch.bool, device=m.device)
            outside[_index(chans[ref.in_slot], m.device)] = False
            m[rows[:, None], outside.nonzero().flatten()[None, :]] = True
        masks[f"{ref.conv}.weight"] = m
    return masks


def close_circuit(model: GeneNet, channels: Channels | Learngene) -> GeneNet:
    """Zero every weight from a non-gene channel into a gene channel of ``model``, in place (what ``inherit`` does
    for a gene's rows), so the channels of ``channels`` form a closed circuit from the image on."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, m in into_gene_masks(model, channels).items():
            params[name].masked_fill_(m, 0.0)
    return model


def gene_feature_mask(model: GeneNet, channels: Channels | Learngene) -> torch.Tensor:
    """A float mask over ``model``'s penultimate features (``feature_dim``,): 1 on the features of the gene's
    channels of the slot the features are read from (the last conv's output slot), 0 elsewhere. Features are
    channel-major (a flattened or pooled feature map), so each channel owns ``feature_dim / width`` of them."""
    spec = model.gene_spec()
    chans = check_channels(spec, _as_channels(channels))
    slot = spec.convs[-1].out_slot
    width = spec.widths[slot]
    if model.feature_dim % width:
        raise ValueError(f"{model.arch}: {model.feature_dim} features are not {width} channels x positions")
    on = torch.zeros(width)
    on[_index(chans[slot], on.device)] = 1.0
    return on.repeat_interleave(model.feature_dim // width)
