"""Learngenes: inheritable channel circuits of a network, moved between networks and stored on disk."""

from __future__ import annotations

from engine.learngene.gene import (
    Learngene,
    check_channels,
    check_tensors,
    gene_fraction,
    random_channels,
)
from engine.learngene.io import load_learngene, save_learngene
from engine.learngene.transfer import (
    close_circuit,
    extract,
    gene_feature_mask,
    gene_masks,
    inherit,
    into_gene_masks,
)

__all__ = [
    "Learngene",
    "check_channels",
    "check_tensors",
    "close_circuit",
    "extract",
    "gene_feature_mask",
    "gene_fraction",
    "gene_masks",
    "inherit",
    "into_gene_masks",
    "load_learngene",
    "random_channels",
    "save_learngene",
]
