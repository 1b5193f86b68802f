"""The run directory's liveness: decided by the lock on ``engine.pid``, never by a pid alone (issue 17)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import events as ev
from engine.rundir import (
    CONFIG_FILE,
    EVENTS_FILE,
    RunDirError,
    acquire_lock,
    holds_lock,
    live_engine_pid,
    release_lock,
)
from gtl_tui.runs import read_run, resume_problem

REPO = Path(__file__).resolve().parents[2]


def started(pid: int) -> ev.RunStarted:
    return ev.RunStarted(name="r", config={}, config_hash="0", device="cpu", trainer="sequential",
                         backend="local", arch="conv4", population=4, generations=3, version="0", pid=pid)


def make_run(tmp_path: Path, pid: int) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / CONFIG_FILE).write_text("[evolution]\npopulation = 4\ngenerations = 3\n")
    w = ev.EventWriter(run / EVENTS_FILE)
    w.emit(started(pid))
    w.close()
    return run


def holder(run: Path, *, log_pid: bool = False) -> subprocess.Popen:
    """Another process that takes the run's lock (and logs run_started with its pid, as a headless run does)."""
    code = ("import sys, time\nfrom pathlib import Path\nfrom engine.rundir import acquire_lock\n"
            "from engine import events as ev\n"
            "run = Path(sys.argv[1])\nassert acquire_lock(run) is not None\n")
    if log_pid:
        code += ("import os\nw = ev.EventWriter(run / ev.EVENTS_FILE)\n"
                 "w.emit(ev.RunStarted(name='r', config={}, config_hash='0', device='cpu', trainer='sequential', "
                 "backend='local', arch='conv4', population=4, generations=3, version='0', pid=os.getpid()))\n"
                 "w.close()\n")
    code += "print('ready', flush=True)\ntime.sleep(60)\n"
    proc = subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_live_pid_in_the_log_without_the_lock_is_a_crashed_run(tmp_path):
    # run_started names a live, unrelated process (here: this test), as after a reboot or on a busy server
    run = make_run(tmp_path, os.getpid())
    info = read_run(run)
    assert info.state == "crashed" and info.pid is None and not info.live
    assert resume_problem(run) is None


def test_a_killed_unreaped_engine_is_not_running(tmp_path):
    run = make_run(tmp_path, 0)
    proc = holder(run, log_pid=True)
    try:
        assert read_run(run).state == "running"  # holds the lock, no control socket: a headless run
        proc.kill()
        deadline = time.monotonic() + 5
        while Path(f"/proc/{proc.pid}/stat").read_text().split()[2] != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert Path(f"/proc/{proc.pid}/stat").read_text().split()[2] == "Z"  # not reaped yet
        info = read_run(run)
        assert info.state == "crashed" and not info.live
    finally:
        proc.kill()
        proc.wait()


def test_run_in_dir_refuses_a_run_directory_locked_by_another_process(tmp_path, tiny):
    from engine.config import load_config
    from engine.run.runner import create_run_dir, run_in_dir

    run = create_run_dir(load_config(None, tiny), tmp_path, "locked")
    proc = holder(run)
    try:
        with pytest.raises(RunDirError, match=f"another engine \\(pid {proc.pid}\\) is running"):
            run_in_dir(run)
        assert not (run / EVENTS_FILE).exists() or not (run / EVENTS_FILE).read_text()
        assert live_engine_pid(run) == proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_the_lock_is_held_by_whoever_runs_in_the_directory(tmp_path):
    run = make_run(tmp_path, 0)
    assert not holds_lock(run)
    assert acquire_lock(run) is not None and holds_lock(run)
    assert live_engine_pid(run) == os.getpid()
    release_lock(run)
    assert not holds_lock(run) and live_engine_pid(run) is None
