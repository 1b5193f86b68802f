"""The Ray backend on a local Ray of 2 CPU workers: same fitness history as the local backend, survives a
worker killed mid-generation, honours pause and stop. Ray binds to loopback only and starts no dashboard."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
import torch

ray = pytest.importorskip("ray")

from engine import events as ev  # noqa: E402
from engine.config import load_config  # noqa: E402
from engine.run.runner import create_run_dir, run_in_dir  # noqa: E402
from engine.run.signals import RunSignals  # noqa: E402
from engine.trainers.ray import start_local_ray  # noqa: E402

pytestmark = pytest.mark.slow

TINY = [
    "evolution.population=4", "evolution.generations=2", "lifetime.steps=5", "lifetime.batch_size=16",
    "data.glyph_classes=20", "data.glyph_images_per_class=20", "model.width=0.25", "run.device='cpu'",
]
RAY = [*TINY, "run.backend='ray'", "run.ray_workers=2"]
#: What must be equal between backends (seconds and throughput are not).
SAME = ("generation", "best", "mean", "worst", "std", "diversity", "best_id", "elite_id", "elite_fitness")


def history(run_dir: Path) -> list[tuple]:
    events, _ = ev.read_events(run_dir / ev.EVENTS_FILE)
    return [tuple(getattr(e, k) for k in SAME) for e in events if isinstance(e, ev.GenerationCompleted)]


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray for the module (starting one takes seconds): 2 CPUs, loopback only, no dashboard."""
    if ray.is_initialized():
        ray.shutdown()
    start_local_ray(2, gpus=0)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_history(tmp_path_factory) -> list[tuple]:
    """The reference: the local backend with 1 torch thread, as each Ray worker uses."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_dir = create_run_dir(load_config(None, TINY), tmp_path_factory.mktemp("runs"), "local")
        assert run_in_dir(run_dir).status == "completed"
    finally:
        torch.set_num_threads(threads)
    return history(run_dir)


def test_ray_binds_to_loopback(ray_session):
    nodes = [n for n in ray.nodes() if n["Alive"]]
    assert [n["NodeManagerAddress"] for n in nodes] == ["127.0.0.1"]
    assert ray.cluster_resources()["CPU"] == 2


def test_same_history_as_local_backend(ray_session, local_history, tmp_path):
    run_dir = create_run_dir(load_config(None, RAY), tmp_path, "ray")
    assert run_in_dir(run_dir).status == "completed"
    assert len(local_history) == 2
    assert history(run_dir) == local_history
    events, _ = ev.read_events(run_dir / ev.EVENTS_FILE)
    started = next(e for e in events if isinstance(e, ev.RunStarted))
    assert (started.trainer, started.backend) == ("ray", "ray")
    assert not [e for e in events if isinstance(e, ev.Warning_)]
    assert ray.is_initialized()  # the trainer did not shut down a Ray it did not start


def test_worker_killed_mid_generation(ray_session, local_history, tmp_path):
    """SIGKILL the worker that was just given individual 2: it is re-run elsewhere, nothing is lost."""
    run_dir = create_run_dir(load_config(None, RAY), tmp_path, "ray-kill")
    evolution = {}
    killed: list[int] = []

    def kill_worker(e: ev.Event) -> None:
        if isinstance(e, ev.IndividualStarted) and e.id == 2 and not killed:
            pid = evolution["evo"].trainer.running()[e.id]
            assert pid != os.getpid()
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    finished = run_in_dir(run_dir, listeners=[kill_worker], on_evolution=lambda evo: evolution.update(evo=evo))
    assert finished.status == "completed" and killed
    assert history(run_dir) == local_history
    events, _ = ev.read_events(run_dir / ev.EVENTS_FILE)
    warnings = [e.message for e in events if isinstance(e, ev.Warning_)]
    assert len(warnings) == 1 and f"Ray worker {killed[0]}" in warnings[0]
    assert "re-running individual 2" in warnings[0]
    evaluated = [e.id for e in events if isinstance(e, ev.IndividualEvaluated)]
    assert sorted(evaluated) == list(range(8))  # each individual reported once
    assert [e.id for e in events if isinstance(e, ev.IndividualStarted)].count(2) == 1


def test_pause_holds_new_work_and_stop_ends_the_run(ray_session, tmp_path):
    """Paused after the first result: nothing new is sent out; a stop then cancels what runs and ends the run."""
    run_dir = create_run_dir(load_config(None, RAY), tmp_path, "ray-pause")
    signals = RunSignals()
    evolution = {}

    def steer(e: ev.Event) -> None:
        if isinstance(e, ev.IndividualEvaluated) and not signals.pause_requested:
            signals.request_pause()
        elif isinstance(e, ev.Paused):
            threading.Timer(2.0, signals.request_stop).start()

    finished = run_in_dir(run_dir, signals=signals, listeners=[steer],
                          on_evolution=lambda evo: evolution.update(evo=evo))
    assert finished.status == "stopped" and finished.generations_done == 0
    events, _ = ev.read_events(run_dir / ev.EVENTS_FILE)
    k = [e.kind for e in events]
    assert "paused" in k and "individual_started" not in k[k.index("paused"):]
    assert evolution["evo"].trainer.workers == [] and evolution["evo"].trainer.running() == {}
