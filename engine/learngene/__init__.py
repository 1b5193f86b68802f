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
from engine.learngene.transfer import extract, gene_masks, inherit

__all__ = [
    "Learngene",
    "check_channels",
    "check_tensors",
    "extract",
    "gene_fraction",
    "gene_masks",
    "inherit",
    "load_learngene",
    "random_channels",
    "save_learngene",
]
