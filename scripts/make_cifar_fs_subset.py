"""A compact CIFAR-FS that travels with the working tree to a GPU machine:
``python scripts/make_cifar_fs_subset.py [SRC] [OUT]``.

SRC is the full CIFAR-100 ``.npz`` (arrays ``x`` uint8 (N, 32, 32, 3), ``y``, ``class_names``; default
``../shared/data/cifar100/cifar100_u8.npz``); OUT defaults to ``data/cifar-fs-subset.npz`` (ignored by git: never
commit it). The subset keeps ``--train`` images of each meta-train class, ``--test`` of each meta-test class and
``--val`` of each meta-validation class (which nothing of the campaign uses; every class needs a few for the
loader's checks), drawn at random with a fixed seed from all 600 images of the class (CIFAR-FS ignores
CIFAR-100's own train/test split). It is written with ``np.savez_compressed`` in the layout ``data.root`` reads
(``x``, ``y``, ``class_names``). CIFAR images barely compress (deflate keeps ~93%), so the defaults (200 / 200 /
10: 16,960 images) are what fits the 50 MiB limit; the script refuses to write more than ``--max-mib``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SRC = REPO.parent / "shared" / "data" / "cifar100" / "cifar100_u8.npz"
OUT = REPO / "data" / "cifar-fs-subset.npz"


def make_subset(src: Path, out: Path, *, train: int, test: int, val: int, seed: int = 0,
                max_mib: float = 50.0) -> dict[str, int]:
    """Write the subset; returns its counts and size. Raises ValueError on a bad source or an oversized result."""
    from engine.data.splits import CIFAR_FS_SPLIT

    with np.load(src, allow_pickle=False) as d:
        missing = [k for k in ("x", "y", "class_names") if k not in d.files]
        if missing:
            raise ValueError(f"{src}: no array {missing[0]!r} (expected x, y, class_names)")
        x, y, names = d["x"], d["y"].astype(np.int64), [str(n) for n in d["class_names"]]
    where = {n: i for i, n in enumerate(names)}
    rng = np.random.default_rng(seed)
    keep: list[np.ndarray] = []
    for part, per in (("train", train), ("val", val), ("test", test)):
        for name in CIFAR_FS_SPLIT[part]:
            if name not in where:
                raise ValueError(f"{src}: class {name!r} of the CIFAR-FS {part} split is missing")
            idx = np.flatnonzero(y == where[name])
            if len(idx) < 2:
                raise ValueError(f"{src}: class {name!r} has {len(idx)} images (at least 2 needed)")
            keep.append(np.sort(rng.choice(idx, size=min(max(per, 2), len(idx)), replace=False)))
    rows = np.sort(np.concatenate(keep))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez_compressed(tmp, x=x[rows], y=y[rows].astype(np.int16), class_names=np.array(names))
    size = tmp.stat().st_size
    if size > max_mib * 2**20:
        tmp.unlink()
        raise ValueError(f"the subset would take {size / 2**20:.1f} MiB (> {max_mib} MiB): lower --train/--test")
    tmp.replace(out)
    return {"images": int(len(rows)), "bytes": int(size)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="make_cifar_fs_subset.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("src", nargs="?", default=str(SRC), help="full CIFAR-100 .npz (x, y, class_names)")
    ap.add_argument("out", nargs="?", default=str(OUT), help="where to write the subset")
    ap.add_argument("--train", type=int, default=200, help="images per meta-train class")
    ap.add_argument("--test", type=int, default=200, help="images per meta-test class")
    ap.add_argument("--val", type=int, default=10, help="images per meta-validation class (unused, at least 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-mib", type=float, default=50.0)
    a = ap.parse_args(argv)
    src = Path(a.src)
    if not src.is_file():
        print(f"make_cifar_fs_subset: error: {src} is not a file", file=sys.stderr)
        return 2
    try:
        info = make_subset(src, Path(a.out), train=a.train, test=a.test, val=a.val, seed=a.seed, max_mib=a.max_mib)
    except (ValueError, OSError) as err:
        print(f"make_cifar_fs_subset: error: {err}", file=sys.stderr)
        return 2
    print(f"{a.out}: {info['images']} images, {info['bytes'] / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
