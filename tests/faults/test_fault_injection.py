"""Issue 17, "done means": SIGKILL the engine at random points of a tiny run, resume each time, and every run
must end exactly where the uninterrupted run ends (fitness history, final learngene tensor for tensor)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from fault_helpers import TINY

from engine import events as ev
from engine.config import load_config
from engine.learngene import load_learngene
from engine.run.runner import create_run_dir

REPO = Path(__file__).resolve().parents[2]


def _history(run_dir: Path) -> dict[int, tuple[float, float, float, int]]:
    """Per generation, its last record (a generation cut short is computed again after a resume)."""
    events, _ = ev.read_events(run_dir / ev.EVENTS_FILE)
    return {e.generation: (e.best, e.mean, e.worst, e.elite_id) for e in events
            if isinstance(e, ev.GenerationCompleted)}


def _final(run_dir: Path):
    events, _ = ev.read_events(run_dir / ev.EVENTS_FILE)
    assert events[-1].kind == "run_finished" and events[-1].status == "completed"
    best = events[-1].best_id
    return load_learngene(next((run_dir / "learngenes").glob(f"best-g*-i{best}.safetensors")))


def _engine(run_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.Popen([sys.executable, "-m", "engine.run.daemon", str(run_dir)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=run_dir)


def _lines(log: Path) -> int:
    try:
        return log.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_kills_and_resumes_end_like_the_uninterrupted_run(finished_run, tmp_path, seed):
    rng = random.Random(seed)
    total = _lines(finished_run / ev.EVENTS_FILE)
    run = create_run_dir(load_config(None, TINY), tmp_path, f"victim{seed}")
    log = run / ev.EVENTS_FILE
    kills = 0
    for attempt in range(4):
        proc = _engine(run)
        # the kill point: anywhere from the engine still starting (0 events) to its last events; one kill per
        # seed keeps the test near 10 s of CPU per seed (each engine start imports torch)
        target = rng.randint(0, total - 2) if attempt == 0 else None
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if target is not None and _lines(log) >= target:
                time.sleep(rng.random() * 0.05)  # land anywhere: mid-lifetime, mid-checkpoint, mid-line
                proc.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.005)
        proc.wait(timeout=120)
        if proc.returncode == 0:
            break
    assert proc.returncode == 0
    assert kills == 1
    assert _history(run) == _history(finished_run)
    gene, ref = _final(run), _final(finished_run)
    assert gene[0].channels == ref[0].channels and gene[1]["fitness"] == ref[1]["fitness"]
    assert all(torch.equal(gene[0].tensors[k], ref[0].tensors[k]) for k in ref[0].tensors)
    assert not list(run.rglob(".*.tmp*")), "orphaned temporary files"
