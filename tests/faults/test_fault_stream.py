"""Issue 17, items 9 and 11 (heartbeat): the ssh stream relay answers garbage with an error and keeps serving,
also with its stdin redirected from a regular file; `export`'s `out` stays inside the run directory; the
heartbeat sees the engine of a run whose path is too long for a Unix socket address."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from engine import events as ev
from engine.control.server import ControlServer
from engine.run.signals import RunSignals


class Exporting:
    """The part of an Evolution the control server uses for status and export (writes real files)."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir

    def status(self) -> dict:
        return {"state": "running", "generation": 1, "generations": 3, "individual": 0, "population": 4,
                "best_id": 0, "best_fitness": 0.5, "pid": 0}

    def export(self, individual, out, reason="request"):
        out = Path(out) if out else self.run_dir / "learngenes" / "best"
        out.parent.mkdir(parents=True, exist_ok=True)
        w, m = out.with_name(out.name + ".safetensors"), out.with_name(out.name + ".json")
        w.write_bytes(b"weights")
        m.write_text("{}")
        return w, m


def _run_dir(parent: Path, name: str = "r") -> Path:
    run = parent / name
    (run / "learngenes").mkdir(parents=True)
    (run / "config.toml").write_text("[run]\nseed = 0\n")
    ev.EventWriter(run / ev.EVENTS_FILE).close()
    (run / "learngenes" / "g.json").write_text("{}")
    return run


def _relay(run: Path, requests: list, tmp: Path) -> tuple[int, list[dict], str]:
    """Run `gtl-tui stream RUN` with stdin redirected from a regular file of request lines."""
    req_file = tmp / "requests.jsonl"
    req_file.write_bytes(b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n"
                                  for r in requests))
    with open(req_file, "rb") as stdin:
        r = subprocess.run([sys.executable, "-m", "gtl_tui.cli", "stream", str(run)], stdin=stdin,
                           capture_output=True, timeout=60)
    return r.returncode, [json.loads(x) for x in r.stdout.splitlines()], r.stderr.decode()


def test_the_relay_answers_every_bad_request_and_keeps_serving(tmp_path):
    d = Path(tempfile.mkdtemp(prefix="gtl", dir="/tmp"))  # short: the control socket's path limit
    outside = tmp_path / "outside"
    try:
        run = _run_dir(d)
        server = ControlServer(run, RunSignals())
        server.set_evolution(Exporting(run))
        with server:
            requests = [
                {"type": "fetch", "id": 1, "path": "learngenes/g\x00.json"},
                {"type": "fetch", "id": 2, "path": "a" * 5000},
                {"type": "fetch", "id": 3, "path": "../../etc/passwd"},
                {"type": "control", "id": 4, "request": {"cmd": "status", "timeout": 1}},
                {"type": "control", "id": 5, "request": {"cmd": "status", "run_dir": "/"}},
                {"type": "control", "id": 6, "request": {"cmd": "export", "out": str(outside / "x")}},
                {"type": "control", "id": 7, "request": {"cmd": "export", "out": "../../escape"}},
                {"type": "control", "id": 8, "request": {"cmd": "export", "out": 7}},
                {"type": "fetch", "id": [1, 2], "path": 3},
                b"[" * 5000,
                {"type": "control", "id": 9, "request": {"cmd": "export", "out": "learngenes/mine"}},
                {"type": "control", "id": 10, "request": {"cmd": "status"}},
                {"type": "fetch", "id": 11, "path": "learngenes/g.json"},
                {"type": "ping"},
            ]
            code, out, err = _relay(run, requests, tmp_path)
        assert code == 0 and "Traceback" not in err, err
        by_id: dict = {}
        for m in out:
            by_id.setdefault(m.get("id"), []).append(m)
        for i in (1, 2, 3, 6, 7, 8):
            assert by_id[i][0]["type"] == "error", (i, by_id[i])
        for i in (4, 5):  # forwarded; the engine refuses the key it does not know
            assert by_id[i][0]["reply"]["ok"] is False and "unknown field" in by_id[i][0]["reply"]["error"]
        assert not outside.exists() and not (d.parent / "escape.json").exists()
        assert by_id[9][0]["reply"]["ok"] and (run / "learngenes" / "mine.safetensors").is_file()
        assert by_id[10][0]["reply"]["state"] == "running"
        assert by_id[11][0]["type"] == "file"
        assert out[-1]["type"] == "heartbeat" and out[-1]["engine_alive"] is True
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_the_heartbeat_sees_an_engine_whose_run_path_is_long(tmp_path):
    from gtl_tui.remote.stream import StreamServer

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    run = _run_dir(deep)
    assert len(str(run / "control.sock")) >= 108
    with ControlServer(run, RunSignals()):
        relay = StreamServer(run, 0, open("/dev/null", "wb"))  # noqa: SIM115
        assert relay.engine_alive() is True
