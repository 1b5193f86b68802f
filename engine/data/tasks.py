"""Tasks drawn from an :class:`ImageDataset`: class partitions, k-way tasks, few-shot episodes, batches.

Every random choice takes an explicit ``torch.Generator``. Sampling functions put their random numbers on the
generator's device, so a CUDA generator keeps the work on the GPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.data.dataset import DataError, ImageDataset


@dataclass
class ClassPartition:
    """A fixed split of each class's images into a training part and a held-out part (for fitness)."""

    train: dict[int, torch.Tensor]
    heldout: dict[int, torch.Tensor]


@dataclass
class Task:
    """A k-way task: ``classes[i]`` is the global class of local label ``i``."""

    classes: list[int]
    train_x: torch.Tensor
    train_y: torch.Tensor
    heldout_x: torch.Tensor
    heldout_y: torch.Tensor

    @property
    def ways(self) -> int:
        return len(self.classes)


def partition_classes(dataset: ImageDataset, heldout_fraction: float, seed: int) -> ClassPartition:
    """Split each class's images once into train and held-out parts (sorted indices into ``dataset.images``).

    The held-out part takes ``round(n * heldout_fraction)`` images of a class of ``n``, at least one, and leaves
    at least one for training. The split depends only on the seed and the dataset.
    """
    if not 0 < heldout_fraction < 1:
        raise ValueError(f"heldout_fraction must be in (0, 1) (got {heldout_fraction})")
    gen = torch.Generator().manual_seed(seed)
    train: dict[int, torch.Tensor] = {}
    heldout: dict[int, torch.Tensor] = {}
    for c in range(dataset.num_classes):
        idx = dataset.class_indices(c)
        n = len(idx)
        if n < 2:
            raise DataError(f"data error: class {dataset.class_names[c]!r} has {n} images (at least 2 needed)")
        n_held = min(max(1, round(n * heldout_fraction)), n - 1)
        perm = idx[torch.randperm(n, generator=gen)]
        heldout[c] = perm[:n_held].sort().values
        train[c] = perm[n_held:].sort().values
    return ClassPartition(train=train, heldout=heldout)


def sample_classes(pool: Sequence[int], ways: int, generator: torch.Generator) -> list[int]:
    """``ways`` distinct classes of ``pool``, in random order, without replacement."""
    if not 1 <= ways <= len(pool):
        raise DataError(f"data error: cannot draw {ways} classes from a pool of {len(pool)}")
    perm = torch.randperm(len(pool), generator=generator, device=generator.device)[:ways].tolist()
    return [int(pool[i]) for i in perm]


def _subset(idx: torch.Tensor, k: int, generator: torch.Generator | None) -> torch.Tensor:
    """``k`` of the indices (all when k is 0 or too large); random with a generator, else the first ``k``."""
    if k <= 0 or k >= len(idx):
        return idx
    if generator is None:
        return idx[:k]
    pick = torch.randperm(len(idx), generator=generator, device=generator.device)[:k].cpu()
    return idx[pick.sort().values]


