"""Issue 17, item 11: a busy control socket is reported as busy (and retried), not as missing; `run --detach`
with a bad data root exits non-zero with the engine's error."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from fault_helpers import TINY
from typer.testing import CliRunner

from engine import events as ev
from engine.control.server import MAX_CLIENTS, ControlServer
from engine.run.daemon import acquire_lock
from engine.run.signals import RunSignals


@pytest.fixture
def busy_engine():
    """A run whose (real) control server has every client slot taken by idle connections."""
    d = Path(tempfile.mkdtemp(prefix="gtl", dir="/tmp"))
    run = d / "r"
    run.mkdir()
    (run / "config.toml").write_text("[run]\nseed = 0\n")
    ev.EventWriter(run / ev.EVENTS_FILE).close()
    lock = acquire_lock(run)
    server = ControlServer(run, RunSignals())
    server.start()
    idle = []
    for _ in range(MAX_CLIENTS):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(run / "control.sock"))
        idle.append(s)
    time.sleep(0.5)  # let the server accept them all
    try:
        yield run, idle
    finally:
        for s in idle:
            s.close()
        server.close()
        import os

        os.close(lock)
        shutil.rmtree(d, ignore_errors=True)


def test_pause_on_a_busy_engine_says_busy(busy_engine):
    from gtl_tui.cli import app

    run, _ = busy_engine
    r = CliRunner().invoke(app, ["pause", str(run)])
    assert r.exit_code != 0
    assert "busy" in r.output and "no control socket" not in r.output, r.output


def test_pause_retries_while_the_engine_is_busy(busy_engine):
    from gtl_tui.cli import app

    run, idle = busy_engine
    threading.Timer(0.7, idle.pop().close).start()  # a monitor goes away a moment later
    r = CliRunner().invoke(app, ["pause", str(run), "--no-wait"])
    assert r.exit_code == 0, r.output
    assert "pause" in r.output


@pytest.mark.slow
def test_detach_with_a_bad_data_root_exits_non_zero(tmp_path):
    empty = tmp_path / "empty-data"
    empty.mkdir()
    sets = [a for s in [*TINY, "data.dataset='cifar-fs'", f"data.root='{empty}'"] for a in ("--set", s)]
    r = subprocess.run([sys.executable, "-m", "gtl_tui.cli", "run", "--detach", "--runs-dir", str(tmp_path / "runs"),
                        "--name", "bad", *sets], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0, r.stderr
    assert "error" in r.stderr and str(empty) in r.stderr
