"""The learngene: channel sets per slot of an ancestry network plus the weights between them.

For each conv (out slot ``o``, in slot ``i``) the gene holds ``W[S_o][:, S_i]`` (``S_-1`` is every image
channel), the conv bias on ``S_o`` if any, and the BatchNorm parameters and running statistics on ``S_o``.
The classifier head is never part of a gene.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from engine.models import GeneSpec, arch_spec

#: BatchNorm entries a gene holds for each conv's out channels.
BN_KEYS = ("weight", "bias", "running_mean", "running_var")

Channels = Sequence[Sequence[int]]


@dataclass
class Learngene:
    """An inheritable circuit: sorted channel indices per slot and the weights between them (CPU, fp32).

    Tensor keys: ``"<conv>.weight"`` = ``W[S_out][:, S_in]``, ``"<conv>.bias"`` = ``b[S_out]`` if the conv has a
    bias, ``"<bn>.weight|bias|running_mean|running_var"`` = the BN entries of ``S_out``.
    """

    arch: str
    in_channels: int
    widths: list[int]
    channels: list[list[int]]
    tensors: dict[str, torch.Tensor] = field(repr=False)

    def spec(self) -> GeneSpec:
        """The gene topology of its architecture at these widths."""
        return arch_spec(self.arch, self.widths, self.in_channels)

    @property
    def fraction(self) -> float:
        """Share of the ancestry network's conv weights held by the gene."""
        return gene_fraction(self.spec(), self.channels)

    @property
    def num_parameters(self) -> int:
        """Trainable gene parameters (conv weights and biases, BN weights and biases; not running stats)."""
        return sum(t.numel() for k, t in self.tensors.items() if not k.endswith(("running_mean", "running_var")))


def check_channels(spec: GeneSpec, channels: Channels) -> list[list[int]]:
    """Validate channel sets against ``spec`` and return them as sorted lists of ints.

    Raises:
        ValueError: wrong slot count, an empty set, duplicates or an index outside the slot.
    """
    if len(channels) != len(spec.widths):
        raise ValueError(f"expected {len(spec.widths)} channel sets (one per slot), got {len(channels)}")
    out = []
    for slot, (chans, width) in enumerate(zip(channels, spec.widths, strict=True)):
        c = sorted(int(x) for x in chans)
        if not c:
            raise ValueError(f"slot {slot}: the channel set is empty")
        if len(set(c)) != len(c):
            raise ValueError(f"slot {slot}: duplicate channel indices")
        if c[0] < 0 or c[-1] >= width:
            raise ValueError(f"slot {slot}: channel indices must lie in [0, {width}), got {c[0]}..{c[-1]}")
        out.append(c)
    return out


def random_channels(widths: Sequence[int], ratio: float, generator: torch.Generator) -> list[list[int]]:
    """Per slot, ``round(ratio * width)`` (at least 1) distinct channels chosen at random, sorted."""
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1] (got {ratio})")
    out = []
    for w in widths:
        k = min(w, max(1, round(ratio * w)))
        out.append(sorted(torch.randperm(w, generator=generator)[:k].tolist()))
    return out


def gene_fraction(spec: GeneSpec, channels: Channels) -> float:
    """sum over convs |S_out| |S_in| kh kw / sum over convs out in kh kw (slot -1: all image channels)."""
    sizes = [len(c) for c in channels]
    if len(sizes) != len(spec.widths):
        raise ValueError(f"expected {len(spec.widths)} channel sets (one per slot), got {len(sizes)}")
    gene = total = 0
    for ref in spec.convs:
        k = ref.kernel[0] * ref.kernel[1]
        n_in = spec.in_channels if ref.in_slot == -1 else sizes[ref.in_slot]
        gene += sizes[ref.out_slot] * n_in * k
        total += spec.widths[ref.out_slot] * spec.slot_width(ref.in_slot) * k
    return gene / total


def gene_shapes(spec: GeneSpec, channels: Channels, conv_bias: dict[str, bool]) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor a gene over ``channels`` holds. ``conv_bias``: conv path -> has a bias."""
    sizes = [len(c) for c in channels]
    shapes: dict[str, tuple[int, ...]] = {}
    for ref in spec.convs:
        n_out = sizes[ref.out_slot]
        n_in = spec.in_channels if ref.in_slot == -1 else sizes[ref.in_slot]
        shapes[f"{ref.conv}.weight"] = (n_out, n_in, *ref.kernel)
        if conv_bias.get(ref.conv, False):
            shapes[f"{ref.conv}.bias"] = (n_out,)
        if ref.bn is not None:
            for key in BN_KEYS:
                shapes[f"{ref.bn}.{key}"] = (n_out,)
    return shapes


def check_tensors(gene: Learngene) -> None:
    """Raise ValueError unless the gene's tensors match its architecture and channel sets exactly."""
    spec = gene.spec()
    channels = check_channels(spec, gene.channels)
    if channels != [list(c) for c in gene.channels]:
        raise ValueError("learngene channel sets must be sorted lists of ints")
    has_bias = {ref.conv: f"{ref.conv}.bias" in gene.tensors for ref in spec.convs}
    want = gene_shapes(spec, channels, has_bias)
    missing = sorted(set(want) - set(gene.tensors))
    extra = sorted(set(gene.tensors) - set(want))
    if missing or extra:
        raise ValueError(f"learngene tensors do not match {gene.arch}: missing {missing[:3]}, unexpected {extra[:3]}")
    for name, shape in want.items():
        if tuple(gene.tensors[name].shape) != shape:
            raise ValueError(f"learngene tensor {name} has shape {tuple(gene.tensors[name].shape)}, expected {shape}")
