"""All randomness of a run derives from its seed and a few keys (generation, individual id, purpose).

Deriving a fresh generator per (seed, purpose, id) instead of threading one stateful generator through the run
makes every individual's task, init, batches and mutations independent of the order in which individuals train:
the sequential, population and Ray trainers compute the same thing, and a resumed run needs no RNG state beyond
the seed and the generation it continues with.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def derive_seed(seed: int, *keys: object) -> int:
    """A 63-bit seed from the run seed and any keys (stable across processes and Python versions)."""
    blob = repr((int(seed), *keys)).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") & ((1 << 63) - 1)


def torch_generator(seed: int, *keys: object, device: str | torch.device = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, *keys))
    return g


def numpy_generator(seed: int, *keys: object) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, *keys))
