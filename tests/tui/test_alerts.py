"""The bell: rung when a watched run ends or stalls, never for what ended before the monitor opened."""

from __future__ import annotations

from fakes import make_run

from gtl_tui.alerts import MIN_STALL_S, Alerts
from gtl_tui.scripted import scripted_run, write_events


def test_endings_ring_once_and_only_when_seen_happening():
    a = Alerts()
    assert a.update("finished", True, 0.0) == []  # attached to a run that had already ended
    b = Alerts()
    assert b.update("running", True, 0.0) == []
    assert b.update("running", True, 1.0) == []
    assert b.update("crashed", False, 2.0) == ["the run crashed"]
    assert b.update("crashed", False, 3.0) == []


def test_a_stall_rings_once_after_several_usual_gaps_and_not_while_paused():
    a = Alerts()
    t = 0.0
    for _ in range(20):  # an event every 20 s
        assert a.update("running", True, t) == []
        t += 20.0
    limit = a.stall_after()
    assert limit == 6 * 20.0
    assert a.update("running", False, t - 20 + limit - 1) == []
    rung = a.update("running", False, t - 20 + limit + 1)
    assert len(rung) == 1 and "stalled" in rung[0]
    assert a.update("running", False, t + 1000) == []  # once
    t += 2000
    assert a.update("running", True, t) == []  # events flow again ...
    for k in range(1, 100):  # ... then a long pause is no stall
        assert a.update("paused", False, t + k * 60) == []
    assert a.update("running", False, t + 100 * 60 + 1) == []
    assert Alerts().stall_after() == MIN_STALL_S


async def test_the_monitor_rings_when_the_run_it_watches_finishes(tmp_path):
    from gtl_tui.app import MonitorApp

    events = scripted_run(population=3, generations=1)
    run = make_run(tmp_path / "r", population=3, generations=1, live_evaluated=1)
    app = MonitorApp(run, refresh_interval=0.05)
    rings: list[int] = []
    async with app.run_test(size=(100, 30)) as pilot:
        app.bell = lambda: rings.append(1)
        await pilot.pause(0.4)
        assert rings == []
        live = (run / "events.jsonl").read_text().count("\n")
        write_events(run, events[live:])
        for _ in range(40):
            await pilot.pause(0.1)
            if rings:
                break
        assert rings == [1] and app.state.status == "finished"
