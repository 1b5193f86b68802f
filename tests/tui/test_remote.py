"""Remote monitoring: the stream protocol through a subprocess pipe, reconnects, and a real ssh when possible."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakes import FakeEngine, make_run, short_dir
from fakes import wait_for as wait_until

from engine.events import EVENTS_FILE, GenerationStarted, read_events
from gtl_tui.remote.client import RemoteRun, SSHTarget, remote_command
from gtl_tui.remote.stream import StreamError, check_offset


def local_stream(run_dir: Path):
    """The command `ssh host gtl-tui stream ...` would run, without ssh."""
    return lambda off: [sys.executable, "-m", "gtl_tui.cli", "stream", str(run_dir), "--from", str(off)]


def wait_for(pred, timeout: float = 30.0):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out")


def drain(remote: RemoteRun, n: int, timeout: float = 30.0) -> list:
    got: list = []
    end = time.time() + timeout
    while len(got) < n and time.time() < end:
        got.extend(remote.poll())
        time.sleep(0.05)
    return got


def test_ssh_url_parsing(monkeypatch):
    t = SSHTarget.parse("ssh://ana@gpu-box:2222/home/ana/runs/r1")
    assert (t.user, t.host, t.port, t.path) == ("ana", "gpu-box", 2222, "/home/ana/runs/r1")
    assert SSHTarget.parse("ssh://box/~/runs/x").path == "~/runs/x"
    argv = SSHTarget.parse("ssh://box/tmp/my run").argv(["gtl-tui", "stream", "/tmp/my run"])
    assert argv[0] == "ssh" and "box" in argv and argv[-1] == "gtl-tui stream '/tmp/my run'"
    with pytest.raises(ValueError, match="expected ssh://"):
        SSHTarget.parse("http://box/x")
    monkeypatch.setenv("GTL_TUI_REMOTE_CMD", "/opt/venv/bin/gtl-tui --flag")
    assert remote_command() == ["/opt/venv/bin/gtl-tui", "--flag"]
    assert remote_command("/x/gtl-tui") == ["/x/gtl-tui"]


def test_offset_checks(tmp_path):
    run = make_run(tmp_path / "r", population=3, generations=1)
    log = run / EVENTS_FILE
    check_offset(log, 0)
    check_offset(log, log.stat().st_size)
    with pytest.raises(StreamError, match="outside"):
        check_offset(log, log.stat().st_size + 1)
    with pytest.raises(StreamError, match="start of an event line"):
        check_offset(log, 5)


def test_stream_round_trip_control_and_fetch(tmp_path):
    with short_dir() as d:
        run = make_run(d / "r", population=4, generations=2)
        expected, _ = read_events(run / EVENTS_FILE)
        with FakeEngine(run) as engine:
            remote = RemoteRun(local_stream(run), fetch_dir=tmp_path / "laptop")
            try:
                got = drain(remote, len(expected))
                assert got == expected
                wait_for(lambda: remote.status == "connected")
                assert remote.request("status")["ok"]
                remote.request("pause")
                paused = drain(remote, 1)
                assert [e.kind for e in paused] == ["paused"]
                reply = remote.request("export", individual=3)
                assert reply["path"].startswith(str(run))  # left on the server...
                local = [Path(p) for p in reply["local"]]  # ...and copied through the same channel
                assert local[0].read_bytes() == Path(reply["path"]).read_bytes()
                assert json.loads(local[1].read_text())["individual"] == 3
                assert engine.requests[-1]["cmd"] == "export"
            finally:
                remote.close()


def test_reconnect_from_offset_no_gap_no_duplicate(tmp_path):
    with short_dir() as d:
        run = make_run(d / "r", population=3, generations=1)
        with FakeEngine(run) as engine:
            remote = RemoteRun(local_stream(run), timeout=5.0)
            try:
                first = drain(remote, len(read_events(run / EVENTS_FILE)[0]))
                wait_for(lambda: remote._proc is not None and remote.status == "connected")
                remote._proc.kill()  # the connection drops
                for g in range(10, 15):  # events written while disconnected
                    engine.emit(GenerationStarted(generation=g))
                wait_for(lambda: remote.reconnects >= 1)
                more = drain(remote, 5)
                for g in range(15, 18):  # and after reconnecting
                    engine.emit(GenerationStarted(generation=g))
                more += drain(remote, 3)
            finally:
                remote.close()
        everything, _ = read_events(run / EVENTS_FILE)
        assert first + more == everything
        seqs = [e.seq for e in first + more]
        assert seqs == sorted(set(seqs))


def test_stream_refuses_bad_offset_and_dir(tmp_path):
    run = make_run(tmp_path / "r", population=3, generations=1)
    r = subprocess.run([sys.executable, "-m", "gtl_tui.cli", "stream", str(run), "--from", "7"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "not at the start of an event line" in r.stderr
    r = subprocess.run([sys.executable, "-m", "gtl_tui.cli", "stream", str(tmp_path / "nope")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "no such run directory" in r.stderr


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def loopback_sshd(tmp_path):
    """An sshd on 127.0.0.1 with a throwaway key, when sshd exists and may run here; skipped otherwise."""
    sshd = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
    if sshd is None or shutil.which("ssh-keygen") is None:
        pytest.skip("no sshd on this machine")
    d = Path(tmp_path)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "user")], check=True)
    (d / "authorized_keys").write_text((d / "user.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    port = _free_port()
    cfg = d / "sshd_config"
    cfg.write_text(f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\nPidFile {d / 'sshd.pid'}\n"
                   f"AuthorizedKeysFile {d / 'authorized_keys'}\nPasswordAuthentication no\nUsePAM no\n"
                   f"StrictModes no\nPermitRootLogin yes\nSetEnv PATH={os.path.dirname(sys.executable)}:/usr/bin:/bin\n")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
    proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(cfg)], stderr=subprocess.PIPE)
    time.sleep(1.0)
    if proc.poll() is not None:
        pytest.skip(f"sshd would not start: {proc.stderr.read().decode()[-200:]}")
    ssh_opts = ["-i", str(d / "user"), "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={d / 'kh'}"]
    probe = subprocess.run(["ssh", "-p", str(port), *ssh_opts, "-o", "BatchMode=yes", "127.0.0.1", "true"],
                           capture_output=True, timeout=20)
    if probe.returncode != 0:
        proc.kill()
        pytest.skip(f"cannot log in to the loopback sshd: {probe.stderr.decode()[-200:]}")
    yield port, ssh_opts
    proc.kill()


def test_real_ssh(loopback_sshd):
    port, ssh_opts = loopback_sshd
    with short_dir() as d:
        run = make_run(d / "r", population=3, generations=1)
        expected, _ = read_events(run / EVENTS_FILE)
        target = SSHTarget.parse(f"ssh://127.0.0.1:{port}{run}")
        remote_cmd = f"{sys.executable} -m gtl_tui.cli"
        with FakeEngine(run):
            remote = RemoteRun(lambda off: target.argv([*remote_command(remote_cmd), "stream", str(run), "--from",
                                                        str(off)], ssh_options=ssh_opts))
            try:
                assert drain(remote, len(expected)) == expected
                wait_for(lambda: remote.status == "connected")
                assert remote.request("status")["ok"]
            finally:
                remote.close()


def test_serve_binds_loopback_only(tmp_path):
    pytest.importorskip("textual_serve")
    run = make_run(tmp_path / "r", population=3, generations=1)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gtl_tui.cli", "serve", str(run), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return True
            except OSError:
                return False

        wait_for(listening, timeout=60)
        out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout if shutil.which("ss") else ""
        lines = [x for x in out.splitlines() if f":{port} " in x]
        assert all("127.0.0.1:" in x for x in lines), lines
        # no other interface answers
        others = [a for a in socket.gethostbyname_ex(socket.gethostname())[2] if not a.startswith("127.")]
        for addr in others:
            with pytest.raises(OSError):
                socket.create_connection((addr, port), timeout=0.5).close()
    finally:
        proc.kill()
        proc.wait()


async def test_monitor_over_the_stream_pauses_and_exports(tmp_path):
    """The monitor itself, fed by the remote stream: header shows the link, p pauses, e copies the export."""
    from gtl_tui.app import MonitorApp
    from gtl_tui.widgets.header import RunHeader

    def header(app) -> str:
        return str(app.query_one(RunHeader).render())

    with short_dir() as d:
        run = make_run(d / "r", population=3, generations=1, live_evaluated=1)
        with FakeEngine(run) as engine:
            remote = RemoteRun(local_stream(run), fetch_dir=tmp_path / "laptop")
            try:
                app = MonitorApp(run, event_source=remote, controller=remote, refresh_interval=0.05)
                async with app.run_test(size=(120, 40)) as pilot:
                    await wait_until(pilot, lambda: "SSH" in header(app) and "RUNNING" in header(app), 30.0)
                    await pilot.press("p")
                    await wait_until(pilot, lambda: "PAUSED" in header(app), 30.0)
                    await pilot.press("e")
                    await wait_until(pilot, lambda: any((tmp_path / "laptop").glob("*.safetensors")), 30.0)
                    assert [r["cmd"] for r in engine.requests] == ["pause", "export"]
            finally:
                remote.close()
