"""RunState folds events into what the monitor shows; the sources read logs safely."""

from __future__ import annotations

import dataclasses

import pytest
from fakes import FakeEngine, make_run, short_dir

from engine.events import (
    EVENTS_FILE,
    GenerationCompleted,
    GenerationStarted,
    IndividualBorn,
    IndividualEvaluated,
    IndividualStarted,
    Paused,
    RunStarted,
)
from gtl_tui.scripted import scripted_run, write_events
from gtl_tui.sources import LocalEventSource, ReplaySource, run_dir_problem
from gtl_tui.state import DONE, TRAINING, WAITING, RunState


def folded(events, **kw) -> RunState:
    st = RunState(**kw)
    st.apply_all(events)
    return st


def test_a_completed_run_folds_into_stats_ranks_and_lineage():
    events = scripted_run(population=6, generations=4)
    st = folded(events)
    assert st.status == "finished"
    assert st.generations_done == 4 and sorted(st.stats) == [0, 1, 2, 3]
    assert len(st.individuals) == 24
    for g, stats in st.stats.items():
        fits = [st.individuals[i].fitness for i in st.by_generation[g]]
        assert stats.best == max(fits) and stats.worst == min(fits)
        ranks = sorted(st.individuals[i].rank for i in st.by_generation[g])
        assert ranks == [1, 2, 3, 4, 5, 6]
        best = max(st.by_generation[g], key=lambda i: st.individuals[i].fitness)
        assert st.individuals[best].rank == 1
    # every mutation logged at birth is in the history, with its generation
    logged = [(e.id, m["layer"], m["op"]) for e in events if isinstance(e, IndividualBorn) for m in e.mutations]
    assert [(m.individual, m.layer, m.op) for m in st.mutations] == logged
    assert logged, "the scripted run mutates"
    # lineage: from generation 0 down, each a child of the one before
    leaf = st.by_generation[3][0]
    path = st.lineage(leaf)
    assert [st.individuals[i].generation for i in path] == [0, 1, 2, 3]
    for parent, child in zip(path, path[1:], strict=False):
        assert st.individuals[child].parent == parent and child in st.children[parent]
    assert leaf in st.descendants(path[0])
    assert len(st.exports) == 1 and st.exports[0].reason == "final"
    assert st.eta is None and st.elapsed == pytest.approx(events[-1].t - events[0].t)


def test_extinct_branches_and_gene_diff():
    st = folded(scripted_run(population=6, generations=4))
    gen0 = st.by_generation[0]
    alive = {i for i in gen0 if not st.is_extinct(i)}
    assert alive and alive != set(gen0), "some gen-0 lines live on, some die out"
    for i in gen0:
        has_living = any(st.individuals[d].generation == 3 for d in st.descendants(i))
        assert st.is_extinct(i) == (not has_living)
    child = next(i for i in st.by_generation[1] if st.individuals[i].mutations)
    rec, parent = st.individuals[child], st.individuals[st.individuals[child].parent]
    for layer, (inherited, added, dropped) in enumerate(st.gene_diff(child)):
        assert inherited | added == set(rec.channels[layer])
        assert inherited | dropped == set(parent.channels[layer])
        muts = [m for m in rec.mutations if m["layer"] == layer]
        assert added == {c for m in muts for c in m["added"]}
        assert dropped == {c for m in muts for c in m["removed"]}


def test_live_progress_eta_and_individual_states():
    events = scripted_run(population=6, generations=4, live_evaluated=2)
    now = events[-1].t + 1.0
    st = folded(events, clock=lambda: now)
    assert st.status == "running"
    assert st.current_generation == 3 and st.evaluated_now == 2
    states = [st.individuals[i].state for i in st.by_generation[3]]
    assert states == [DONE, DONE, TRAINING, WAITING, WAITING, WAITING]
    assert st.elapsed == pytest.approx(now - events[0].t)
    per_gen = sum(s.seconds for s in st.stats.values()) / 3
    in_gen = now - next(e.t for e in events if isinstance(e, GenerationStarted) and e.generation == 3)
    assert st.eta == pytest.approx(per_gen - in_gen)
    assert st.images_per_s and st.images_per_s > 0
    st.set_engine_alive(False)
    assert st.status == "crashed"


def test_pause_request_reads_pausing_until_the_engine_confirms():
    st = folded(scripted_run(live_evaluated=2))
    st.request("pause")
    assert st.status == "pausing"
    st.apply(Paused(generation=3, seq=999, t=0.0))
    assert st.status == "paused"
    st.request("pause")  # a repeated pause while paused changes nothing
    assert st.status == "paused"
    st.request("resume")
    assert st.status == "resuming"


def test_a_resumed_run_replaces_the_partial_generation():
    events = scripted_run(population=6, generations=4, live_evaluated=3)
    st = folded(events)
    assert st.evaluated_now == 3
    old_gen3 = list(st.by_generation[3])
    seq = events[-1].seq + 1
    first = events[0]
    assert isinstance(first, RunStarted)
    again = [dataclasses.replace(first, resumed_from=3, seq=seq, t=first.t + 500)]
    again.append(GenerationStarted(generation=3, seq=seq + 1, t=first.t + 501))
    born = [e for e in events if isinstance(e, IndividualBorn) and e.generation == 3]
    for k, e in enumerate(born):  # the engine logs the generation again, with new ids
        again.append(dataclasses.replace(e, id=100 + k, seq=seq + 2 + k, t=first.t + 502))
    st.apply_all(again[:1])
    assert st.stats.keys() == {0, 1, 2}
    assert all(st.individuals[i].fitness is None for i in old_gen3)
    assert st.evaluated_now == 0
    assert st.take_changes().reset
    st.apply_all(again[1:])
    assert st.by_generation[3] == [100 + k for k in range(6)]
    assert not set(old_gen3) & st.individuals.keys()
    assert {m.individual for m in st.mutations if m.generation == 3} <= set(range(100, 106))
    for k, parent in enumerate(e.parent for e in born):
        assert 100 + k in st.children[parent]
        assert not set(old_gen3) & set(st.children[parent])
    st.apply(IndividualStarted(id=100, generation=3, seq=seq + 20, t=first.t + 503))
    st.apply(IndividualEvaluated(id=100, generation=3, fitness=0.5, seconds=1.0, seq=seq + 21, t=first.t + 504))
    assert st.evaluated_now == 1 and st.status == "running"


