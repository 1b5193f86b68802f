"""The in-memory image dataset every loader returns, and the data layer's error."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

SPLITS = ("train", "val", "test")


class DataError(ValueError):
    """A data problem (missing root, no images, unknown layout ...), with a one-line message."""


@dataclass
class ImageDataset:
    """All images of a dataset in memory, with the meta-train/val/test class split.

    ``images`` are uint8 (N, C, H, W), contiguous, at the configured size; ``labels`` index ``class_names``;
    ``splits`` maps "train" / "val" / "test" to sorted class indices; ``mean`` and ``std`` are per channel, in
    [0, 1] units, computed on the meta-train classes.
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    splits: dict[str, list[int]]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    _by_class: list[torch.Tensor] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def class_indices(self, c: int) -> torch.Tensor:
        """Sorted int64 indices into ``images`` of the images of class ``c`` (computed once for all classes)."""
        if self._by_class is None:
            order = torch.argsort(self.labels, stable=True)
            counts = torch.bincount(self.labels, minlength=self.num_classes).tolist()
            self._by_class = list(torch.split(order, counts))
        if not 0 <= c < self.num_classes:
            raise DataError(f"data error: class {c} is out of range (the dataset has {self.num_classes} classes)")
        return self._by_class[c]


def channel_stats(
    images: torch.Tensor, labels: torch.Tensor, classes: list[int], max_images: int = 4096
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] units of an evenly spaced subsample of the images of ``classes``."""
    idx = torch.isin(labels, torch.tensor(classes, dtype=labels.dtype)).nonzero().squeeze(1)
    if len(idx) == 0:
        raise DataError("data error: the meta-train classes have no images")
    if len(idx) > max_images:
        idx = idx[torch.linspace(0, len(idx) - 1, max_images).round().long()]
    c = images.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    count = 0
    for chunk in torch.split(idx, 512):
        x = images[chunk].to(torch.float64).div_(255).transpose(0, 1).reshape(c, -1)
        total += x.sum(1)
        total_sq += (x * x).sum(1)
        count += x.shape[1]
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(1e-12).sqrt()
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def resize_uint8(images: torch.Tensor, size: int, chunk: int = 1024) -> torch.Tensor:
    """Resize uint8 (N, C, H, W) images to (N, C, size, size), bilinear with antialiasing."""
    if images.shape[-2:] == (size, size):
        return images.contiguous()
    out = torch.empty(images.shape[0], images.shape[1], size, size, dtype=torch.uint8)
    for start in range(0, images.shape[0], chunk):
        x = images[start:start + chunk].float()
        y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[start:start + chunk] = y.round_().clamp_(0, 255).to(torch.uint8)
    return out


def check_classes(labels: torch.Tensor, class_names: list[str], minimum: int = 2) -> None:
    """Every class needs at least ``minimum`` images (one to train on, one held out)."""
    counts = torch.bincount(labels, minlength=len(class_names))
    if len(counts) > len(class_names):
        raise DataError(f"data error: label {len(counts) - 1} has no class name ({len(class_names)} classes)")
    low = (counts < minimum).nonzero().squeeze(1).tolist()
    if low:
        c = low[0]
        raise DataError(
            f"data error: class {class_names[c]!r} has {int(counts[c])} images (at least {minimum} needed)")
