"""Learngene files: weights as ``<name>.safetensors`` plus a ``<name>.json`` manifest. No pickle anywhere.

Both files are written atomically (temporary file in the same folder, then ``os.replace``); the safetensors
file first, the manifest last, and the manifest records the SHA-256 of the weights so a mismatched pair is caught.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from engine.atomic import write_atomic
from engine.integrity import MAX_WEIGHTS_BYTES, all_finite, read_json_file, read_limited
from engine.learngene.gene import Learngene, check_tensors
from engine.models import available_models

FORMAT = "gtl-learngene"
FORMAT_VERSION = 1
#: Manifest keys written by :func:`save_learngene` itself (they override the caller's).
OWN_KEYS = ("format", "format_version", "arch", "in_channels", "widths", "channels", "fraction", "weights",
            "weights_sha256")


def pair_paths(path: str | Path) -> tuple[Path, Path]:
    """``<path>.safetensors`` and ``<path>.json`` for ``path`` given with either suffix or none (a learngene's or
    a pretrained network's weights and manifest)."""
    p = Path(path).expanduser()
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def save_learngene(gene: Learngene, path: str | Path, manifest: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``gene`` to ``<path>.safetensors`` and ``<path>.json`` (``path`` with or without a suffix).

    The manifest holds what the caller passes (fitness, lineage, config, config_hash, version ...) plus the
    keys in :data:`OWN_KEYS`. Returns the two paths.

    Raises:
        ValueError: the gene is inconsistent, or the manifest is not JSON-serialisable.
    """
    check_tensors(gene)
    if not all_finite(gene.tensors):
        raise ValueError("the learngene holds NaN or infinite weights; refusing to write it")
    st_path, json_path = pair_paths(path)
    st_path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in gene.tensors.items()}
    blob = st_save(tensors, metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION), "arch": gene.arch})
    full = dict(manifest)
    full.update(format=FORMAT, format_version=FORMAT_VERSION, arch=gene.arch, in_channels=gene.in_channels,
                widths=list(gene.widths), channels=[list(c) for c in gene.channels], fraction=gene.fraction,
                weights=st_path.name, weights_sha256=hashlib.sha256(blob).hexdigest())
    try:
        text = json.dumps(full, indent=2, allow_nan=True)
    except (TypeError, ValueError) as e:
        raise ValueError(f"learngene manifest is not JSON-serialisable: {e}") from None
    write_atomic(st_path, blob)
    write_atomic(json_path, (text + "\n").encode())
    return st_path, json_path


def _field(manifest: dict[str, Any], key: str, kind: type, where: Path) -> Any:
    value = manifest.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{where}: manifest field {key!r} is missing or not a {kind.__name__}")
    return value


#: The widest a gene layer may be relative to the architecture at width 1 (model.width is at most 8).
MAX_WIDTH_FACTOR = 8


def check_widths(arch: str, in_channels: int, widths: list[int], where: Path) -> None:
    """Refuse slot widths no config can produce (a tampered manifest's 1e9 would build a network of that width
    later, in evaluation or descendants): as many slots as the architecture has, each 1 .. 8 x its width at 1."""
    from engine.models.registry import _topology

    if not 1 <= in_channels <= 64:
        raise ValueError(f"{where}: in_channels {in_channels} is out of range (1..64)")
    base = _topology(arch, in_channels).widths
    if len(widths) != len(base):
        raise ValueError(f"{where}: {arch} has {len(base)} channel slots, the manifest lists {len(widths)} widths")
    for slot, (w, b) in enumerate(zip(widths, base, strict=True)):
        if not 1 <= w <= MAX_WIDTH_FACTOR * b:
            raise ValueError(f"{where}: width {w} of slot {slot} is out of range for {arch} "
                             f"(1..{MAX_WIDTH_FACTOR * b})")


def load_learngene(path: str | Path) -> tuple[Learngene, dict[str, Any]]:
    """Read a learngene written by :func:`save_learngene`; returns it and its full manifest.

    Raises:
        ValueError: a file is missing, unreadable, corrupt, of another format, or does not match its manifest.
    """
    st_path, json_path = pair_paths(path)
    manifest = read_json_file(json_path, "learngene manifest")  # size-limited; too deep is a ValueError
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{json_path}: not a learngene manifest (format is not {FORMAT!r})")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{json_path}: learngene format version {version!r} is not supported "
                         f"(this version reads {FORMAT_VERSION})")
    arch = _field(manifest, "arch", str, json_path)
    if arch not in available_models():
        raise ValueError(f"{json_path}: unknown architecture {arch!r}; available: {', '.join(available_models())}")
    in_channels = _field(manifest, "in_channels", int, json_path)
    widths = _field(manifest, "widths", list, json_path)
    channels = _field(manifest, "channels", list, json_path)
    if not all(isinstance(w, int) for w in widths) or not all(
            isinstance(c, list) and all(isinstance(i, int) for i in c) for c in channels):
        raise ValueError(f"{json_path}: widths and channels must be lists of integers")
    check_widths(arch, in_channels, widths, json_path)
    # a regular file of bounded size: a .safetensors symlinked to /dev/zero would otherwise be read forever
    blob = read_limited(st_path, MAX_WEIGHTS_BYTES, "learngene weights")
    sha = manifest.get("weights_sha256")
    if sha is not None and hashlib.sha256(blob).hexdigest() != sha:
        raise ValueError(f"{st_path}: weights do not match the manifest (checksum differs); the pair is mixed up "
                         "or the file is corrupt")
    try:
        tensors = st_load(blob)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise ValueError(f"{st_path}: corrupt safetensors file ({e})") from None
    gene = Learngene(arch, in_channels, widths, channels, {k: v.to(torch.float32) for k, v in tensors.items()})
    try:
        check_tensors(gene)
    except (ValueError, KeyError) as e:
        raise ValueError(f"{json_path}: {e}") from None
    return gene, manifest
