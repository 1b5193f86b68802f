"""Models by name: a small registry and one factory (timm's ``@register_model`` / ``create_model``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import torch

from engine.models.base import GeneNet, GeneSpec, _generator, init_parameters

#: factory(num_classes, *, width=1.0, in_channels=3, image_size=32) -> GeneNet (parameters not yet initialised)
ModelFactory = Callable[..., GeneNet]

_REGISTRY: dict[str, ModelFactory] = {}


def register_model(name: str) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator registering ``factory(num_classes, *, width=1.0, in_channels=3, image_size=32)`` as ``name``."""

    def deco(factory: ModelFactory) -> ModelFactory:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return deco


def available_models() -> list[str]:
    """Names of the registered models, sorted."""
    return sorted(_REGISTRY)


def _factory(name: str) -> ModelFactory:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(available_models())}") from None


def create_model(name: str, num_classes: int, *, width: float = 1.0, in_channels: int = 3, image_size: int = 32,
                 generator: torch.Generator | None = None, extra_layers: int = 0) -> GeneNet:
    """Build model ``name`` on the CPU with every parameter initialised from ``generator``.

    The modules are built on the meta device and then materialised, so construction never draws from (or
    advances) the global RNG. Without a generator the init is random (a fresh, OS-seeded generator).
    ``extra_layers`` > 0 appends that many unpooled layers (blocks for ResNet12) at the top: the PIM layers of a
    deeper descendant (the factory must accept ``extra_layers``).

    Raises:
        KeyError: unknown ``name`` (the message lists the available models).
        ValueError: bad sizes.
    """
    factory = _factory(name)
    if num_classes < 1 or in_channels < 1 or image_size < 1 or not width > 0:
        raise ValueError(f"create_model({name!r}): num_classes, in_channels, image_size and width must be positive")
    if extra_layers < 0:
        raise ValueError(f"create_model({name!r}): extra_layers must be >= 0 (got {extra_layers})")
    extra = {"extra_layers": extra_layers} if extra_layers else {}
    with torch.device("meta"):
        model = factory(num_classes, width=width, in_channels=in_channels, image_size=image_size, **extra)
    model = model.to_empty(device="cpu")
    init_parameters(model, _generator(generator))
    model.arch = name
    return model


def model_from_state(name: str, num_classes: int, state: dict[str, torch.Tensor], *, width: float = 1.0,
                     in_channels: int = 3, image_size: int = 32) -> GeneNet:
    """A model ``name`` whose parameters and buffers ARE ``state``'s tensors: no random init and no copy.

    For reading trained weights (extracting learngenes) cheaply; writing to the model writes to ``state``.
    """
    factory = _factory(name)
    with torch.device("meta"):
        model = factory(num_classes, width=width, in_channels=in_channels, image_size=image_size)
    model.load_state_dict(state, assign=True)
    model.arch = name
    return model


@cache
def _topology(name: str, in_channels: int) -> GeneSpec:
    with torch.device("meta"):
        model = _factory(name)(1, width=1.0, in_channels=in_channels, image_size=32)
    return model.gene_spec()


def unit_widths(name: str, in_channels: int = 3) -> list[int]:
    """The channel-slot widths of architecture ``name`` at width multiplier 1.0."""
    return list(_topology(name, in_channels).widths)


def arch_spec(name: str, widths: list[int], in_channels: int = 3) -> GeneSpec:
    """The gene spec of architecture ``name`` with the given slot widths, without building real weights.

    The conv topology (paths, slots, kernels) does not depend on the width multiplier, so it comes from a
    meta-device instance; ``widths`` then sets the slot sizes. Raises ValueError when the count of slots differs.
    """
    topo = _topology(name, in_channels)
    if len(widths) != len(topo.widths):
        raise ValueError(f"{name} has {len(topo.widths)} channel slots, got {len(widths)} widths")
    return GeneSpec(in_channels, list(widths), list(topo.convs))
