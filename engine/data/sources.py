"""Load a dataset named by the config: the built-in glyphs, CIFAR-FS or miniImageNet."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from engine.config import DataConfig, glyph_split_sizes
from engine.data.dataset import DataError, ImageDataset, channel_stats, check_classes, resize_uint8
from engine.data.folders import load_image_folder
from engine.data.glyphs import render_glyphs
from engine.data.splits import CIFAR100_CLASSES, CIFAR_FS_SPLIT, contiguous_split, split_indices

__all__ = ["DataError", "ImageDataset", "load_dataset", "load_glyphs", "load_cifar_fs", "load_miniimagenet"]

_CIFAR_EXPECTED = "expected a .npz with arrays x and y, a folder holding one, or a torchvision cifar-100-python/ folder"


def load_dataset(cfg: DataConfig) -> ImageDataset:
    """The dataset ``cfg.dataset`` with its meta-train/val/test class split, images at ``cfg.image_size``."""
    if cfg.dataset == "glyphs":
        return load_glyphs(cfg)
    if cfg.root is None:
        raise DataError(f"data error: dataset {cfg.dataset!r} needs a root")
    root = Path(cfg.root).expanduser()
    if not root.exists():
        raise DataError(f"data error: root {root} does not exist")
    if cfg.dataset == "cifar-fs":
        return load_cifar_fs(root, cfg.image_size)
    if cfg.dataset == "miniimagenet":
        return load_miniimagenet(root, cfg.image_size)
    raise DataError(f"data error: unknown dataset {cfg.dataset!r}")


def _finish(name: str, images: torch.Tensor, labels: torch.Tensor, class_names: list[str],
            splits: dict[str, list[int]]) -> ImageDataset:
    check_classes(labels, class_names)
    mean, std = channel_stats(images, labels, splits["train"])
    return ImageDataset(name=name, images=images.contiguous(), labels=labels, class_names=class_names,
                        splits=splits, mean=mean, std=std)


def load_glyphs(cfg: DataConfig) -> ImageDataset:
    """The built-in glyph dataset (see :mod:`engine.data.glyphs`), split 64/16/20 by ``glyph_split_sizes``."""
    n = cfg.glyph_classes
    images, labels = render_glyphs(n, cfg.glyph_images_per_class, cfg.image_size, cfg.glyph_seed)
    names = [f"glyph_{i:03d}" for i in range(n)]
    return _finish("glyphs", images, labels, names, contiguous_split(*glyph_split_sizes(n)))


# ---------------------------------------------------------------------------------------------------------------
# CIFAR-FS


def _find_cifar(root: Path) -> tuple[str, Path]:
    """``("npz", file)`` or ``("torchvision", folder above cifar-100-python/)``."""
    if root.is_file():
        if root.suffix == ".npz":
            return "npz", root
        raise DataError(f"data error: {root} is not a .npz file ({_CIFAR_EXPECTED})")
    if (root / "cifar-100-python").is_dir():
        return "torchvision", root
    if root.name == "cifar-100-python" and (root / "meta").is_file():
        return "torchvision", root.parent
    found = sorted(root.glob("*.npz"))
    if len(found) > 1:
        named = [p for p in found if "cifar" in p.name.lower() and "100" in p.name]
        if len(named) != 1:
            raise DataError(f"data error: several .npz files in {root}; name the one to use as root")
        found = named
    if found:
        return "npz", found[0]
    raise DataError(f"data error: no CIFAR-100 found in {root} ({_CIFAR_EXPECTED})")


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    try:
        with np.load(path, allow_pickle=False) as d:
            missing = [k for k in ("x", "y") if k not in d.files]
            if missing:
                raise DataError(f"data error: {path} has no array {missing[0]!r} ({_CIFAR_EXPECTED})")
            x, y = d["x"], d["y"]
            names = [str(s) for s in d["class_names"]] if "class_names" in d.files else list(CIFAR100_CLASSES)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"data error: cannot read {path}: {err}") from None
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise DataError(f"data error: {path}: x must be uint8 (N, H, W, 3) (got {x.dtype} {x.shape})")
    if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"data error: {path}: y must be {len(x)} integer labels (got {y.dtype} {y.shape})")
    return x, y, names


def _read_torchvision(root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    folder = root / "cifar-100-python"
    missing = [f for f in ("train", "test", "meta") if not (folder / f).is_file()]
    if missing:
        raise DataError(f"data error: cannot read CIFAR-100 in {folder}: file {missing[0]!r} is missing")
    from torchvision.datasets import CIFAR100  # local: a slow import, only needed for this layout

    try:
        parts = [CIFAR100(str(root), train=train, download=False) for train in (True, False)]
    except (RuntimeError, OSError, ValueError, KeyError) as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"data error: cannot read CIFAR-100 in {folder}: {msg}") from None
    x = np.concatenate([p.data for p in parts])
    y = np.concatenate([np.asarray(p.targets) for p in parts])
    return x, y, list(parts[0].classes)


def load_cifar_fs(root: Path, image_size: int = 32) -> ImageDataset:
    """CIFAR-100 (all 600 images of each class) with the standard CIFAR-FS 64/16/20 class split."""
    kind, path = _find_cifar(root)
    x, y, names = _read_npz(path) if kind == "npz" else _read_torchvision(path)
    unknown = sorted(set(CIFAR100_CLASSES) - set(names))
    if unknown:
        raise DataError(f"data error: {path}: class names lack CIFAR-100 class {unknown[0]!r}")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(names)):
        raise DataError(f"data error: {path}: labels must lie in 0..{len(names) - 1}")
    images = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    images = resize_uint8(images, image_size)
    labels = torch.from_numpy(y.astype(np.int64))
    return _finish("cifar-fs", images, labels, names, split_indices(names, CIFAR_FS_SPLIT))


# ---------------------------------------------------------------------------------------------------------------
# miniImageNet


def load_miniimagenet(root: Path, image_size: int = 84) -> ImageDataset:
    """miniImageNet from an image folder (see :mod:`engine.data.folders`), the split given by the folders."""
    images, labels, names, splits = load_image_folder(root, image_size)
    return _finish("miniimagenet", images, labels, names, splits)
