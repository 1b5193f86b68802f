"""Checkpoints: one ``.safetensors`` file per completed generation, written atomically.

The tensors are the learngenes the run still needs (the next generation's inherited genes, the last generation's
genes for export, the elite); the rest of the state is JSON in the file's metadata. No pickle: a run directory
can be read without trusting it. Each file carries the SHA-256 of its state and tensors in its metadata; a file
whose checksum, header or numbers do not hold up is refused on load, and the run continues from the newest
checkpoint that does (``Evolution._restore``). All randomness derives from (seed, generation, id) (``engine.seeding``), so the
RNG state is the seed and the generation to continue with.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from engine.atomic import replacing
from engine.integrity import MAX_CHECKPOINT_BYTES, all_finite, check_file, data_checksum
from engine.learngene import Learngene
from engine.rundir import CHECKPOINTS_DIR, checkpoint_name

FORMAT = 1
_NAME = re.compile(r"^gen_(\d{5})\.safetensors$")


def checkpoint_path(run_dir: Path, generation: int) -> Path:
    return run_dir / CHECKPOINTS_DIR / checkpoint_name(generation)


def save_checkpoint(run_dir: Path, generation: int, state: dict[str, Any] | str, genes: dict[str, Learngene],
                    keep: int = 2) -> Path:
    """Write the checkpoint of completed ``generation`` atomically; keep the newest ``keep`` files.

    ``state`` is JSON-able, or already JSON text (a snapshot taken before the state changes again).
    """
    path = checkpoint_path(run_dir, generation)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    stored: dict[int, str] = {}  # the same gene may be held twice (elite and a child): store its tensors once
    gene_meta: dict[str, dict[str, Any]] = {}
    for key, gene in genes.items():
        refs = {}
        for name, t in gene.tensors.items():
            if id(t) not in stored:
                stored[id(t)] = f"{key}/{name}"
                tensors[stored[id(t)]] = t.detach().to("cpu").contiguous()
            refs[name] = stored[id(t)]
        gene_meta[key] = {"arch": gene.arch, "in_channels": gene.in_channels, "widths": gene.widths,
                          "channels": gene.channels, "tensors": refs}
    meta = {"format": str(FORMAT), "state": state if isinstance(state, str) else json.dumps(state),
            "genes": json.dumps(gene_meta)}
    meta["sha256"] = checkpoint_checksum(meta, tensors)
    with replacing(path) as tmp:  # a full disk leaves no half file behind
        save_file(tensors, str(tmp), metadata=meta)
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def checkpoint_checksum(meta: dict[str, str], tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a checkpoint's state, gene table and every tensor (name, dtype, shape, bytes, in name order)."""
    parts = [meta["state"], meta["genes"]]
    chunks = []
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        parts.append(f"{name}|{t.dtype}|{tuple(t.shape)}")
        chunks.append(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return data_checksum(parts, b"".join(chunks))


def list_checkpoints(run_dir: Path) -> list[Path]:
    d = Path(run_dir) / CHECKPOINTS_DIR
    if not d.is_dir():
        return []
    return sorted((p for p in d.iterdir() if _NAME.match(p.name)), key=lambda p: p.name)


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def load_latest_valid(run_dir: Path) -> tuple[Path, dict[str, Any], dict[str, Learngene], list[str]] | None:
    """The newest checkpoint that loads, with its state and genes, and one line per newer one that did not
    (damaged: the caller warns); None when there is no checkpoint. Raises ValueError when none loads."""
    problems: list[str] = []
    found = list_checkpoints(run_dir)
    for path in reversed(found):
        try:
            state, genes = load_checkpoint(path)
        except ValueError as err:
            problems.append(str(err))
            continue
        return path, state, genes, problems
    if problems:
        raise ValueError(problems[0] + (f" (and {len(problems) - 1} older ones)" if len(problems) > 1 else ""))
    return None


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Learngene]]:
    """Returns the JSON state and the learngenes by key; raises ValueError on a damaged file: a broken header, a
    checksum that does not match (tensor data overwritten), or numbers that are not finite."""
    check_file(path, MAX_CHECKPOINT_BYTES, "checkpoint")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != str(FORMAT):
                raise ValueError(f"{path}: not a gtl-tui checkpoint (format {meta.get('format')!r})")
            stored = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (safe_open has no iteration)
            if "sha256" in meta and checkpoint_checksum(meta, stored) != meta["sha256"]:
                raise ValueError(f"{path}: damaged checkpoint (checksum does not match its contents)")
            if not all_finite(stored):
                raise ValueError(f"{path}: damaged checkpoint (tensors hold NaN or infinite numbers)")
            state = json.loads(meta["state"])
            gene_meta = json.loads(meta["genes"])
            genes = {}
            for key, gm in gene_meta.items():
                tensors = {name: stored[ref] for name, ref in gm["tensors"].items()}
                genes[key] = Learngene(arch=gm["arch"], in_channels=gm["in_channels"], widths=gm["widths"],
                                       channels=gm["channels"], tensors=tensors)
    except (OSError, KeyError, TypeError, AttributeError, RecursionError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: damaged checkpoint ({err})") from None
    except Exception as err:  # safetensors raises its own error type on a truncated header
        if type(err).__name__ == "SafetensorError":
            raise ValueError(f"{path}: damaged checkpoint ({err})") from None
        raise
    return state, genes
