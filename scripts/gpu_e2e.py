"""End-to-end check of a real run on the GPU: ``python scripts/gpu_e2e.py OUT_DIR [GENERATIONS [KEY=VALUE ...]]``.

Runs the GPU config (VGG11, population 32, 100-step lifetimes, compiled) on the built-in glyph dataset through
the engine exactly as ``gtl-tui run`` does, then continues it by one generation in the same way ``--resume``
does, and prints per generation: seconds, training images/s and the trainer the engine chose. The first
generation pays the compile warm-up; the later ones must not.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from engine.config import load_config
from engine.run.runner import create_run_dir, extend_run, run_in_dir

REPO = Path(__file__).resolve().parent.parent


def summary(run_dir: Path) -> list[str]:
    lines = []
    for raw in (run_dir / "events.jsonl").read_text().splitlines():
        e = json.loads(raw)
        if e["kind"] == "run_started":
            lines.append(f"run_started: device {e['device']}, trainer {e['trainer']}, arch {e['arch']}, "
                         f"population {e['population']}, resumed_from {e.get('resumed_from')}")
        elif e["kind"] == "generation_completed":
            lines.append(f"  generation {e['generation']}: {e['seconds']:.1f} s, {e['images_per_s']:,.0f} images/s, "
                         f"best {e['best']:.3f} mean {e['mean']:.3f}")
        elif e["kind"] == "run_finished":
            lines.append(f"run_finished: {e['status']} {e.get('error') or ''}")
    return lines


def main() -> int:
    out = Path(sys.argv[1])
    generations = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    overrides = ["data.dataset=glyphs", f"evolution.generations={generations}", "run.compile=true",
                 "name=gpu-e2e", *sys.argv[3:]]
    cfg = load_config(REPO / "configs" / "cifar-fs-vgg11.toml", overrides)
    run_dir = create_run_dir(cfg, out / "runs")
    t0 = time.perf_counter()
    finished = run_in_dir(run_dir)
    print(f"{generations} generations: {time.perf_counter() - t0:.1f} s, status {finished.status}", flush=True)
    extend_run(run_dir, generations + 1)
    t0 = time.perf_counter()
    finished = run_in_dir(run_dir)
    print(f"continued by one generation: {time.perf_counter() - t0:.1f} s, status {finished.status}")
    if torch.cuda.is_available():
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    print("\n".join(summary(run_dir)))
    return 0 if finished.status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
