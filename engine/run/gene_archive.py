"""The gene archive: every individual's learngene, one ``.safetensors`` file per completed generation.

``<run>/genes/gen_00004.safetensors`` holds the learngene of each individual of generation 4 (tensors
``"<id>/<name>"``, in the gene's own dtype: fp32, so an export from the archive is bit-equal to the one the
engine would have written while the individual was live; fp16 would halve the size but change the weights) and,
in its metadata, each gene's architecture, channel sets and fitness. The run writes it in the background with
the generation's checkpoint, atomically (temporary file, fsync, ``os.replace``), before the checkpoint: a run
killed in between re-runs that generation on resume and writes its file again, so a resumed run's archive is the
one an uninterrupted run would have. ``run.gene_history`` bounds it (None: every generation; 0: none; N: the
newest N); ``export_offline`` exports from it once the engine is gone. No pickle.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

import engine
from engine.learngene import Learngene

GENES_DIR = "genes"
FORMAT = "gtl-gene-archive"
FORMAT_VERSION = "1"
_NAME = re.compile(r"^gen_(\d{5})\.safetensors$")


class NotArchived(ValueError):
    """The archive does not hold that individual (never archived, or dropped by ``run.gene_history``)."""


def archive_path(run_dir: str | Path, generation: int) -> Path:
    return Path(run_dir) / GENES_DIR / f"gen_{generation:05d}.safetensors"


def archived_generations(run_dir: str | Path) -> list[int]:
    """The generations the archive holds, oldest first."""
    d = Path(run_dir) / GENES_DIR
    if not d.is_dir():
        return []
    return sorted(int(m.group(1)) for p in d.iterdir() if (m := _NAME.match(p.name)))


def save_generation(run_dir: str | Path, generation: int, genes: dict[int, tuple[Learngene, float]],
                    keep: int | None = None) -> Path | None:
    """Write generation ``generation``'s learngenes (id -> (gene, fitness)) atomically; then drop the files
    older than the newest ``keep`` generations (None: keep all; 0: write nothing). Returns the path written."""
    if keep == 0:
        return None
    path = archive_path(run_dir, generation)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # owner-only, like the run directory
    tensors: dict[str, torch.Tensor] = {}
    index: dict[str, dict[str, Any]] = {}
    for gid, (gene, fitness) in sorted(genes.items()):
        for name, t in gene.tensors.items():
            tensors[f"{gid}/{name}"] = t.detach().to("cpu").contiguous()
        index[str(gid)] = {"arch": gene.arch, "in_channels": gene.in_channels, "widths": list(gene.widths),
                           "channels": [list(c) for c in gene.channels], "fitness": fitness,
                           "tensors": sorted(gene.tensors)}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "generation": str(generation),
            "individuals": json.dumps(index)}
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        save_file(tensors, str(tmp), metadata=meta)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    if keep is not None:
        for g in archived_generations(run_dir):
            if g <= generation - keep:
                archive_path(run_dir, g).unlink(missing_ok=True)
    return path


def _index(path: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    """The generation and per-individual metadata of an archive file (its header only: no tensor is read)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except OSError as err:
        raise ValueError(f"{path}: cannot read the gene archive ({err})") from None
    except Exception as err:  # safetensors raises its own error type on a damaged header
        raise ValueError(f"{path}: damaged gene archive ({err})") from None
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: not a gtl-tui gene archive of format {FORMAT_VERSION}")
    return int(meta["generation"]), json.loads(meta["individuals"])


def load_generation(run_dir: str | Path, generation: int) -> dict[int, tuple[Learngene, float]]:
    """Every learngene archived for ``generation``: id -> (gene, fitness)."""
    path = archive_path(run_dir, generation)
    if not path.is_file():
        raise NotArchived(f"generation {generation} is not in the gene archive")
    _, index = _index(path)
    with safe_open(str(path), framework="pt") as f:
        return {int(i): (_gene(f, i, rec), rec["fitness"]) for i, rec in index.items()}


def load_individual(run_dir: str | Path, individual: int,
                    generation: int | None = None) -> tuple[Learngene, float, int]:
    """One individual's archived learngene: (gene, fitness, generation). ``generation``, where known, saves
    looking through the files' headers (newest first). Raises NotArchived."""
    gens = archived_generations(run_dir)
    if generation is not None:
        gens = [generation] if generation in gens else []
    for g in reversed(gens):
        path = archive_path(run_dir, g)
        _, index = _index(path)
        rec = index.get(str(individual))
        if rec is not None:
            with safe_open(str(path), framework="pt") as f:
                return _gene(f, str(individual), rec), rec["fitness"], g
    raise NotArchived(f"individual {individual} is not in the gene archive")


def _gene(f: Any, key: str, rec: dict[str, Any]) -> Learngene:
    return Learngene(arch=rec["arch"], in_channels=rec["in_channels"], widths=rec["widths"],
                     channels=rec["channels"], tensors={n: f.get_tensor(f"{key}/{n}") for n in rec["tensors"]})


