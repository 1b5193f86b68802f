from __future__ import annotations

import json

from engine import events as ev


def sample_events():
    return [
        ev.GenerationStarted(generation=0),
        ev.IndividualBorn(id=1, generation=0, parent=None, task=[1, 2], task_names=["a", "b"], mutations=[],
                          gene_sizes=[3], layer_widths=[8], channels=[[0, 1, 2]], fraction=0.2),
        ev.IndividualEvaluated(id=1, generation=0, fitness=0.5, seconds=1.0),
        ev.Tournament(generation=0, group=[1, 2], fitness=[0.5, 0.4], winner=1),
        ev.GenerationCompleted(generation=0, best=0.5, mean=0.45, worst=0.4, std=0.05, diversity=0.3, best_id=1,
                               elite_id=1, elite_fitness=0.5, seconds=2.0, images_per_s=100.0),
        ev.RunFinished(status="completed", best_id=1, best_fitness=0.5),
    ]


def test_round_trip_and_seq(tmp_path):
    path = tmp_path / ev.EVENTS_FILE
    w = ev.EventWriter(path)
    written = [w.emit(e) for e in sample_events()]
    w.close()
    read, offset = ev.read_events(path)
    assert read == written
    assert [e.seq for e in read] == list(range(len(read)))
    assert offset == path.stat().st_size
    for line in path.read_text().splitlines():
        d = json.loads(line)
        assert d["v"] == ev.SCHEMA_VERSION and d["kind"].islower() and "t" in d
    # a second writer (a resumed run) continues the sequence
    w2 = ev.EventWriter(path)
    e = w2.emit(ev.GenerationStarted(generation=1))
    w2.close()
    assert e.seq == len(written)


def test_torn_last_line_is_skipped_then_read(tmp_path):
    path = tmp_path / ev.EVENTS_FILE
    w = ev.EventWriter(path)
    for e in sample_events()[:3]:
        w.emit(e)
    w.close()
    full = ev.GenerationStarted(generation=1, seq=3, t=1.0).to_json()
    with open(path, "a") as f:
        f.write(full[:10])  # a writer killed mid-line
    follower = ev.EventFollower(path)
    assert len(follower.poll()) == 3
    assert follower.poll() == []
    with open(path, "a") as f:
        f.write(full[10:] + "\n")
    assert follower.poll() == [ev.GenerationStarted(generation=1, seq=3, t=1.0)]


def test_writer_repairs_torn_tail(tmp_path):
    path = tmp_path / ev.EVENTS_FILE
    path.write_text(ev.GenerationStarted(generation=0, seq=0, t=1.0).to_json() + "\n" + '{"kind": "gen')
    w = ev.EventWriter(path)
    w.emit(ev.GenerationStarted(generation=1))
    w.close()
    events, _ = ev.read_events(path)
    assert [e.generation for e in events] == [0, 1]
    assert events[-1].seq == 1


def test_invalid_lines_are_skipped(tmp_path):
    path = tmp_path / ev.EVENTS_FILE
    path.write_text('not json\n[1,2]\n{"kind":"nope"}\n{"kind":"generation_started"}\n'
                    '{"kind":"generation_started","generation":2,"extra":1,"seq":0,"t":0}\n')
    events, _ = ev.read_events(path)
    assert events == [ev.GenerationStarted(generation=2, seq=0, t=0)]
