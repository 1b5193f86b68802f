"""Disk cost of the gene archive per generation: one file with every individual's learngene.

Builds a config's network (default: configs/cifar-fs-vgg11.toml, VGG11 at population 32), draws each individual's
channel sets as generation 0 does, extracts the genes from a freshly initialised network (the sizes do not depend
on the weights) and writes one archive file the way a run does. Prints the bytes per gene, per generation and for
the whole run. CPU only, seconds; no data set needed.

    python scripts/gene_archive_cost.py [CONFIG] [--population N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from engine.config import load_config
from engine.learngene import extract, random_channels
from engine.models import create_model
from engine.run.gene_archive import archive_path, gene_bytes, save_generation
from engine.seeding import torch_generator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", nargs="?", default="configs/cifar-fs-vgg11.toml")
    ap.add_argument("--population", type=int, default=None)
    args = ap.parse_args()
    overrides = ["data.dataset='glyphs'"]  # the sizes need no images; glyphs needs no folder
    if args.population:
        overrides.append(f"evolution.population={args.population}")
    cfg = load_config(Path(args.config), overrides)
    in_channels = 3
    model = create_model(cfg.model.arch, cfg.task.ways, width=cfg.model.width, in_channels=in_channels,
                         image_size=cfg.data.image_size)
    spec = model.gene_spec()
    genes = {}
    for gid in range(cfg.evolution.population):
        channels = random_channels(spec.widths, cfg.learngene.ratio, torch_generator(cfg.run.seed, "gene0", gid))
        genes[gid] = (extract(model, channels), 0.5)
    sizes = [gene_bytes(g) for g, _ in genes.values()]
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        save_generation(d, 0, genes)
        seconds = time.perf_counter() - t0
        file_bytes = archive_path(d, 0).stat().st_size
    params = sum(p.numel() for n, p in model.named_parameters() if "classifier" not in n and "head" not in n)
    mib = 1024 * 1024
    print(f"{cfg.model.arch} width {cfg.model.width} at population {cfg.evolution.population}, "
          f"learngene fraction {cfg.learngene.fraction} (dtype {next(iter(genes[0][0].tensors.values())).dtype})")
    print(f"network body: {params / 1e6:.2f} M parameters ({params * 4 / mib:.1f} MiB fp32)")
    print(f"one gene: {min(sizes) / mib:.2f}-{max(sizes) / mib:.2f} MiB (mean {sum(sizes) / len(sizes) / mib:.2f})")
    print(f"one generation's archive file: {file_bytes / mib:.1f} MiB, written in {seconds:.2f} s here")
    print(f"a run of {cfg.evolution.generations} generations: {file_bytes * cfg.evolution.generations / mib:.0f} MiB "
          f"(run.gene_history = N keeps N x {file_bytes / mib:.1f} MiB)")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
