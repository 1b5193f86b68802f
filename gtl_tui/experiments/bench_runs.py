"""Measure the Runs screen on a big folder: ``python -m gtl_tui.experiments.bench_runs [--runs 200]``.

Writes N scripted runs (population 8, 6 generations; four sweeps of N/5 runs and N/5 loose runs, every other run
evaluated) into a temporary folder, then times: scanning the folder, opening the screen (app start to the first
frame with the table filled, headless), and key to screen for keys that move, sort, reverse, mark, filter and open
the comparison of one sweep. Targets: open < 1 s, keys < 100 ms. Key times are wall time from the key to every
message it caused handled and the screen laid out and drawn, Pilot's own pauses included (an upper bound).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from gtl_tui.evaluations import write_evaluation
from gtl_tui.experiments.sweep import MANIFEST
from gtl_tui.scripted import scripted_run, write_events


def make_folder(root: Path, n: int) -> Path:
    """``n`` finished scripted runs: four sweeps and loose runs, every other one with an evaluation."""
    per = max(n // 5, 1)
    made = 0
    for s in range(5):
        sweep = None if s == 4 else f"sweep{s}"
        folder = root / sweep if sweep else root
        folder.mkdir(parents=True, exist_ok=True)
        points = []
        for i in range(per if s < 4 else n - made):
            ways, seed = (5, 10)[i % 2], i // 2
            name = f"{i:02d}-ways{ways}-seed{seed}" if sweep else f"run-{i:03d}"
            run = folder / name
            run.mkdir()
            (run / "config.toml").write_text(f'name = "bench"\n\n[run]\nseed = {seed}\n\n[task]\nways = {ways}\n\n'
                                             f"[lifetime]\nlr = {0.05 * (1 + s % 2)}\n\n[evolution]\n"
                                             "population = 8\ngenerations = 6\n")
            write_events(run, scripted_run(population=8, generations=6, seed=made, name=name))
            if made % 2 == 0:
                write_evaluation(run, "best", {"results": [
                    {"method": m, "shots": 5, "steps": 50, "mean": acc, "ci95": 0.02, "episodes": 100}
                    for m, acc in (("learngene", 0.5 + 0.001 * made), ("scratch", 0.45))], "settings": {}})
            points.append({"name": name, "state": "finished"})
            made += 1
        if sweep:
            (folder / MANIFEST).write_text(json.dumps({"name": sweep, "points": points, "grid": {}}))
    return root


async def measure(folder: Path) -> dict[str, float | list[float]]:
    from gtl_tui.experiments.runs_index import scan
    from gtl_tui.screens.runs import RunsApp

    t = time.perf_counter()
    rows = scan(folder)
    scan_s = time.perf_counter() - t

    t = time.perf_counter()
    app = RunsApp(folder)
    keys: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        open_s = time.perf_counter() - t
        assert len(app.screen.table.order) == len(rows)
        for key in ["down"] * 5 + ["s", "s", "s", "s", "r", "space", "space", "slash", "w", "a", "y", "s", "5",
                                   "escape", "home", "c", "escape"]:
            t, c = time.perf_counter(), time.process_time()
            await pilot.press(key)
            await pilot.pause()
            keys.setdefault(key, []).append(time.perf_counter() - t)
            cpu.setdefault(key, []).append(time.process_time() - c)
    return {"runs": len(rows), "scan_s": scan_s, "open_s": open_s, "keys": keys, "cpu": cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gtlruns") as d:
        folder = make_folder(Path(d) / "runs", args.runs)
        load = os.getloadavg()[0]
        r = asyncio.run(measure(folder))
    print(f"{r['runs']} runs (load average {load:.2f}): scan {1000 * r['scan_s']:.0f} ms, "
          f"open (app start to first frame, scan included) {1000 * r['open_s']:.0f} ms")
    for k, v in r["keys"].items():
        c = r["cpu"][k]
        print(f"  key {k!r:10} wall median {1000 * statistics.median(v):6.1f} ms, max {1000 * max(v):6.1f} ms; "
              f"CPU median {1000 * statistics.median(c):6.1f} ms ({len(v)}x)")


if __name__ == "__main__":
    main()
