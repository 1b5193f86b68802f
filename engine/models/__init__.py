"""Networks that carry learngenes: a registry of architectures sharing the :class:`GeneNet` interface."""

from __future__ import annotations

from engine.models.base import ConvRef, GeneNet, GeneSpec, init_parameters
from engine.models.registry import arch_spec, available_models, create_model, model_from_state, register_model

# Importing the architecture modules registers them.
from engine.models import conv4, resnet12, vgg  # noqa: E402, F401  isort: skip

__all__ = [
    "ConvRef",
    "GeneNet",
    "GeneSpec",
    "arch_spec",
    "available_models",
    "create_model",
    "init_parameters",
    "model_from_state",
    "register_model",
]
