"""What every registered network shares: the gene topology (:class:`GeneSpec`) and the :class:`GeneNet` base.

A network's convolutions read and write *slots*: channel sets that a learngene subsets. Slot ``-1`` is the
image. Two convs may write the same slot (ResNet12's last conv and its shortcut), so a residual sum stays inside
the gene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class ConvRef:
    """One ``nn.Conv2d`` of a network and the slots it connects.

    Attributes:
        conv: module path of the conv inside the model, e.g. ``"blocks.0.conv"``.
        bn: module path of the BatchNorm2d right after it (its channels are the conv's out channels), or None.
        in_slot: index of the slot the conv reads; -1 is the image.
        out_slot: index of the slot the conv writes.
        kernel: the conv's kernel size (kh, kw); used to count parameters.
    """

    conv: str
    bn: str | None
    in_slot: int
    out_slot: int
    kernel: tuple[int, int] = (3, 3)


@dataclass(frozen=True)
class GeneSpec:
    """The gene topology of a network: image channels, the width of each slot, every conv in forward order."""

    in_channels: int
    widths: list[int]
    convs: list[ConvRef]

    def slot_width(self, slot: int) -> int:
        """Channels of ``slot`` (``-1``: the image)."""
        return self.in_channels if slot == -1 else self.widths[slot]


def scaled(channels: int, width: float) -> int:
    """``channels`` times the width multiplier, rounded, at least 1."""
    return max(1, round(channels * width))


class GeneNet(nn.Module):
    """Base class of every registered model: ``forward(x) = head(features(x))``.

    Subclasses set ``arch``, ``feature_dim`` and ``head`` and implement :meth:`features` and :meth:`_gene_convs`.
    They use plain module structure (no in-place ops), so ``torch.func.functional_call`` works on them.
    """

    arch: str = ""
    feature_dim: int
    head: nn.Linear

    def _gene_convs(self) -> list[tuple[str, str | None, int, int]]:
        """(conv path, bn path, in slot, out slot) of every conv, in forward order."""
        raise NotImplementedError

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features, shape (N, feature_dim)."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def gene_spec(self) -> GeneSpec:
        """The slots and convs of this network, read from its modules (checked for consistency)."""
        mods = dict(self.named_modules())
        refs: list[ConvRef] = []
        widths: dict[int, int] = {}
        in_channels: int | None = None
        for conv_path, bn_path, in_slot, out_slot in self._gene_convs():
            conv = mods[conv_path]
            if not isinstance(conv, nn.Conv2d) or conv.groups != 1:
                raise TypeError(f"{self.arch}: {conv_path} is not an ungrouped nn.Conv2d")
            if in_slot == -1:
                in_channels = conv.in_channels if in_channels is None else in_channels
            for slot, ch in ((in_slot, conv.in_channels), (out_slot, conv.out_channels)):
                known = in_channels if slot == -1 else widths.setdefault(slot, ch)
                if known != ch:
                    raise ValueError(f"{self.arch}: {conv_path} disagrees on the width of slot {slot}")
            if bn_path is not None and mods[bn_path].num_features != conv.out_channels:
                raise ValueError(f"{self.arch}: {bn_path} does not match {conv_path}")
            kh, kw = conv.kernel_size
            refs.append(ConvRef(conv_path, bn_path, in_slot, out_slot, (kh, kw)))
        if in_channels is None or sorted(widths) != list(range(len(widths))):
            raise ValueError(f"{self.arch}: slots must be numbered 0..n-1 and one conv must read the image")
        return GeneSpec(in_channels, [widths[s] for s in range(len(widths))], refs)

    def reset_head(self, num_classes: int, generator: torch.Generator | None = None) -> None:
        """Replace the classifier with a fresh ``num_classes``-way one, initialised from ``generator``."""
        old = self.head
        gen = _generator(generator, old.weight.device)
        # drawn on the generator's device (a CPU generator gives the same head to a network on a GPU)
        head = nn.Linear(self.feature_dim, num_classes, device=gen.device, dtype=old.weight.dtype)
        init_linear(head, gen)
        self.head = head.to(old.weight.device)


def _generator(generator: torch.Generator | None, device: torch.device | str = "cpu") -> torch.Generator:
    """The given generator, or a fresh non-deterministically seeded one (never the global RNG)."""
    if generator is not None:
        return generator
    g = torch.Generator(device=device)
    g.seed()
    return g


def init_linear(layer: nn.Linear, generator: torch.Generator) -> None:
    """PyTorch's default Linear bounds (uniform +-1/sqrt(fan_in)), drawn from ``generator``."""
    bound = 1.0 / math.sqrt(layer.in_features)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        if layer.bias is not None:
            layer.bias.uniform_(-bound, bound, generator=generator)


def init_parameters(model: nn.Module, generator: torch.Generator) -> None:
    """Initialise every parameter and BN buffer of ``model`` from ``generator``.

    Conv: Kaiming normal (fan_out, ReLU), bias 0. BatchNorm: weight 1, bias 0, fresh running statistics.
    Linear: uniform +-1/sqrt(fan_in). Raises TypeError when a module holds parameters of another kind, so no
    parameter is ever left to an unseeded default.
    """
    done: set[int] = set()
    with torch.no_grad():
        for name, mod in model.named_modules():
            own = list(mod.parameters(recurse=False))
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu", generator=generator)
                if mod.bias is not None:
                    mod.bias.zero_()
            elif isinstance(mod, nn.BatchNorm2d):
                if mod.affine:
                    mod.weight.fill_(1.0)
                    mod.bias.zero_()
                if mod.track_running_stats:
                    mod.reset_running_stats()
            elif isinstance(mod, nn.Linear):
                init_linear(mod, generator)
            elif own:
                raise TypeError(f"init_parameters: no rule for {type(mod).__name__} at {name!r}")
            done.update(id(p) for p in own)
    missing = [n for n, p in model.named_parameters() if id(p) not in done]
    if missing:
        raise TypeError(f"init_parameters: parameters left uninitialised: {missing}")
