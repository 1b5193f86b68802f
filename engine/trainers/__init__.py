"""Trainers run the lifetimes of a whole generation; the evolution loop only sees :class:`Trainer` and
:func:`make_trainer`. ``sequential`` trains one individual after another (the CPU default), ``population/`` trains
all of them at once as one grouped network (the GPU trainer), ``ray`` spreads them over Ray actors (an optional
extra). Each is imported only when chosen, so a missing optional package fails with one line naming its extra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from engine.trainers.base import OnDone, OnStart, Trainer

if TYPE_CHECKING:
    from engine.evolution.lifetime import LifeContext

__all__ = ["TRAINERS", "OnDone", "OnStart", "Trainer", "TrainerUnavailable", "make_trainer"]

#: Trainer name -> (module, class, the pip extra that provides what it needs beyond the base install).
TRAINERS: dict[str, tuple[str, str, str | None]] = {
    "sequential": ("engine.trainers.sequential", "SequentialTrainer", None),
    "population": ("engine.trainers.population", "PopulationTrainer", None),
    "ray": ("engine.trainers.ray", "RayTrainer", "ray"),
}


class TrainerUnavailable(ImportError):
    """The chosen trainer needs a package that is not installed (one-line message naming the extra)."""


def trainer_class(name: str) -> type:
    """The class of trainer ``name``, imported now; raises ValueError for an unknown name and
    :class:`TrainerUnavailable` when a package it needs is missing."""
    if name not in TRAINERS:
        raise ValueError(f"run.trainer {name!r} is not available (have: {', '.join(TRAINERS)})")
    module, cls, extra = TRAINERS[name]
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as err:
        hint = f"pip install 'gtl-tui[{extra}]'" if extra else "pip install 'gtl-tui[engine]'"
        raise TrainerUnavailable(f"the {name} trainer needs {err.name or err}: {hint}") from err


def make_trainer(ctx: LifeContext) -> Trainer:
    """The trainer the config asks for (``run.backend = 'ray'``: Ray; ``run.trainer = 'auto'``: population on
    CUDA, else sequential)."""
    run = ctx.cfg.run
    if run.backend == "ray":
        return trainer_class("ray")(ctx)
    if ctx.device.type == "cuda":
        import torch

        # Shapes are fixed within a run, so cuDNN may time its algorithms once per shape. Its heuristics chose a
        # generic weight-gradient kernel for the grouped convolutions: a third of a VGG11 population step (H100).
        torch.backends.cudnn.benchmark = True
    name = run.trainer
    if name == "auto":
        name = "population" if ctx.device.type == "cuda" else "sequential"
    return trainer_class(name)(ctx)
