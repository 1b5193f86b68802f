"""Tests of the data layer: glyphs, CIFAR-FS, image folders, partitions, tasks, episodes, augmentation, batches."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.config import DataConfig, glyph_split_sizes
from engine.data import (
    DataError,
    ImageDataset,
    augment,
    batch_indices,
    load_dataset,
    make_episode,
    make_task,
    normalize,
    partition_classes,
    sample_classes,
)
from engine.data.glyphs import render_glyphs
from engine.data.splits import CIFAR100_CLASSES, CIFAR_FS_TEST, CIFAR_FS_TRAIN, CIFAR_FS_VAL

CIFAR_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar100"
CIFAR_NPZ = CIFAR_DIR / "cifar100_u8.npz"


@pytest.fixture(scope="module")
def glyphs() -> ImageDataset:
    return load_dataset(DataConfig(glyph_classes=20, glyph_images_per_class=30, glyph_seed=7))


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------------------------
# Glyphs


def test_glyphs_shape_dtype_splits(glyphs: ImageDataset) -> None:
    assert glyphs.images.shape == (600, 3, 32, 32)
    assert glyphs.images.dtype == torch.uint8 and glyphs.images.is_contiguous()
    assert glyphs.labels.dtype == torch.int64
    assert torch.bincount(glyphs.labels).tolist() == [30] * 20
    assert glyphs.class_names[0] == "glyph_000" and len(glyphs.class_names) == 20
    sizes = tuple(len(glyphs.splits[s]) for s in ("train", "val", "test"))
    assert sizes == glyph_split_sizes(20)
    all_classes = sum((glyphs.splits[s] for s in ("train", "val", "test")), [])
    assert sorted(all_classes) == list(range(20))
    assert all(glyphs.splits[s] == sorted(glyphs.splits[s]) for s in glyphs.splits)
    assert len(glyphs.mean) == len(glyphs.std) == 3
    assert all(0 < m < 1 for m in glyphs.mean) and all(0 < s < 0.5 for s in glyphs.std)


def test_glyphs_deterministic() -> None:
    a, la = render_glyphs(6, 8, 24, seed=3)
    b, lb = render_glyphs(6, 8, 24, seed=3)
    c, _ = render_glyphs(6, 8, 24, seed=4)
    assert a.numpy().tobytes() == b.numpy().tobytes() and torch.equal(la, lb)
    assert not torch.equal(a, c)


def test_glyph_images_vary(glyphs: ImageDataset) -> None:
    x = glyphs.images.float()
    flat = x.reshape(len(x), -1)  # no two images are identical
    assert torch.unique(flat, dim=0).shape[0] == len(x)
    assert x.std() > 20


def test_glyphs_generation_time() -> None:
    """CPU time on one thread (wall time swings with other processes): about 2.5 s on one core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.process_time()
        images, _ = render_glyphs(100, 120, 32, seed=1234)
        elapsed = time.process_time() - start
    finally:
        torch.set_num_threads(threads)
    assert images.shape == (12000, 3, 32, 32)
    assert elapsed < 10, f"12,000 glyphs took {elapsed:.1f} s of CPU time"


def test_glyphs_other_image_size() -> None:
    ds = load_dataset(DataConfig(image_size=20, glyph_classes=10, glyph_images_per_class=10))
    assert ds.images.shape == (100, 3, 20, 20)


# ---------------------------------------------------------------------------------------------------------------
# Partitions, tasks, episodes


def test_partition_disjoint_complete_and_fixed(glyphs: ImageDataset) -> None:
    p1 = partition_classes(glyphs, 0.2, seed=5)
    p2 = partition_classes(glyphs, 0.2, seed=5)
    p3 = partition_classes(glyphs, 0.2, seed=6)
    for c in range(glyphs.num_classes):
        tr, ho = set(p1.train[c].tolist()), set(p1.heldout[c].tolist())
        assert not tr & ho
        assert tr | ho == set(glyphs.class_indices(c).tolist())
        assert len(ho) == 6
        assert torch.equal(p1.train[c], p2.train[c]) and torch.equal(p1.heldout[c], p2.heldout[c])
    assert any(not torch.equal(p1.heldout[c], p3.heldout[c]) for c in range(glyphs.num_classes))


def test_sample_classes_from_pool_only(glyphs: ImageDataset) -> None:
    g = gen(1)
    pool = glyphs.splits["train"]
    seen: set[int] = set()
    for _ in range(50):
        classes = sample_classes(pool, 5, g)
        assert len(set(classes)) == 5 and set(classes) <= set(pool)
        seen |= set(classes)
    assert not seen & set(glyphs.splits["test"])
    assert sample_classes(pool, 5, gen(3)) == sample_classes(pool, 5, gen(3))
    with pytest.raises(DataError):
        sample_classes([1, 2], 3, g)


