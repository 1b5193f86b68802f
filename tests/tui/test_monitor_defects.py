"""Monitor defects found when it was tried as a new user would; each test failed before its fix."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from fakes import make_run

from engine.events import RunStarted
from gtl_tui.scripted import scripted_run, write_events
from gtl_tui.state import RunState
from gtl_tui.widgets.header import RunHeader


def _resumed_run_events():
    events = scripted_run(population=4, generations=8, name="quickstart-20261130-204912", live_evaluated=2)
    return [dataclasses.replace(e, resumed_from=4) if isinstance(e, RunStarted) else e for e in events]


def test_header_lines_fit_the_width_so_the_state_line_is_never_pushed_out():
    st = RunState()
    st.apply_all(_resumed_run_events())
    for width in (60, 78, 80, 100, 120):
        top, line = RunHeader.render_state(st, width=width).split("\n")
        assert top.cell_len <= width and line.cell_len <= width, width
        assert "RUNNING" in line.plain and " done" in line.plain and "ETA" in line.plain


async def test_resumed_run_at_80_columns_shows_state_generation_and_eta(tmp_path):
    from gtl_tui.app import MonitorApp

    run = make_run(tmp_path / "r", population=4, generations=8)
    write_events(run, _resumed_run_events())
    app = MonitorApp(run, refresh_interval=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.5)
        header = app.query_one(RunHeader)
        rows = [header.render_line(y).text for y in range(header.size.height)]
        shown = "\n".join(rows)
        assert "RUNNING" in shown and "ETA" in shown and " done" in shown, shown


def test_a_failed_export_is_named_once(tmp_path):
    """The engine gives the reason; the client names the command: never `export failed: export failed: ...`."""
    from fakes import short_dir

    from engine.control.client import ControlClient
    from engine.control.server import ControlServer
    from engine.run.signals import RunSignals

    class Holding:
        def export(self, individual, out, reason):
            raise ValueError(f"individual {individual} is not held")

    with short_dir() as d, ControlServer(d, RunSignals()) as server:
        server.set_evolution(Holding())
        with ControlClient(d) as c:
            reply = c.raw({"cmd": "export", "individual": 10})
    assert reply["ok"] is False and reply["error"] == "individual 10 is not held"


async def test_lineage_header_counts_generations_not_nodes(tmp_path):
    from gtl_tui.app import MonitorApp
    from gtl_tui.widgets.lineage import LineageTree

    run = make_run(tmp_path / "r", population=4, generations=3)
    app = MonitorApp(run, refresh_interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.5)
        tree = app.query_one(LineageTree)
        for gen, back in ((1, "1 generation back"), (2, "2 generations back"), (0, "0 generations back")):
            ind = app.state.by_generation[gen][0]
            tree.show(app.state, ind)
            assert f"lineage of #{ind}: {back} to" in str(tree.root.label)


async def test_the_newest_result_gets_its_rank_without_waiting_for_the_next(tmp_path):
    from engine.events import IndividualEvaluated
    from gtl_tui.app import MonitorApp
    from gtl_tui.widgets.population import PopulationTable

    events = scripted_run(population=4, generations=1)
    evaluated = [n for n, e in enumerate(events) if isinstance(e, IndividualEvaluated)]
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.toml").write_text("[run]\nseed = 0\n")
    write_events(run, events[:evaluated[0] + 1])
    app = MonitorApp(run, refresh_interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        await pilot.pause(0.3)
        write_events(run, events[evaluated[0] + 1:evaluated[1] + 1])  # a second result, inside RANK_INTERVAL
        newest = events[evaluated[1]].id
        table = app.query_one(PopulationTable)
        end = asyncio.get_running_loop().time() + 6.0
        while asyncio.get_running_loop().time() < end:
            await pilot.pause(0.2)
            index = table.get_row_index(newest)
            if index is not None and app.state.individuals[newest].rank is not None:
                break
        assert app.state.individuals[newest].rank is not None, "the newest result never got a rank"
        assert table._row(newest)[5] != "-"


def test_ls_never_cuts_a_run_name_on_a_narrow_terminal(tmp_path):
    import os
    import subprocess
    import sys

    names = ["quickstart-20261130-204912", "cifar-fs-conv4-cpu-seed2-20261130-211503"]
    for n in names:
        make_run(tmp_path / n, population=3, generations=2)
    for cols in (60, 80, 120):
        out = subprocess.run([sys.executable, "-m", "gtl_tui.cli", "ls", str(tmp_path)], capture_output=True,
                             text=True, env={**os.environ, "COLUMNS": str(cols)}, check=True).stdout
        for n in names:
            assert n in out, (cols, out)
        assert "STATE" in out
        assert max(len(line) for line in out.splitlines()) <= cols
        if cols >= 120:
            assert "LAST EVENT" in out and "BEST FITNESS" in out


def _fake_ssh(tmp_path):
    """An `ssh` on PATH that runs the remote command line here (its last argument), as sshd would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ssh = bin_dir / "ssh"
    ssh.write_text('#!/bin/sh\nfor last; do :; done\nexec sh -c "$last"\n')
    ssh.chmod(0o755)
    return bin_dir