def _gather(dataset: ImageDataset, parts: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.cat(parts)
    dev = dataset.images.device
    y = torch.cat([torch.full((len(p),), i, dtype=torch.long, device=dev) for i, p in enumerate(parts)])
    return dataset.images[idx], y


def _check_classes(dataset: ImageDataset, classes: Sequence[int]) -> list[int]:
    classes = [int(c) for c in classes]
    if not classes:
        raise DataError("data error: a task needs at least one class")
    if len(set(classes)) != len(classes):
        raise DataError(f"data error: task classes repeat: {classes}")
    bad = [c for c in classes if not 0 <= c < dataset.num_classes]
    if bad:
        raise DataError(f"data error: class {bad[0]} is out of range (the dataset has {dataset.num_classes} classes)")
    return classes


def make_task(
    dataset: ImageDataset,
    partition: ClassPartition,
    classes: Sequence[int],
    *,
    train_per_class: int = 0,
    heldout_per_class: int = 0,
    generator: torch.Generator | None = None,
) -> Task:
    """The task over ``classes``: training images from the partition's train part, held-out from its held-out part.

    ``train_per_class`` / ``heldout_per_class`` of 0 take all images of the part; a larger number takes a random
    subset drawn with ``generator`` (the first images when there is none), all of them when the part is smaller.
    Images stay uint8 on the dataset's device, class by class.
    """
    classes = _check_classes(dataset, classes)
    train_x, train_y = _gather(dataset, [_subset(partition.train[c], train_per_class, generator) for c in classes])
    held_x, held_y = _gather(dataset, [_subset(partition.heldout[c], heldout_per_class, generator) for c in classes])
    return Task(classes=classes, train_x=train_x, train_y=train_y, heldout_x=held_x, heldout_y=held_y)


def make_episode(
    dataset: ImageDataset, classes: Sequence[int], *, shots: int, queries: int, generator: torch.Generator
) -> Task:
    """A few-shot episode: ``shots`` support (``train_x``) and ``queries`` query (``heldout_x``) images per class.

    Support and query images are disjoint and drawn from all images of each class.
    """
    classes = _check_classes(dataset, classes)
    if shots < 1 or queries < 1:
        raise DataError(f"data error: an episode needs shots >= 1 and queries >= 1 (got {shots}, {queries})")
    support, query = [], []
    for c in classes:
        idx = dataset.class_indices(c)
        if len(idx) < shots + queries:
            raise DataError(f"data error: class {dataset.class_names[c]!r} has {len(idx)} images, "
                            f"fewer than shots + queries = {shots + queries}")
        pick = idx[torch.randperm(len(idx), generator=generator, device=generator.device)[:shots + queries].cpu()]
        support.append(pick[:shots])
        query.append(pick[shots:])
    train_x, train_y = _gather(dataset, support)
    held_x, held_y = _gather(dataset, query)
    return Task(classes=classes, train_x=train_x, train_y=train_y, heldout_x=held_x, heldout_y=held_y)


def normalize(
    x: torch.Tensor, mean: Sequence[float], std: Sequence[float], dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """uint8 images (..., C, H, W) to ``(x / 255 - mean) / std`` as ``dtype``, on ``x``'s device."""
    m = torch.tensor(mean, dtype=torch.float32, device=x.device)
    s = torch.tensor(std, dtype=torch.float32, device=x.device)
    scale = (1.0 / (255.0 * s)).view(-1, 1, 1)
    shift = (m / s).view(-1, 1, 1)
    return (x.to(torch.float32) * scale - shift).to(dtype)


def augment(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Random crop with zero padding (``pad = H // 8``) and random horizontal flip, independently per image.

    Vectorised gather, no host synchronisation; random numbers come from ``generator`` (torch's default RNG when
    None) and are drawn on the generator's device. Returns a new (B, C, H, W) tensor of ``x``'s dtype.
    """
    if x.dim() != 4:
        raise ValueError(f"augment expects (B, C, H, W) images (got shape {tuple(x.shape)})")
    b, _, h, w = x.shape
    pad = h // 8
    if b == 0:
        return x.clone()
    dev = generator.device if generator is not None else x.device
    offsets = torch.randint(0, 2 * pad + 1, (2, b), generator=generator, device=dev).to(x.device)
    flip = (torch.rand(b, generator=generator, device=dev) < 0.5).to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)  # (B, H)
    cols = torch.arange(w, device=x.device).expand(b, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols) + offsets[1, :, None]  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    out = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def batch_indices(n: int, steps: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """(steps, batch_size) int64 indices into range(n): random permutations of range(n) laid end to end.

    Every epoch (each consecutive run of ``n`` indices) covers every index once; the whole schedule is decided
    up front with one generator, on its device.
    """
    if n < 1 or steps < 0 or batch_size < 1:
        raise ValueError(f"batch_indices needs n >= 1, steps >= 0, batch_size >= 1 (got {n}, {steps}, {batch_size})")
    total = steps * batch_size
    epochs = max(1, -(-total // n))
    perms = torch.rand(epochs, n, generator=generator, device=generator.device).argsort(dim=1)
    return perms.reshape(-1)[:total].reshape(steps, batch_size)