def test_make_task_uses_partition(glyphs: ImageDataset) -> None:
    part = partition_classes(glyphs, 0.2, seed=0)
    classes = [3, 0, 7]
    task = make_task(glyphs, part, classes)
    assert task.classes == classes and task.ways == 3
    assert task.train_x.shape == (3 * 24, 3, 32, 32) and task.train_x.dtype == torch.uint8
    assert task.heldout_x.shape == (3 * 6, 3, 32, 32)
    assert task.train_y.tolist() == [0] * 24 + [1] * 24 + [2] * 24
    for local, c in enumerate(classes):
        expect = glyphs.images[part.heldout[c]]
        assert torch.equal(task.heldout_x[task.heldout_y == local], expect)
    sub = make_task(glyphs, part, classes, train_per_class=5, heldout_per_class=2, generator=gen(2))
    assert sub.train_x.shape[0] == 15 and sub.heldout_x.shape[0] == 6
    again = make_task(glyphs, part, classes, train_per_class=5, heldout_per_class=2, generator=gen(2))
    assert torch.equal(sub.train_x, again.train_x)
    # subsets come from the right part: every held-out image is one of the partition's held-out images
    held = glyphs.images[torch.cat([part.heldout[c] for c in classes])].reshape(18, -1)
    for img in sub.heldout_x.reshape(6, -1):
        assert (held == img).all(1).any()
    with pytest.raises(DataError):
        make_task(glyphs, part, [1, 1])
    with pytest.raises(DataError):
        make_task(glyphs, part, [99])


def test_episode_support_query_disjoint(glyphs: ImageDataset) -> None:
    test_classes = glyphs.splits["test"][:3]
    ep = make_episode(glyphs, test_classes, shots=5, queries=7, generator=gen(4))
    assert ep.train_x.shape[0] == 15 and ep.heldout_x.shape[0] == 21
    assert ep.train_y.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    support = {img.numpy().tobytes() for img in ep.train_x}
    query = {img.numpy().tobytes() for img in ep.heldout_x}
    assert len(support) == 15 and len(query) == 21 and not support & query
    ep2 = make_episode(glyphs, test_classes, shots=5, queries=7, generator=gen(4))
    assert torch.equal(ep.heldout_x, ep2.heldout_x)
    with pytest.raises(DataError):
        make_episode(glyphs, test_classes, shots=20, queries=20, generator=gen(4))


# ---------------------------------------------------------------------------------------------------------------
# Normalisation, augmentation, batches


def test_normalize(glyphs: ImageDataset) -> None:
    x = normalize(glyphs.images, glyphs.mean, glyphs.std)
    assert x.dtype == torch.float32 and x.shape == glyphs.images.shape
    train = torch.isin(glyphs.labels, torch.tensor(glyphs.splits["train"]))
    per_channel = x[train].transpose(0, 1).reshape(3, -1)
    assert per_channel.mean(1).abs().max() < 0.05
    assert (per_channel.std(1) - 1).abs().max() < 0.05
    assert normalize(glyphs.images[:2], glyphs.mean, glyphs.std, dtype=torch.bfloat16).dtype == torch.bfloat16


def test_augment_deterministic_and_shape() -> None:
    x = torch.randn(16, 3, 32, 32)
    a = augment(x, gen(9))
    b = augment(x, gen(9))
    c = augment(x, gen(10))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, x)


def test_augment_is_crop_and_flip() -> None:
    """Each output is a (possibly flipped) window of the zero-padded input."""
    x = torch.arange(2 * 1 * 16 * 16, dtype=torch.float32).reshape(2, 1, 16, 16) + 1
    pad = 16 // 8
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    out = augment(x, gen(0))
    for i in range(2):
        windows = [padded[i, :, r:r + 16, c:c + 16] for r in range(2 * pad + 1) for c in range(2 * pad + 1)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(-1)) for w in windows)