def test_attach_over_ssh_stops_in_one_line_when_a_retry_cannot_help(tmp_path):
    import os
    import subprocess
    import sys
    import time

    bin_dir = _fake_ssh(tmp_path)
    run = make_run(tmp_path / "r", population=3, generations=1)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    cases = [
        ({"GTL_TUI_REMOTE_CMD": "/nowhere/gtl-tui"}, f"ssh://box{run}", "--remote-cmd"),
        ({"GTL_TUI_REMOTE_CMD": f"{sys.executable} -m gtl_tui.cli"}, f"ssh://box{tmp_path}/missing",
         "missing"),
    ]
    for extra, url, expect in cases:
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "gtl_tui.cli", "attach", url], capture_output=True, text=True,
                              env={**env, **extra}, timeout=60, stdin=subprocess.DEVNULL)
        assert proc.returncode == 2, proc
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and expect in lines[0], proc.stderr
        assert time.monotonic() - t0 < 30


def test_remote_run_makes_no_retry_of_an_unfixable_failure():
    import time

    from gtl_tui.remote.client import RemoteRun

    remote = RemoteRun(lambda off: ["sh", "-c", "echo 'sh: 1: gtl-tui: not found' >&2; exit 127"])
    try:
        assert not remote.wait_connected(10)
        assert remote.fatal is not None and "not found" in remote.fatal and "--remote-cmd" in remote.fatal
        time.sleep(1.5)
        assert remote.reconnects == 0 and remote.status.startswith("failed")
    finally:
        remote.close()


async def test_palette_screenshot_is_saved_in_the_run_directory_and_says_where(tmp_path, monkeypatch):
    from gtl_tui.app import MonitorApp

    monkeypatch.setenv("HOME", str(tmp_path / "no-home"))  # no Downloads folder anywhere
    run = make_run(tmp_path / "r", population=3, generations=1)
    app = MonitorApp(run, refresh_interval=0.05)
    notes: list[str] = []
    async with app.run_test(size=(100, 30)) as pilot:
        original = app.notify
        app.notify = lambda message, **kw: (notes.append(str(message)), original(message, **kw))[1]
        await pilot.pause(0.3)
        app.deliver_screenshot()
        for _ in range(50):
            await pilot.pause(0.1)
            if list((run / "screenshots").glob("*.svg")) and notes:
                break
    shots = list((run / "screenshots").glob("*.svg"))
    assert len(shots) == 1 and shots[0].read_text().startswith("<svg")
    assert any(str(run / "screenshots") in n for n in notes), notes


