"""The data of a population lifetime, resident on the device, and the batches cut from it.

Each individual draws its batches and augmentations from its own generators exactly as the one-by-one trainer
does (:func:`engine.evolution.lifetime.lifetime_schedule`, then :func:`engine.data.tasks.augment`'s draws, step
by step); all draws happen before the first step, so the step loop only indexes device tensors and never waits
on the host. Batch assembly (gather, normalise, crop and flip, layout) is one vectorised pass over the population.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.data.tasks import Task
from engine.evolution.lifetime import lifetime_schedule


@dataclass
class PopulationData:
    """What a chunk of P individuals trains and is scored on (all on one device).

    Tasks of different sizes are padded with zeros; batch indices never reach the padding and ``heldout_n``
    masks it out of the scores.
    """

    train_x: Tensor  # (P, N, C, H, W) uint8
    train_y: Tensor  # (P, N) int64, local labels
    heldout_x: Tensor  # (P, M, C, H, W) uint8
    heldout_y: Tensor  # (P, M) int64
    heldout_n: Tensor  # (P,) int64: held-out images of each individual
    order: Tensor  # (steps, P, B) int64: batch indices per step
    offsets: Tensor | None  # (steps, 2, P, B) int64: crop offsets (rows, cols) per step, None without augmentation
    flips: Tensor | None  # (steps, P, B) bool: horizontal flips per step
    scale: Tensor  # (C,) float32: 1 / (255 std)
    shift: Tensor  # (C,) float32: mean / std

    @property
    def population(self) -> int:
        return int(self.train_x.shape[0])

    @property
    def steps(self) -> int:
        return int(self.order.shape[0])

    @property
    def batch(self) -> int:
        return int(self.order.shape[2])


def normalization(mean: Sequence[float], std: Sequence[float], device: torch.device) -> tuple[Tensor, Tensor]:
    """(scale, shift) with ``(x / 255 - mean) / std == x * scale - shift``, computed as :func:`normalize` does."""
    m = torch.tensor(mean, dtype=torch.float32, device=device)
    s = torch.tensor(std, dtype=torch.float32, device=device)
    return 1.0 / (255.0 * s), m / s


def _pad_stack(xs: Sequence[Tensor], device: torch.device) -> Tensor:
    n = max(len(x) for x in xs)
    out = torch.zeros((len(xs), n, *xs[0].shape[1:]), dtype=xs[0].dtype)
    for i, x in enumerate(xs):
        out[i, :len(x)] = x
    return out.to(device)


def augment_draws(aug_gen: torch.Generator, steps: int, batch: int, image_size: int) -> tuple[Tensor, Tensor]:
    """The crop offsets (steps, 2, B) and flips (steps, B) :func:`augment` draws from ``aug_gen``, step by step."""
    pad = image_size // 8
    dev = aug_gen.device
    offsets, flips = [], []
    for _ in range(steps):
        offsets.append(torch.randint(0, 2 * pad + 1, (2, batch), generator=aug_gen, device=dev))
        flips.append(torch.rand(batch, generator=aug_gen, device=dev) < 0.5)
    return torch.stack(offsets), torch.stack(flips)


def population_data(tasks: Sequence[Task], generators: Sequence[torch.Generator], *, steps: int, batch_size: int,
                    augment: bool, mean: Sequence[float], std: Sequence[float],
                    device: torch.device) -> PopulationData:
    """Move the tasks to ``device`` and draw every individual's batches and augmentations.

    ``generators[k]`` is individual k's lifetime generator (consumed as the one-by-one trainer consumes it).
    Every task must give the same batch size ``min(batch_size, len(train_x))``.
    """
    if len(tasks) != len(generators) or not tasks:
        raise ValueError("population_data needs one generator per task and at least one task")
    orders, offsets, flips = [], [], []
    for task, gen in zip(tasks, generators, strict=True):
        order, aug_gen = lifetime_schedule(len(task.train_x), steps, batch_size, gen, device)
        orders.append(order)
        if augment:
            off, flip = augment_draws(aug_gen, steps, order.shape[1], int(task.train_x.shape[-2]))
            offsets.append(off)
            flips.append(flip)
    if len({o.shape for o in orders}) != 1:
        raise ValueError("individuals of one population chunk must share the batch size")
    scale, shift = normalization(mean, std, device)
    return PopulationData(
        train_x=_pad_stack([t.train_x for t in tasks], device),
        train_y=_pad_stack([t.train_y for t in tasks], device),
        heldout_x=_pad_stack([t.heldout_x for t in tasks], device),
        heldout_y=_pad_stack([t.heldout_y for t in tasks], device),
        heldout_n=torch.tensor([len(t.heldout_x) for t in tasks], dtype=torch.long, device=device),
        order=torch.stack(orders, 1).to(device),
        offsets=torch.stack(offsets, 2).to(device) if augment else None,
        flips=torch.stack(flips, 1).to(device) if augment else None,
        scale=scale, shift=shift)


def gather_normalized(x_u8: Tensor, idx: Tensor, scale: Tensor, shift: Tensor, dtype: torch.dtype) -> Tensor:
    """(P, B, C, H, W) normalised images ``x_u8[k, idx[k]]`` (the arithmetic of :func:`normalize`)."""
    rows = torch.arange(x_u8.shape[0], device=x_u8.device)[:, None]
    x = x_u8[rows, idx].to(torch.float32)
    return (x * scale.view(-1, 1, 1) - shift.view(-1, 1, 1)).to(dtype)


def crop_flip(x: Tensor, offsets: Tensor, flips: Tensor) -> Tensor:
    """:func:`augment` with given draws, for a population: (P, B, C, H, W) -> (P, B, H, W, C).

    ``offsets`` (2, P, B) and ``flips`` (P, B) as :func:`augment_draws` gives them, one individual per row.
    """
    p, b, _, h, w = x.shape
    pad = h // 8
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = offsets[0, :, :, None] + torch.arange(h, device=x.device)  # (P, B, H)
    cols = torch.arange(w, device=x.device).expand(p, b, w)
    cols = torch.where(flips[:, :, None], cols.flip(-1), cols) + offsets[1, :, :, None]  # (P, B, W)
    pi = torch.arange(p, device=x.device)[:, None, None, None]
    bi = torch.arange(b, device=x.device)[None, :, None, None]
    return padded[pi, bi, :, rows[:, :, :, None], cols[:, :, None, :]]  # (P, B, H, W, C)


def grouped_layout(x_pbhwc: Tensor, channels_last: bool) -> Tensor:
    """(P, B, H, W, C) -> (B, P*C, H, W), individual k on channels [k*C, (k+1)*C)."""
    p, b, h, w, c = x_pbhwc.shape
    if channels_last:
        return x_pbhwc.permute(1, 2, 3, 0, 4).reshape(b, h, w, p * c).permute(0, 3, 1, 2)
    return x_pbhwc.permute(1, 0, 4, 2, 3).reshape(b, p * c, h, w)


def dense_layout(x_pbhwc: Tensor, channels_last: bool) -> Tensor:
    """(P, B, H, W, C) -> (P*B, C, H, W): the same images as one batch of one network (benchmark ceiling)."""
    p, b, h, w, c = x_pbhwc.shape
    if channels_last:
        return x_pbhwc.reshape(p * b, h, w, c).permute(0, 3, 1, 2)
    return x_pbhwc.permute(0, 1, 4, 2, 3).reshape(p * b, c, h, w)


def step_batch(train_x: Tensor, train_y: Tensor, idx: Tensor, offsets: Tensor | None, flips: Tensor | None,
               scale: Tensor, shift: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """One step's images (P, B, H, W, C), normalised and augmented, and labels (P, B); only tensor arguments
    vary between steps, so a compiled step is traced once."""
    x = gather_normalized(train_x, idx, scale, shift, dtype)
    y = train_y.gather(1, idx)
    if offsets is not None and flips is not None:
        return crop_flip(x, offsets, flips), y
    return x.permute(0, 1, 3, 4, 2), y


def step_inputs(data: PopulationData, step: int) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor | None,
                                                             Tensor, Tensor]:
    """The arguments of :func:`step_batch` for ``step`` (views into ``data``; no copies, no host sync)."""
    off = data.offsets[step] if data.offsets is not None else None
    flip = data.flips[step] if data.flips is not None else None
    return data.train_x, data.train_y, data.order[step], off, flip, data.scale, data.shift