def test_batch_indices_cover_each_epoch() -> None:
    n, steps, bs = 10, 7, 4
    idx = batch_indices(n, steps, bs, gen(0))
    assert idx.shape == (steps, bs) and idx.dtype == torch.int64
    flat = idx.reshape(-1)
    for e in range(len(flat) // n):
        assert sorted(flat[e * n:(e + 1) * n].tolist()) == list(range(n))
    assert torch.equal(idx, batch_indices(n, steps, bs, gen(0)))
    assert not torch.equal(idx, batch_indices(n, steps, bs, gen(1)))
    big = batch_indices(3, 2, 5, gen(0))  # batches larger than the data
    assert big.shape == (2, 5) and sorted(big.reshape(-1)[:3].tolist()) == [0, 1, 2]


# ---------------------------------------------------------------------------------------------------------------
# Image folders (miniImageNet layouts)


def _write_images(folder: Path, n: int, colour: tuple[int, int, int], suffix: str, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        arr = np.zeros((20, 30, 3), dtype=np.uint8)
        arr[:] = colour
        arr[: i + 1, :5] = 255
        name = f"{folder.name}_{i}{suffix}"
        Image.fromarray(arr).save(folder / name)
        names.append(name)


CLASSES = {"train": ["n01", "n02"], "val": ["n03"], "test": ["n04", "n05"]}


def test_image_folder_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GTL_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "mini"
    for split, classes in CLASSES.items():
        for k, cls in enumerate(classes):
            _write_images(root / split / cls, 4, (40 * k, 100, 200), ".png" if k else ".jpg", [])
    (root / "train" / "n01" / "notes.txt").write_text("not an image")
    cfg = DataConfig(dataset="miniimagenet", root=str(root), image_size=12)
    ds = load_dataset(cfg)
    assert ds.name == "miniimagenet"
    assert ds.class_names == ["n01", "n02", "n03", "n04", "n05"]
    assert ds.splits == {"train": [0, 1], "val": [2], "test": [3, 4]}
    assert ds.images.shape == (20, 3, 12, 12) and ds.images.dtype == torch.uint8
    assert ds.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4
    assert abs(float(ds.images[4, 2].float().mean()) - 200) < 3  # class n02 (png): blue 200
    cached = list((tmp_path / "cache").rglob("*.npy"))
    assert len(cached) == 1
    again = load_dataset(cfg)  # from the cache
    assert torch.equal(again.images, ds.images)
    assert list((tmp_path / "cache").rglob("*.npy")) == cached


def test_csv_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GTL_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "ravi"
    for split, classes in CLASSES.items():
        rows = ["filename,label"]
        for k, cls in enumerate(classes):
            names: list[str] = []
            _write_images(root / "images", 3, (30 * k, 60, 90), ".jpg", names)
            for name in names:
                new = f"{cls}{name}"
                (root / "images" / name).rename(root / "images" / new)
                rows.append(f"{new},{cls}")
        (root / f"{split}.csv").write_text("\n".join(rows) + "\n")
    ds = load_dataset(DataConfig(dataset="miniimagenet", root=str(root), image_size=16))
    assert ds.class_names == ["n01", "n02", "n03", "n04", "n05"]
    assert ds.splits == {"train": [0, 1], "val": [2], "test": [3, 4]}
    assert ds.images.shape == (15, 3, 16, 16)


def test_image_folder_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GTL_CACHE_DIR", str(tmp_path / "cache"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="unknown image-folder layout"):
        load_dataset(DataConfig(dataset="miniimagenet", root=str(empty)))
    noimg = tmp_path / "noimg"
    (noimg / "train" / "a").mkdir(parents=True)
    (noimg / "test" / "b").mkdir(parents=True)
    with pytest.raises(DataError, match="no images"):
        load_dataset(DataConfig(dataset="miniimagenet", root=str(noimg)))
    few = tmp_path / "few"
    _write_images(few / "train" / "a", 3, (0, 0, 0), ".png", [])
    _write_images(few / "test" / "b", 1, (0, 0, 0), ".png", [])
    with pytest.raises(DataError, match="'b' has 1 images"):
        load_dataset(DataConfig(dataset="miniimagenet", root=str(few)))
    bad_csv = tmp_path / "badcsv"
    (bad_csv / "images").mkdir(parents=True)
    (bad_csv / "train.csv").write_text("filename,label\nmissing.jpg,n01\n")
    with pytest.raises(DataError, match="not found"):
        load_dataset(DataConfig(dataset="miniimagenet", root=str(bad_csv)))


# ---------------------------------------------------------------------------------------------------------------
# CIFAR-FS


def test_cifar_split_lists() -> None:
    assert len(CIFAR100_CLASSES) == 100 and list(CIFAR100_CLASSES) == sorted(CIFAR100_CLASSES)
    assert (len(CIFAR_FS_TRAIN), len(CIFAR_FS_VAL), len(CIFAR_FS_TEST)) == (64, 16, 20)
    assert sorted(CIFAR_FS_TRAIN + CIFAR_FS_VAL + CIFAR_FS_TEST) == list(CIFAR100_CLASSES)


@pytest.mark.data
def test_cifar_split_matches_reference() -> None:
    ref = CIFAR_DIR / "cifar_fs_split.json"
    if not ref.is_file():
        pytest.skip(f"{ref} is absent")
    split = json.loads(ref.read_text())
    assert sorted(split["train"]) == sorted(CIFAR_FS_TRAIN)
    assert sorted(split["val"]) == sorted(CIFAR_FS_VAL)
    assert sorted(split["test"]) == sorted(CIFAR_FS_TEST)


def _small_cifar_npz(path: Path, with_names: bool, per_class: int = 3) -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(100), per_class).astype(np.int16)
    x = rng.integers(0, 256, (len(y), 32, 32, 3), dtype=np.uint8)
    arrays = {"x": x, "y": y}
    if with_names:
        arrays["class_names"] = np.array(CIFAR100_CLASSES)
    np.savez(path, **arrays)


def test_cifar_npz_small(tmp_path: Path) -> None:
    _small_cifar_npz(tmp_path / "c.npz", with_names=False)
    ds = load_dataset(DataConfig(dataset="cifar-fs", root=str(tmp_path / "c.npz")))
    assert ds.images.shape == (300, 3, 32, 32) and ds.class_names == list(CIFAR100_CLASSES)
    assert [ds.class_names[i] for i in ds.splits["test"]] == sorted(CIFAR_FS_TEST)
    folder = tmp_path / "folder"
    folder.mkdir()
    _small_cifar_npz(folder / "cifar100.npz", with_names=True)
    ds2 = load_dataset(DataConfig(dataset="cifar-fs", root=str(folder), image_size=16))
    assert ds2.images.shape == (300, 3, 16, 16)
    assert ds2.splits == ds.splits


def test_cifar_bad_roots(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no CIFAR-100 found"):
        load_dataset(DataConfig(dataset="cifar-fs", root=str(empty)))
    np.savez(tmp_path / "wrong.npz", a=np.zeros(3))
    with pytest.raises(DataError, match="no array 'x'"):
        load_dataset(DataConfig(dataset="cifar-fs", root=str(tmp_path / "wrong.npz")))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read"):
        load_dataset(DataConfig(dataset="cifar-fs", root=str(tmp_path / "junk.npz")))
    tv = tmp_path / "tv" / "cifar-100-python"
    tv.mkdir(parents=True)
    (tv / "train").write_bytes(b"junk")
    with pytest.raises(DataError, match="'test' is missing"):
        load_dataset(DataConfig(dataset="cifar-fs", root=str(tmp_path / "tv")))


@pytest.mark.slow
def test_cifar_torchvision_corrupt(tmp_path: Path) -> None:
    """A cifar-100-python/ folder whose files fail torchvision's checksum (importing torchvision is slow)."""
    tv = tmp_path / "cifar-100-python"
    tv.mkdir()
    for name in ("train", "test", "meta"):
        (tv / name).write_bytes(b"junk")
    with pytest.raises(DataError, match="cannot read CIFAR-100"):
        load_dataset(DataConfig(dataset="cifar-fs", root=str(tv)))  # the folder itself works as root too


def test_missing_root_is_data_error(tmp_path: Path) -> None:
    cfg = DataConfig.model_construct(dataset="cifar-fs", root=str(tmp_path / "nope"), image_size=32)
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(cfg)
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(DataConfig.model_construct(dataset="miniimagenet", root=str(tmp_path / "nope"), image_size=84))


@pytest.mark.data
def test_cifar_fs_full() -> None:
    if not CIFAR_NPZ.is_file():
        pytest.skip(f"{CIFAR_NPZ} is absent")
    start = time.perf_counter()
    ds = load_dataset(DataConfig(dataset="cifar-fs", root=str(CIFAR_NPZ)))
    assert time.perf_counter() - start < 30
    assert ds.images.shape == (60000, 3, 32, 32) and ds.images.is_contiguous()
    assert torch.bincount(ds.labels).tolist() == [600] * 100
    assert [len(ds.splits[s]) for s in ("train", "val", "test")] == [64, 16, 20]
    assert {ds.class_names[i] for i in ds.splits["train"]} == set(CIFAR_FS_TRAIN)
    assert 0.4 < ds.mean[0] < 0.6 and 0.2 < ds.std[0] < 0.35
