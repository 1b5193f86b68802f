from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

# Snapshots show wall-clock times: the same zone on every machine.
os.environ["TZ"] = "UTC"
time.tzset()

REPO = Path(__file__).resolve().parent.parent
CIFAR_NPZ = Path(os.environ.get("GTL_CIFAR_NPZ", REPO.parent / "shared" / "data" / "cifar100" / "cifar100_u8.npz"))


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    skip_data = pytest.mark.skip(reason=f"needs CIFAR-100 at {CIFAR_NPZ}")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)
        if "data" in item.keywords and not CIFAR_NPZ.exists():
            item.add_marker(skip_data)


@pytest.fixture
def cifar_npz() -> Path:
    return CIFAR_NPZ


#: The smallest run that exercises everything: 4 individuals, 3 generations of 6 steps on 20 synthetic glyph
#: classes, on one CPU thread (seconds). Tests add ``--set`` overrides to it.
TINY = [
    "evolution.population=4", "evolution.generations=3", "lifetime.steps=6", "lifetime.batch_size=16",
    "data.glyph_classes=20", "data.glyph_images_per_class=20", "model.width=0.25", "run.device='cpu'",
    "run.threads=1",
]


@pytest.fixture
def tiny() -> list[str]:
    """The ``--set`` overrides of the tiny test run (a fresh list: a test may extend it)."""
    return list(TINY)
