"""A cache of evaluation results, so that a sweep computes each baseline once.

Every method of :func:`engine.fewshot.evaluate.evaluate` is a pure function of the episodes (the dataset and the
settings, seed included) and of the networks it starts from. In a sweep the baselines (``scratch``,
``pretrained``, the circuits) start from the same networks in every run, and a ``gen0`` or a learngene can
repeat across runs too (variants that leave generation 0 alone); recomputing them is most of a sweep's
evaluation time. :class:`ResultCache` keys one method's results by a SHA-256 over exactly those inputs:

- the method's name, the evaluation settings (episodes, shots, steps, seed, fine-tuning protocol, ...),
  the dataset's identity (name, root, size of its files) and the code's version;
- the learngene's architecture and widths (scratch has the learngene's architecture and width);
- the weights the method starts from, tensor by tensor, with their channel sets (the learngene's for
  ``learngene``, generation 0's for ``gen0``), or the pretrained network's (``pretrained``), plus, for its
  circuits, the learngene's channel counts per layer (the circuits take as many channels as it has).

A hit returns the stored results; a miss runs the method and stores them (atomically: two evaluations filling
the same entry at once both write the same bytes). Entries are small JSON files, one per key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.atomic import write_atomic

# which inputs' weights each method starts from (beyond the learngene's architecture, which all share)
WEIGHTS_OF = {"learngene": "gene", "gen0": "gen0", "pretrained": "pretrained",
              "pretrained_random20": "pretrained", "pretrained_top20": "pretrained", "scratch": None}
COUNTED = ("pretrained_random20", "pretrained_top20")  # methods shaped by the learngene's channel counts


def tensor_digest(tensors: Iterable[tuple[str, Any]]) -> str:
    """SHA-256 over named tensors (name, dtype, shape, bytes), in name order."""
    import torch

    h = hashlib.sha256()
    for name, t in sorted(tensors, key=lambda kv: kv[0]):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())  # any dtype, bf16 included
    return h.hexdigest()


def network_digest(net: Any) -> str | None:
    """The digest of a learngene (its tensors) or of a network (its state dict); None for no input."""
    if net is None:
        return None
    tensors = getattr(net, "tensors", None)
    if isinstance(tensors, dict):
        return tensor_digest(tensors.items())
    return tensor_digest(net.state_dict().items())


def _gene_digest(gene: Any) -> str | None:
    """A learngene's weights and the channel sets they sit in."""
    if gene is None:
        return None
    chans = json.dumps([list(c) for c in gene.channels])
    return hashlib.sha256(f"{network_digest(gene)}|{chans}".encode()).hexdigest()


def dataset_identity(dataset: str, root: str | None) -> dict[str, Any]:
    """Name, root and the sizes and modification times of the root's files (a rebuilt dataset is a new key)."""
    out: dict[str, Any] = {"dataset": dataset, "root": root}
    if root:
        p = Path(root).expanduser()
        files = [p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file())[:200] if p.is_dir() else []
        out["files"] = [(str(f.relative_to(p)) if f != p else f.name, f.stat().st_size, int(f.stat().st_mtime))
                        for f in files]
    return out


class ResultCache:
    """``<dir>/<key>.json`` per (method, inputs, settings): the method's result rows."""

    def __init__(self, directory: str | Path, *, settings: dict[str, Any], data: dict[str, Any], version: str,
                 gene: Any, gen0: Any = None, pretrained: Any = None) -> None:
        self.dir = Path(directory).expanduser()
        shape = None if gene is None else {"arch": gene.arch, "in_channels": gene.in_channels,
                                           "widths": list(gene.widths)}
        self._base = {"settings": settings, "data": data, "version": version, "gene_shape": shape}
        self._counts = None if gene is None else [len(c) for c in gene.channels]
        self._weights = {"gene": _gene_digest(gene), "gen0": _gene_digest(gen0),
                         "pretrained": network_digest(pretrained)}

    def key(self, method: str) -> str:
        source = WEIGHTS_OF.get(method, "gene")
        blob = {**self._base, "method": method, "weights": self._weights.get(source) if source else None,
                "counts": self._counts if method in COUNTED else None}
        return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:32]

    def get(self, method: str) -> list[dict[str, Any]] | None:
        p = self.dir / f"{self.key(method)}.json"
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError):
            return None
        rows = data.get("results") if isinstance(data, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, dict) and r.get("method") == method for r in rows):
            return None
        return rows

    def put(self, method: str, rows: list[dict[str, Any]]) -> Path:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return write_atomic(self.dir / f"{self.key(method)}.json",
                            json.dumps({"method": method, "results": rows}, indent=1) + "\n")
