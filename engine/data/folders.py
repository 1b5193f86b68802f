"""miniImageNet-style image folders, decoded once and cached as ``.npy``.

Two layouts are read:

* ``root/{train,val,test}/<class>/*.{jpg,jpeg,png}``: the split is given by the folders;
* Ravi & Larochelle: ``root/images/*.jpg`` with ``root/{train,val,test}.csv`` (header ``filename,label``).

Decoding tens of thousands of JPEGs takes minutes, so the decoded uint8 array is cached under ``$GTL_CACHE_DIR``
(default ``~/.cache/gtl-tui``), keyed by a hash of the root, the file list and the image size.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engine.atomic import replacing
from engine.data.dataset import SPLITS, DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: Bump when the decoding changes, so old caches are not reused.
CACHE_VERSION = 1

#: (split, class name, image paths) for each class, in label order.
ClassFiles = list[tuple[str, str, list[Path]]]


def cache_dir() -> Path:
    env = os.environ.get("GTL_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gtl-tui"


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES


def _folder_layout(root: Path) -> ClassFiles:
    classes: ClassFiles = []
    for split in SPLITS:
        folder = root / split
        if not folder.is_dir():
            continue
        for cls in sorted(d for d in folder.iterdir() if d.is_dir()):
            classes.append((split, cls.name, sorted(p for p in cls.iterdir() if _is_image(p))))
    return classes


def _csv_layout(root: Path) -> ClassFiles:
    classes: ClassFiles = []
    images = root / "images"
    for split in SPLITS:
        table = root / f"{split}.csv"
        if not table.is_file():
            continue
        by_class: dict[str, list[Path]] = {}
        with table.open(newline="") as f:
            reader = csv.reader(f)
            header = [h.strip().lower() for h in next(reader, [])]
            if header[:2] != ["filename", "label"]:
                raise DataError(f"data error: {table} must start with the header 'filename,label' (got {header})")
            for row in reader:
                if len(row) < 2:
                    continue
                path = images / row[0].strip()
                if not path.is_file():
                    raise DataError(f"data error: {table} lists {row[0].strip()!r}, not found in {images}")
                by_class.setdefault(row[1].strip(), []).append(path)
        classes.extend((split, name, sorted(files)) for name, files in sorted(by_class.items()))
    return classes


def list_classes(root: Path) -> ClassFiles:
    """The classes of an image-folder dataset and their files, meta-train classes first, each split by name."""
    if not root.exists():
        raise DataError(f"data error: root {root} does not exist")
    if (root / "images").is_dir() and any((root / f"{s}.csv").is_file() for s in SPLITS):
        classes = _csv_layout(root)
    elif root.is_dir() and any((root / s).is_dir() for s in SPLITS):
        classes = _folder_layout(root)
    else:
        raise DataError(f"data error: unknown image-folder layout in {root} (expected train/ val/ test/ folders of "
                        "class folders, or images/ with train.csv, val.csv, test.csv)")
    if not any(files for _, _, files in classes):
        raise DataError(f"data error: no images (.jpg, .jpeg, .png) found in {root}")
    seen: dict[str, str] = {}
    for split, name, _ in classes:
        if name in seen:
            raise DataError(f"data error: class {name!r} is in both the {seen[name]} and the {split} split of {root}")
        seen[name] = split
    for part in ("train", "test"):
        if part not in seen.values():
            raise DataError(f"data error: no {part} classes found in {root}")
    return classes


def _decode(path: Path, size: int) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img.draft("RGB", (size, size))  # JPEG: decode at a reduced scale that is still >= size
            rgb = img.convert("RGB")
            if rgb.size != (size, size):
                rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8)
    except OSError as err:
        raise DataError(f"data error: cannot read image {path}: {err}") from None


def decode_images(paths: list[Path], size: int, workers: int | None = None) -> np.ndarray:
    """Decode, convert to RGB and resize the images with a thread pool: uint8 (N, 3, size, size)."""
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)

    def work(i: int) -> None:
        out[i] = _decode(paths[i], size)

    with ThreadPoolExecutor(max_workers=workers or min(16, (os.cpu_count() or 1) + 2)) as pool:
        for _ in pool.map(work, range(len(paths)), chunksize=64):
            pass
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _cache_key(root: Path, paths: list[Path], size: int) -> str:
    root = root.resolve()
    files = [str(p.resolve().relative_to(root)) if p.resolve().is_relative_to(root) else str(p) for p in paths]
    blob = json.dumps({"root": str(root), "files": files, "size": size, "version": CACHE_VERSION})
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def load_cached(root: Path, paths: list[Path], size: int) -> np.ndarray:
    """Decoded images of ``paths`` (uint8 (N, 3, size, size)), from the cache when it holds them."""
    path = cache_dir() / "images" / f"{root.resolve().name}-{size}px-{_cache_key(root, paths, size)}.npy"
    if path.is_file():
        try:
            arr = np.load(path, allow_pickle=False)
            if arr.shape == (len(paths), 3, size, size) and arr.dtype == np.uint8:
                return arr
        except (OSError, ValueError):
            pass  # a broken cache file is rebuilt below
    arr = decode_images(paths, size)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as tmp, open(tmp, "wb") as f:
            np.save(f, arr, allow_pickle=False)
    except OSError:  # an unwritable cache only costs the next load its decoding time
        pass
    return arr


def load_image_folder(root: Path, size: int) -> tuple[torch.Tensor, torch.Tensor, list[str], dict[str, list[int]]]:
    """Read an image-folder dataset: ``(images, labels, class_names, splits)``."""
    classes = list_classes(root)
    paths = [p for _, _, files in classes for p in files]
    labels = torch.cat([torch.full((len(files),), i, dtype=torch.long) for i, (_, _, files) in enumerate(classes)])
    images = torch.from_numpy(load_cached(root, paths, size))
    names = [name for _, name, _ in classes]
    splits = {s: [i for i, (split, _, _) in enumerate(classes) if split == s] for s in SPLITS}
    return images, labels, names, splits
