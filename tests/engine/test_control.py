"""The control server in the engine: strict request validation, an owner-only socket, paths too long for AF_UNIX.
No engine and no torch: the server is served from this process."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path

import pytest

from engine.control.client import MAX_REQUEST_BYTES, ControlClient, ControlError, send
from engine.control.server import ControlServer
from engine.run.signals import RunSignals
from engine.rundir import SOCKET_NAME


def test_server_validates_requests_and_socket_is_owner_only() -> None:
    run = Path(tempfile.mkdtemp(prefix="gtl", dir="/tmp"))
    try:
        stale = socket.socket(socket.AF_UNIX)  # a stale socket file (nobody listening) is replaced
        stale.bind(str(run / SOCKET_NAME))
        stale.close()
        signals = RunSignals()
        with ControlServer(run, signals):
            assert stat.S_IMODE(os.stat(run / SOCKET_NAME).st_mode) == 0o600
            with ControlClient(run) as c, ControlClient(run) as c2:
                assert c.request("status")["state"] == "starting"
                assert c2.raw({"cmd": "status", "id": 7}) == {**c2.raw({"cmd": "status"}), "id": 7}
                for bad in (b"garbage", "[1, 2]", '"status"', "{}", '{"cmd": 3}', '{"cmd": "explode"}',
                            '{"cmd": "status", "extra": 1}', '{"cmd": "export", "individual": "3"}',
                            '{"cmd": "export", "individual": true}', '{"cmd": "export", "individual": -1}',
                            '{"cmd": "export", "out": 5}', '{"cmd": "export", "out": ""}',
                            '{"cmd": "status", "id": [1]}', b"\xff\xfe{}", "[" * 5000, ""):
                    reply = c.raw(bad)
                    assert reply["ok"] is False and "\n" not in reply["error"], bad
                assert "still starting" in c.raw({"cmd": "export"})["error"]
                assert c.request("pause")["state"] == "starting" and signals.pause_requested
                c.request("resume")
                assert not signals.pause_requested
                with pytest.raises(ControlError, match="too long"):
                    c2.request("status", pad="x" * (MAX_REQUEST_BYTES + 10))
                with pytest.raises(ControlError):  # the oversized line closed that connection ...
                    c2.request("status")
                assert c.request("status")["ok"]  # ... and nothing else
                c.request("stop")
                assert signals.stop_requested
        assert not (run / SOCKET_NAME).exists()
    finally:
        shutil.rmtree(run, ignore_errors=True)


def test_socket_under_a_path_too_long_for_af_unix() -> None:
    base = Path(tempfile.mkdtemp(prefix="gtl", dir="/tmp"))
    run = base / ("r" * 60) / ("s" * 60)
    run.mkdir(parents=True)
    try:
        assert len(str(run / SOCKET_NAME)) > 108
        with ControlServer(run, RunSignals()):
            assert (run / SOCKET_NAME).is_socket()
            assert send(run, "status")["state"] == "starting"
            with ControlClient(run) as c:  # a huge request is refused with a reply, not a broken pipe
                assert "too long" in c.raw(b"y" * (20 * MAX_REQUEST_BYTES))["error"]
        assert not (run / SOCKET_NAME).exists()
    finally:
        shutil.rmtree(base, ignore_errors=True)