async def test_event_feed_shows_wall_clock_times_and_filters_by_text(tmp_path):
    import time as _time

    from gtl_tui.app import MonitorApp
    from gtl_tui.widgets.feed import EventFeed

    run = make_run(tmp_path / "r", population=4, generations=2)
    app = MonitorApp(run, refresh_interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")
        await pilot.pause(0.3)
        feed = app.query_one(EventFeed)
        lines = [s.text for s in feed.lines]
        first = app.state.started_t
        assert lines[0].startswith(_time.strftime("%H:%M:%S", _time.localtime(first)))
        everything = feed.shown
        await pilot.press("slash", *"tournament", "1", "p")  # typed into the box: no tab switch, no pause
        await pilot.pause(0.3)
        assert app.run_screen.active_tab == "events" and not app.state.pause_requested
        await pilot.press("backspace", "backspace")
        await pilot.pause(0.3)
        shown = [s.text for s in feed.lines]
        assert 0 < len(shown) < everything and all("tournament" in x.lower() for x in shown)
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert feed.shown == everything and feed.has_focus


def test_elapsed_eta_and_throughput_stop_while_paused_and_while_stopped():
    from engine.events import GenerationStarted, Paused, Resumed, RunFinished

    now = [0.0]
    st = RunState(clock=lambda: now[0])
    events = scripted_run(population=4, generations=3, live_evaluated=2)
    st.apply_all(events)
    t_last = max(e.t for e in events)
    now[0] = t_last + 1
    elapsed, eta, ips = st.elapsed, st.eta, st.images_per_s
    g = st.current_generation
    st.apply_all([Paused(generation=g, t=t_last + 1)])
    now[0] = t_last + 1001  # a long pause
    assert st.elapsed == pytest.approx(elapsed) and st.eta == pytest.approx(eta)
    assert st.images_per_s == pytest.approx(ips)
    st.apply_all([Resumed(generation=g, t=t_last + 1001)])
    now[0] = t_last + 1011
    assert st.elapsed == pytest.approx(elapsed + 10)
    # a stop, and a resume a day later: the day is not run time either
    st.apply_all([RunFinished(status="stopped", t=t_last + 1011)])
    frozen = st.elapsed
    restarted = dataclasses.replace(events[0], resumed_from=g, t=t_last + 90000)
    st.apply_all([restarted, GenerationStarted(generation=g, t=t_last + 90000)])
    now[0] = t_last + 90005
    assert st.elapsed == pytest.approx(frozen + 5)


async def test_the_export_toast_keeps_each_path_and_the_scp_line_whole():
    """A path broken mid-word across toast lines cannot be copied: the toast is as wide as its lines need."""
    from fakes import FakeEngine, short_dir
    from textual.widgets._toast import Toast

    from gtl_tui.app import MonitorApp

    with short_dir() as d:
        run = make_run(d / "r", population=3, generations=1, live_evaluated=1)
        with FakeEngine(run):
            app = MonitorApp(run, refresh_interval=0.05)
            async with app.run_test(size=(220, 40), notifications=True) as pilot:
                await pilot.pause(0.3)
                await pilot.press("e")
                for _ in range(50):
                    await pilot.pause(0.1)
                    toasts = list(app.query(Toast))
                    if toasts:
                        break
                assert toasts, [str(n.message) for n in app._notifications]
                toast = toasts[-1]
                shown = [toast.render_line(y).text.strip() for y in range(toast.size.height)]
                path = next(line for line in shown if line.endswith(".safetensors"))
                assert path.startswith(str(run)), shown  # whole, on one line
                assert any(line.startswith("scp ") and line.endswith(" .") for line in shown), shown


def test_remote_exports_land_in_a_per_user_folder_per_host_and_run(monkeypatch, tmp_path):
    from gtl_tui.commands.monitor import default_fetch_dir

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_fetch_dir("gpu-box", "/home/ana/runs/r1") == tmp_path / "data/gtl-tui/learngenes/gpu-box/r1"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_fetch_dir("h", "~/runs/x/") == tmp_path / "home/.local/share/gtl-tui/learngenes/h/x"
