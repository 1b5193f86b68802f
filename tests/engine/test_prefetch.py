"""The next generation is prepared while one trains, with the same results as without, and the timing split."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
import torch
from safetensors import safe_open

import engine.trainers.population.trainer as pt
from engine import events as ev
from engine.config import load_config
from engine.run.checkpoint import latest_checkpoint
from engine.run.runner import create_run_dir, run_in_dir

TINY_POP = [
    "evolution.population=4", "evolution.generations=3", "lifetime.steps=4", "lifetime.batch_size=8",
    "data.glyph_classes=20", "data.glyph_images_per_class=20", "model.width=0.25", "run.device='cpu'",
    "run.threads=1", "run.trainer='population'", "learngene.nongene_init='scaled'",
]
#: How long each stubbed "training" lasts on top of the real (tiny) one.
TRAIN_S = 0.4


def _run(tmp_path, monkeypatch, prefetch: bool, name: str):
    monkeypatch.setenv("GTL_PREFETCH", "1" if prefetch else "0")
    trains: list[tuple[float, float]] = []
    prepares: list[tuple[float, float, str, list[int]]] = []
    fresh_used: list[int] = []
    real_train, real_prepare, real_born = pt.train_population, pt.PopulationTrainer.prepare, pt.born

    def slow_train(*args, **kwargs):  # the GPU's time, stood in for by a sleep beside the real tiny training
        t0 = time.perf_counter()
        time.sleep(TRAIN_S)
        out = real_train(*args, **kwargs)
        trains.append((t0, time.perf_counter()))
        return out

    def recorded_prepare(self, upcoming):
        t0 = time.perf_counter()
        real_prepare(self, upcoming)
        prepares.append((t0, time.perf_counter(), threading.current_thread().name, [gid for gid, _ in upcoming]))

    def counted_born(ctx, genome, fresh=None):
        if fresh is not None:
            fresh_used.append(genome.id)
        return real_born(ctx, genome, fresh)

    monkeypatch.setattr(pt, "train_population", slow_train)
    monkeypatch.setattr(pt.PopulationTrainer, "prepare", recorded_prepare)
    monkeypatch.setattr(pt, "born", counted_born)
    run_dir = create_run_dir(load_config(None, TINY_POP), tmp_path, name)
    assert run_in_dir(run_dir).status == "completed"
    events, _ = ev.read_events(run_dir / ev.EVENTS_FILE)
    return run_dir, events, trains, prepares, fresh_used


def _genes(run_dir) -> dict[str, torch.Tensor]:
    with safe_open(str(latest_checkpoint(run_dir)), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    try:
        on = _run(tmp_path_factory.mktemp("on"), mp, True, "on")
        mp.undo()
        off = _run(tmp_path_factory.mktemp("off"), mp, False, "off")
    finally:
        mp.undo()
    return on, off


def test_next_generation_is_prepared_while_one_trains(both):
    (_, events, trains, prepares, fresh_used), _ = both
    assert len(trains) == 3 and len(prepares) == 2  # generations 1 and 2 prepared ahead, generation 0 not
    for g, (p0, p1, thread, ids) in enumerate(prepares):
        t0, t1 = trains[g]
        assert thread.startswith("gtl-prefetch")
        assert p0 < t1 and t0 < p1, f"preparing generation {g + 1} did not overlap training generation {g}"
        assert p1 <= trains[g + 1][0], "a generation trained before its preparation ended"
        assert ids == list(range(4 * (g + 1), 4 * (g + 2)))
    assert sorted(fresh_used) == list(range(4, 12))  # every later birth used its prepared network


def test_results_are_identical_with_and_without_prefetch(both):
    (run_on, ev_on, *_), (run_off, ev_off, _, prepares_off, fresh_off) = both
    assert prepares_off == [] and fresh_off == []

    def fitness(events):
        return [(e.id, e.fitness, e.train_loss) for e in events if isinstance(e, ev.IndividualEvaluated)]

    def children(events):
        return [(e.id, e.parent, e.task, e.channels, e.mutations) for e in events if isinstance(e, ev.IndividualBorn)]

    assert fitness(ev_on) == fitness(ev_off)
    assert children(ev_on) == children(ev_off)
    a, b = _genes(run_on), _genes(run_off)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_generation_completed_carries_the_timing_split(both):
    (_, events, trains, *_), _ = both
    done = [e for e in events if isinstance(e, ev.GenerationCompleted)]
    assert len(done) == 3
    for e in done:
        t = e.timing
        assert set(t) == {"wall", "train", "host", "wait"}  # no peak_mem / gpu_util off CUDA
        assert t["wall"] == pytest.approx(t["train"] + t["host"] + t["wait"], abs=2e-3)
        assert t["train"] >= TRAIN_S and t["train"] <= t["wall"]
    # later generations: their births were prepared, so host work is a small share of the stubbed training
    assert all(e.timing["train"] / e.timing["wall"] > 0.5 for e in done[1:])


def test_logs_without_timing_still_replay():
    line = ('{"kind":"generation_completed","v":1,"seq":5,"t":1.0,"generation":0,"best":0.5,"mean":0.4,'
            '"worst":0.3,"std":0.1,"diversity":0.2,"best_id":1,"elite_id":1,"elite_fitness":0.5,"seconds":2.0,'
            '"images_per_s":100.0}')
    e = ev.parse_line(line)
    assert isinstance(e, ev.GenerationCompleted) and e.timing is None
    again = ev.parse_line(dataclasses.replace(e, timing={"wall": 1.0}).to_json())
    assert again.timing == {"wall": 1.0}
