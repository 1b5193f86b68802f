"""The data layer: datasets in memory, class partitions, tasks, episodes and batches."""

from __future__ import annotations

from engine.data.dataset import DataError, ImageDataset
from engine.data.sources import load_cifar_fs, load_dataset, load_glyphs, load_miniimagenet
from engine.data.tasks import (
    ClassPartition,
    Task,
    augment,
    batch_indices,
    make_episode,
    make_task,
    normalize,
    partition_classes,
    sample_classes,
)

__all__ = [
    "ClassPartition",
    "DataError",
    "ImageDataset",
    "Task",
    "augment",
    "batch_indices",
    "load_cifar_fs",
    "load_dataset",
    "load_glyphs",
    "load_miniimagenet",
    "make_episode",
    "make_task",
    "normalize",
    "partition_classes",
    "sample_classes",
]
