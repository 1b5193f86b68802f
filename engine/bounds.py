"""What a run will hold in memory, estimated from its config before anything is built.

A config whose sizes cannot fit the machine (``evolution.population=1000000000``) is refused with one line at
load time, instead of building generation 0 for minutes until memory runs out. The estimate counts what the
run keeps at once: per individual its genome, its trained weights and the genes taken from them (a generation's
networks are all held until the next generation is bred), the generated dataset, and the per-lifetime batch
schedules. It is deliberately rough (within a small factor); it only has to tell "fits" from "cannot fit".
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

#: Python objects of one individual besides its tensors (genome, channel lists, task, records).
INDIVIDUAL_OVERHEAD = 4096
#: Copies of one network's weights a generation holds per individual (trained state, gene, child's gene).
WEIGHT_COPIES = 3


@cache
def model_parameters(arch: str, ways: int, width: float, image_size: int, in_channels: int = 3) -> int:
    """Parameters of one network, counted on the meta device (nothing allocated)."""
    import torch

    from engine.models.registry import _factory

    with torch.device("meta"):
        model = _factory(arch)(ways, width=width, in_channels=in_channels, image_size=image_size)
    return sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())


def machine_memory() -> int:
    """Physical memory of this machine in bytes (0 when unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def estimate(cfg: Any) -> dict[str, int]:
    """Bytes per part of the run, keyed by the config field that drives each part."""
    params = model_parameters(cfg.model.arch, cfg.task.ways, cfg.model.width, cfg.data.image_size)
    per_individual = INDIVIDUAL_OVERHEAD + WEIGHT_COPIES * 4 * params
    parts = {"evolution.population": cfg.evolution.population * per_individual}
    if cfg.data.dataset == "glyphs":
        d = cfg.data
        parts["data.glyph_images_per_class"] = d.glyph_classes * d.glyph_images_per_class * 3 * d.image_size ** 2
    # a lifetime draws its batch indices up front: steps x batch int64 (and each critic the same)
    parts["lifetime.steps"] = cfg.lifetime.steps * cfg.lifetime.batch_size * 8
    if cfg.fitness.kind != "lifetime":
        parts["fitness.critic_steps"] = cfg.fitness.critic_steps * cfg.lifetime.batch_size * 8
    return parts


def check_memory(cfg: Any, available: int | None = None) -> None:
    """Raise ValueError (one line, naming the field) when the run cannot fit in ``available`` bytes (default:
    this machine's physical memory)."""
    limit = machine_memory() if available is None else available
    if limit <= 0:
        return
    parts = estimate(cfg)
    total = sum(parts.values())
    if total <= limit:
        return
    field = max(parts, key=lambda k: parts[k])
    section, key = field.split(".")
    value = getattr(getattr(cfg, section), key)
    raise ValueError(f"{field}={value}: the run would need about {_size(total)} of memory, more than this "
                     f"machine's {_size(limit)}")


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"