def gene_bytes(gene: Learngene) -> int:
    """Bytes the gene's tensors take in the archive."""
    return sum(t.numel() * t.element_size() for t in gene.tensors.values())


def export_manifest(cfg: Any, run_name: str, individual: int, generation: int | None, fitness: float,
                    lineage: list[dict[str, Any]]) -> dict[str, Any]:
    """The manifest of an exported learngene; the live engine and an export from the archive build the same."""
    return {"individual": individual, "generation": generation, "fitness": fitness, "lineage": lineage,
            "run": run_name, "config": cfg.to_dict(), "config_hash": cfg.hash(), "version": engine.__version__,
            "dataset": cfg.data.dataset, "image_size": cfg.data.image_size, "width": cfg.model.width,
            "created": time.time()}


def lineage_of(records: dict[int, dict[str, Any]], individual: int) -> list[dict[str, Any]]:
    """The individual and its ancestors back to generation 0 along first parents (records: id -> parent,
    generation, fitness, mutations), as the engine writes them in a manifest; where there is one, the second
    parent (recombination) and the lineage score."""
    chain, cur, seen = [], individual, set()
    while cur is not None and cur in records and cur not in seen:
        seen.add(cur)
        rec = records[cur]
        chain.append({"id": cur, "generation": rec["generation"], "fitness": rec["fitness"],
                      "mutations": rec["mutations"],
                      **{k: rec[k] for k in ("parent2", "from_parent2", "score") if k in rec}})
        cur = rec["parent"]
    return chain


def records_from_log(run_dir: str | Path) -> dict[int, dict[str, Any]]:
    """Every individual's record (parent, generation, fitness, mutations) from the run's event log; where a
    resume logged an individual again, the newest entry counts (it is what the engine's records hold)."""
    from engine.events import EVENTS_FILE, IndividualBorn, IndividualEvaluated, read_events

    records: dict[int, dict[str, Any]] = {}
    for e in read_events(Path(run_dir) / EVENTS_FILE)[0]:
        if isinstance(e, IndividualBorn):
            records[e.id] = {"parent": e.parent, "generation": e.generation, "fitness": None,
                             "mutations": e.mutations}
        elif isinstance(e, IndividualEvaluated) and e.id in records:
            records[e.id]["fitness"] = e.fitness
    return records


def _from_checkpoint(run_dir: Path, individual: int | None) -> tuple[Learngene, float, int, int] | None:
    """(gene, fitness, generation, id) of the elite or of a last-generation individual from the newest
    checkpoint (held whatever the archive keeps); ``individual`` None: the elite."""
    from engine.run.checkpoint import latest_checkpoint, load_checkpoint

    path = latest_checkpoint(run_dir)
    if path is None:
        return None
    state, genes = load_checkpoint(path)
    elite = state.get("elite") or {}
    if (individual is None or individual == elite.get("id")) and "elite" in genes:
        return genes["elite"], elite["fitness"], elite["generation"], elite["id"]
    key = f"last.{individual}"
    if key in genes:
        return genes[key], state["last_fitness"][str(individual)], state["generation"] - 1, individual
    return None


def export_offline(run_dir: str | Path, individual: int | None, out: str | Path | None = None
                   ) -> tuple[Path, Path]:
    """Export a learngene of a run whose engine is gone, as the engine would have: the same weights, the same
    manifest (lineage from the event log). ``individual`` None: the elite. Raises ValueError (one line)."""
    from engine.config import load_config
    from engine.learngene import save_learngene
    from engine.rundir import CONFIG_FILE, check_run_dir

    run_dir = Path(run_dir)
    cfg = load_config(check_run_dir(run_dir) / CONFIG_FILE)  # not run.runner: it imports the loop (a cycle)
    records = records_from_log(run_dir)
    found = None
    if individual is not None:
        rec = records.get(individual)
        if rec is None:
            raise ValueError(f"run {run_dir.name} has no individual {individual}")
        if rec["fitness"] is None:
            raise ValueError(f"individual {individual} (generation {rec['generation']}) never completed its "
                             "lifetime: it has no learngene")
        try:
            found = (*load_individual(run_dir, individual, rec["generation"]), individual)
        except NotArchived:
            pass
    if found is None:
        found = _from_checkpoint(run_dir, individual)
    if found is None:
        if individual is None:
            raise ValueError("no learngene yet: the first generation has not completed")
        keep = cfg.run.gene_history
        why = ("the run keeps no gene archive (run.gene_history = 0)" if keep == 0 else
               f"the run keeps the genes of its newest {keep} generations (run.gene_history)" if keep else
               "the run has no gene archive for it (written by an older version?)")
        raise NotArchived(f"individual {individual} (generation {records[individual]['generation']}) is not "
                          f"held: {why}")
    gene, fitness, generation, ind = found
    stem = f"best-g{generation:04d}-i{ind}" if individual is None else f"ind{ind}-g{generation:04d}"
    target = Path(out) if out is not None else run_dir / "learngenes" / stem
    manifest = export_manifest(cfg, run_dir.name, ind, generation, fitness, lineage_of(records, ind))
    return save_learngene(gene, target, manifest)


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
