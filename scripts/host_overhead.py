"""The host's share of a generation, with the training replaced by a sleep: ``python scripts/host_overhead.py``.

Runs the population trainer on the CPU through the engine exactly as ``gtl-tui run`` does (births, tasks, task
data, the fused network, selection, mutation, gene extraction, events, checkpoints), but ``train_population``
sleeps ``--train-seconds`` (the GPU's part of a generation) and the scoring returns zeros. Prints, per generation,
its wall time (from the previous generation's ``generation_completed`` to its own) and the host work beyond the
stubbed training (wall - train seconds), and the engine's own ``timing`` split
when the engine writes one. ``GTL_PREFETCH=0`` turns off preparing the next generation during training.

Runs with any version of the engine (``PYTHONPATH`` chooses it), so a change can be measured against the one
before: ``PYTHONPATH=/path/to/old/checkout python scripts/host_overhead.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

CIFAR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "cifar100" / "cifar100_u8.npz"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="host_overhead.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="vgg11")
    ap.add_argument("--population", type=int, default=32)
    ap.add_argument("--generations", type=int, default=4)
    ap.add_argument("--steps", type=int, default=100, help="lifetime steps (sizes the batch schedules)")
    ap.add_argument("--train-seconds", type=float, default=5.0, help="the stubbed training per generation")
    ap.add_argument("--data", default=str(CIFAR), help="CIFAR-100 .npz (default: the shared copy); 'glyphs'")
    ap.add_argument("--json", help="also write the per-generation numbers here")
    a = ap.parse_args(argv)

    import engine.trainers.population.trainer as pt
    from engine.config import load_config
    from engine.run.runner import create_run_dir, run_in_dir

    def stub_train(step, data, opt, **kwargs):  # the device's time; nothing is trained
        time.sleep(a.train_seconds)
        return torch.zeros(data.population)

    def stub_correct(net, data, precision, batch=512):
        return torch.zeros(data.population, dtype=torch.long)

    pt.train_population, pt.population_correct = stub_train, stub_correct
    data = ["data.dataset='glyphs'"] if a.data == "glyphs" else ["data.dataset='cifar-fs'", f"data.root='{a.data}'"]
    cfg = load_config(Path(__file__).resolve().parent.parent / "configs" / "cifar-fs-vgg11.toml", [
        *data, f"model.arch='{a.arch}'", f"evolution.population={a.population}",
        f"evolution.generations={a.generations}", f"lifetime.steps={a.steps}", "run.device='cpu'",
        "run.trainer='population'", "name='host-overhead'"])
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = create_run_dir(cfg, Path(tmp))
        t0 = time.perf_counter()
        finished = run_in_dir(run_dir)
        total = time.perf_counter() - t0
        rows, last_t = [], None
        for raw in (run_dir / "events.jsonl").read_text().splitlines():
            e = json.loads(raw)
            if e["kind"] == "generation_started" and last_t is None:
                last_t = e["t"]
            if e["kind"] == "generation_completed":  # wall: from the previous generation's end to this one's
                rows.append({"generation": e["generation"], "wall": round(e["t"] - last_t, 3),
                             "timing": e.get("timing")})
                last_t = e["t"]
    print(f"{a.arch}, population {a.population}, {a.steps}-step lifetimes, training stubbed by "
          f"{a.train_seconds:.1f} s sleeps; {os.cpu_count()} cores, torch {torch.__version__}; "
          f"prefetch {os.environ.get('GTL_PREFETCH', '1') != '0'}; {finished.status} in {total:.1f} s")
    for r in rows:
        t = r["timing"]
        split = (f"  timing: wall {t['wall']:.2f}, train {t['train']:.2f}, host {t['host']:.2f}, wait {t['wait']:.2f}"
                 if t else "")
        host = r["wall"] - a.train_seconds
        r["host"] = round(host, 3)
        print(f"  generation {r['generation']}: {r['wall']:.2f} s, host beyond training {host:.2f} s{split}")
    later = [r["host"] for r in rows[1:]]
    if later:
        print(f"host work per generation after the first: mean {statistics.fmean(later):.2f} s")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0 if finished.status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