def test_the_feed_and_changes_stay_bounded():
    st = RunState(feed_size=10)
    st.apply_all(scripted_run(population=6, generations=3))
    assert len(st.feed) == 10
    ch = st.take_changes()
    assert ch.feed > 10 and ch.stats and ch.generation
    assert not st.take_changes().any()


def test_follower_skips_a_torn_line_until_it_is_complete(tmp_path):
    events = scripted_run(population=3, generations=1)
    write_events(tmp_path, events[:5])
    line = events[5].to_json()
    with open(tmp_path / EVENTS_FILE, "a") as f:
        f.write(line[:20])
    src = LocalEventSource(tmp_path)
    assert [e.seq for e in src.poll()] == [0, 1, 2, 3, 4]
    assert src.poll() == []
    with open(tmp_path / EVENTS_FILE, "a") as f:
        f.write(line[20:] + "\n" + "not json\n")
    assert [e.seq for e in src.poll()] == [5]


def test_engine_alive_follows_the_engine_lock():
    with short_dir() as d:
        make_run(d, live_evaluated=1)
        src = LocalEventSource(d, pid_check_interval=0.0)
        assert src.engine_alive() is None  # no pid file yet
        with FakeEngine(d):
            assert src.engine_alive() is True
        assert src.engine_alive() is False  # pid file left behind, lock released: crashed


def test_replay_source_plays_at_speed_and_steps_by_generation():
    events = scripted_run(population=3, generations=3)
    wall = [0.0]
    src = ReplaySource(events, speed=1.0, max_gap=1.0, wall=lambda: wall[0])
    assert [e.seq for e in src.poll()] == [0]
    wall[0] += 0.06
    played = src.poll()
    assert played and all(e.t - events[0].t <= 0.06 + 1e-9 for e in played)
    src.toggle()
    wall[0] += 100
    assert src.poll() == []
    src.toggle()
    src.set_speed(1e6)
    wall[0] += 1
    rest = src.poll()
    assert src.done and len(played) + len(rest) + 1 == len(events)
    starts = [k for k, e in enumerate(events) if isinstance(e, GenerationStarted)]
    src.seek(starts[1] + 3)
    assert src.generation_bound(1) == starts[2]
    assert src.generation_bound(-1) == starts[1]
    src.seek(starts[1])
    assert src.generation_bound(-1) == starts[0]


def test_run_dir_problem_names_the_problem(tmp_path):
    assert "no such run directory" in run_dir_problem(tmp_path / "nope")
    assert "no events.jsonl" in run_dir_problem(tmp_path)
    make_run(tmp_path)
    assert run_dir_problem(tmp_path) is None


def test_folding_a_big_log_keeps_every_individual():
    # Its speed is measured by the bench (python -m gtl_tui.bench_monitor: fold), not asserted on a shared CI box.
    events = scripted_run(population=200, generations=6)  # ~4,000 events
    st = folded(events)
    assert len(st.individuals) == 1200 and st.generations_done == 6


def test_a_finished_run_continued_for_more_generations_runs_again():
    """`run --resume RUN --generations N` logs run_started(resumed_from=done, generations=N) after run_finished:
    the monitor shows the run running again, with the new length and every completed generation kept."""
    events = scripted_run(population=6, generations=3)
    seq, t = events[-1].seq + 1, events[-1].t + 60
    st = folded(events, clock=lambda: t + 5)
    assert st.status == "finished" and st.generations == 3 and st.stats.keys() == {0, 1, 2}
    first = events[0]
    st.apply_all([dataclasses.replace(first, resumed_from=3, generations=5, seq=seq, t=t),
                  GenerationStarted(generation=3, seq=seq + 1, t=t + 1)])
    assert st.status == "running" and st.generations == 5 and st.generations_done == 3
    assert st.stats.keys() == {0, 1, 2} and st.eta is not None and st.eta > 0


def test_the_header_shows_the_timing_split_when_the_log_has_one():
    from gtl_tui.widgets.header import RunHeader

    events = scripted_run(population=4, generations=2)
    plain = RunHeader.render_state(folded(events), width=140).plain
    assert "train " not in plain and "mem " not in plain  # an old log: nothing invented
    done = [i for i, e in enumerate(events) if isinstance(e, GenerationCompleted)]
    events[done[-1]] = dataclasses.replace(events[done[-1]], timing={
        "wall": 5.0, "train": 4.8, "host": 0.15, "wait": 0.05, "peak_mem": 7.5 * 2**30, "gpu_util": 97.0})
    st = folded(events)
    assert st.last_timing["train"] == 4.8
    plain = RunHeader.render_state(st, width=140).plain
    assert "train 96%" in plain and "mem 7.5G" in plain and "gpu 97%" in plain
    assert "train 96%" not in RunHeader.render_state(st, width=80).plain  # narrow: the essentials only
