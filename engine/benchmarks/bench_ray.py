"""Benchmark: quickstart generations on the local backend vs the Ray backend with N CPU workers.

    python -m engine.benchmarks.bench_ray [--config configs/quickstart.toml] [--workers 2] [--generations 2]

Runs the same config three ways in temporary run directories: local with torch's default threads, local with one
thread (what each Ray worker uses, so its fitness history must equal Ray's), and Ray with a fresh local Ray of
``--workers`` CPUs. Prints setup time (dataset, Ray start, workers) and the seconds of each generation.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from engine import events as ev
from engine.config import load_config
from engine.run.runner import create_run_dir, run_in_dir

SAME = ("best", "mean", "worst")


def bench(config: str | None, overrides: list[str], threads: int | None, label: str) -> dict:
    """One run; returns its label, wall seconds, per-generation seconds and fitness history."""
    saved = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = create_run_dir(load_config(config, overrides), tmp, label)
            t0 = time.perf_counter()
            finished = run_in_dir(run_dir)
            wall = time.perf_counter() - t0
            if finished.status != "completed":
                raise RuntimeError(f"{label}: run {finished.status}: {finished.error}")
            events, _ = ev.read_events(Path(run_dir) / ev.EVENTS_FILE)
    finally:
        torch.set_num_threads(saved)
    gens = [e for e in events if isinstance(e, ev.GenerationCompleted)]
    return {"label": label, "wall": wall, "gens": [g.seconds for g in gens],
            "history": [tuple(getattr(g, k) for k in SAME) for g in gens]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/quickstart.toml")
    p.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray (one worker each)")
    p.add_argument("--generations", type=int, default=2)
    p.add_argument("--set", dest="overrides", action="append", default=[], help="extra section.key=value")
    args = p.parse_args(argv)
    base = [f"evolution.generations={args.generations}", "run.device='cpu'", *args.overrides]
    print(f"cores {os.cpu_count()}, load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    runs = [
        bench(args.config, base, None, f"local-{torch.get_num_threads()}threads"),
        bench(args.config, base, 1, "local-1thread"),
        bench(args.config, [*base, "run.backend='ray'", f"run.ray_workers={args.workers}"], None,
              f"ray-{args.workers}workers"),
    ]
    print(f"{'run':<18}{'wall s':>8}{'setup s':>9}  generation seconds")
    for r in runs:
        setup = r["wall"] - sum(r["gens"])
        print(f"{r['label']:<18}{r['wall']:8.1f}{setup:9.1f}  {' '.join(f'{s:.1f}' for s in r['gens'])}")
    same = runs[1]["history"] == runs[2]["history"]
    print(f"ray history == local-1thread history: {same}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
