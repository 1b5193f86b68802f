"""The background engine, its control socket and the run-control verbs, end to end on a tiny glyph run.

The engines are real subprocesses (``python -m engine.run.daemon``) started through the CLI; the verbs run through
typer's CliRunner. Run directories live in short ``/tmp`` folders: AF_UNIX socket paths must stay under 108 bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import TINY
from typer.testing import CliRunner

from engine.control.client import MAX_REQUEST_BYTES, ControlClient, send
from engine.events import EVENTS_FILE, Event, read_events
from engine.rundir import SOCKET_NAME, live_engine_pid
from gtl_tui.cli import app
from gtl_tui.runs import read_run, read_tail

SHRINK = [*TINY, "lifetime.steps=40"]  # long enough to pause, export and stop it mid-generation
runner = CliRunner()


def cli(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def wait_for(pred: Callable[[], object], timeout: float = 60.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def events(run: Path) -> list[Event]:
    return read_events(run / EVENTS_FILE)[0]


def kinds(run: Path) -> list[str]:
    return [e.kind for e in events(run)]


@pytest.fixture
def runs_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the engines inherit it: no thread oversubscription on 2 cores
    d = Path(tempfile.mkdtemp(prefix="gtl", dir="/tmp"))
    yield d
    for run in d.iterdir():  # never leave an engine behind
        pid = live_engine_pid(run)
        if pid:
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(d, ignore_errors=True)


def start(runs_dir: Path, name: str, *extra: str) -> Path:
    sets = [a for s in [*SHRINK, *extra] for a in ("--set", s)]
    code, out = cli("run", "--detach", "--runs-dir", runs_dir, "--name", name, *sets)
    assert code == 0, out
    run = runs_dir / name
    assert str(run) in out
    return run


def wait_exit(run: Path, timeout: float = 90.0) -> None:
    wait_for(lambda: live_engine_pid(run) is None, timeout, "the engine to exit")
    assert not (run / SOCKET_NAME).exists()


# ------------------------------------------------------------------------------------------ fast: no engine
def test_read_tail_skips_torn_line_and_reads_backwards(tmp_path: Path) -> None:
    from engine.events import EventWriter, GenerationCompleted, IndividualStarted, RunStarted

    w = EventWriter(tmp_path / EVENTS_FILE)
    w.emit(RunStarted(name="r", config={}, config_hash="h", device="cpu", trainer="t", backend="local",
                      arch="conv4", population=2, generations=9, version="0", pid=1))
    w.emit(GenerationCompleted(generation=0, best=0.5, mean=0.4, worst=0.3, std=0.1, diversity=0.2, best_id=1,
                               elite_id=1, elite_fitness=0.5, seconds=1.0, images_per_s=10.0))
    for i in range(5000):  # several chunks of log after the last generation_completed
        w.emit(IndividualStarted(id=i, generation=1))
    w.close()
    with open(tmp_path / EVENTS_FILE, "a") as f:
        f.write('{"kind":"run_finished","v":1,"seq":9')  # torn
    tail = read_tail(tmp_path / EVENTS_FILE, want_started=True)
    assert tail.last.kind == "individual_started" and tail.last.id == 4999
    assert tail.last_generation.elite_fitness == 0.5 and tail.last_started.generations == 9


@pytest.mark.parametrize("verb", [["status"], ["status", "--json"], ["pause"], ["resume"], ["stop"], ["export"],
                                  ["ls"]])
def test_verbs_on_missing_or_foreign_directory(verb: list[str], tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a run")
    for target in (tmp_path / "nope", tmp_path / "notes.txt", *([] if verb == ["ls"] else [tmp_path])):
        code, out = cli(*verb, target)
        assert code != 0
        assert out.strip().count("\n") == 0 and out.startswith("error:"), out
    if verb == ["ls"]:  # a folder without runs is not an error for ls
        assert cli("ls", tmp_path) == (0, f"no runs in {tmp_path}\n")


# ------------------------------------------------------------------------------------------ slow: real engines
@pytest.mark.slow
def test_detach_pause_export_stop_resume(runs_dir: Path) -> None:
    run = start(runs_dir, "life")
    assert stat.S_IMODE(os.stat(run / SOCKET_NAME).st_mode) == 0o600
    pid = live_engine_pid(run)
    assert pid and int((run / "engine.pid").read_text()) == pid
    # its own session: a closing terminal or a dropped SSH connection (SIGHUP to our session) never reaches it
    assert os.getsid(pid) == pid != os.getsid(0)
    # another engine on the same run directory is refused, and so is --resume of a live run
    other = subprocess.run([sys.executable, "-m", "engine.run.daemon", str(run)], capture_output=True, text=True,
                           timeout=60)
    assert other.returncode == 3 and "another engine" in other.stderr
    code, out = cli("run", "--resume", run, "--detach")
    assert code != 0 and "still running" in out

    wait_for(lambda: "generation_completed" in kinds(run), 90, "generation 0")
    code, out = cli("pause", run)
    assert code == 0 and "paused" in out, out
    log = kinds(run)
    assert "paused" in log and read_run(run).state == "paused"
    code, out = cli("export", run)
    assert code == 0, out
    gene = Path(out.split()[1])
    assert gene.is_file() and gene.with_suffix(".json").is_file() and out.splitlines()[2].startswith("scp ")
    done = [e for e in events(run) if e.kind == "generation_completed"][-1]
    other_id = next(e.id for e in events(run) if e.kind == "individual_evaluated"
                    and e.generation == done.generation and e.id != done.elite_id)
    code, out = cli("export", run, "--individual", other_id, "--out", runs_dir / "mine")
    assert code == 0 and (runs_dir / "mine.safetensors").is_file() and (runs_dir / "mine.json").is_file(), out
    code, out = cli("export", run, "--individual", 999)
    assert code == 1 and "no individual 999" in out
    time.sleep(1.5)  # nothing trains while paused
    after = kinds(run)[log.index("paused") + 1:]
    # nothing trains: only the exports, and the checkpoint of the last generation if its background write was still
    # in flight when the pause came (checkpoints are written beside training)
    assert "learngene_exported" in after and set(after) <= {"learngene_exported", "checkpoint_saved"}, after

    code, out = cli("resume", run)
    assert code == 0
    wait_for(lambda: "resumed" in kinds(run), 10, "resumed")
    code, out = cli("stop", run)
    assert code == 0 and "stopped" in out, out
    wait_exit(run)
    last = events(run)[-1]
    assert last.kind == "run_finished" and last.status == "stopped"
    assert list((run / "checkpoints").glob("gen_*.safetensors"))
    code, out = cli("status", run, "--json")
    assert code == 0 and json.loads(out)["state"] == "stopped"
    code, out = cli("pause", run)
    assert code == 1 and "run --resume" in out

    code, out = cli("run", "--resume", run, "--detach")
    assert code == 0, out
    wait_exit(run)
    log = events(run)
    assert log[-1].kind == "run_finished" and log[-1].status == "completed"
    assert [e.resumed_from for e in log if e.kind == "run_started"][-1] >= 1
    code, out = cli("ls", runs_dir)
    assert code == 0 and "life" in out and "finished" in out and "3/3" in out
    code, out = cli("run", "--resume", run, "--detach")
    assert code != 0 and "already completed" in out


@pytest.mark.slow
def test_socket_fuzz_then_sigkill_is_crashed_and_resumes(runs_dir: Path) -> None:
    run = start(runs_dir, "crash", "evolution.generations=2")
    wait_for(lambda: "individual_evaluated" in kinds(run), 90, "training")
    with ControlClient(run) as c:
        for bad in (b"\x00\x01garbage", "not json", "[]", '{"cmd": "status", "id": {}}', '{"cmd": "halt"}',
                    '{"cmd": "export", "individual": 1.5}', '{"cmd": "export", "out": ["x"]}',
                    '{"cmd": "pause", "now": true}'):
            assert c.raw(bad)["ok"] is False
        assert c.request("status")["state"] in ("running", "pausing", "paused")
    with ControlClient(run) as big:
        reply = big.raw(b"x" * (MAX_REQUEST_BYTES + 1000))
        assert reply["ok"] is False and "too long" in reply["error"]
    assert send(run, "status")["state"] == "running"  # the engine did not notice

    wait_for(lambda: "checkpoint_saved" in kinds(run), 90, "a checkpoint")
    os.kill(live_engine_pid(run), signal.SIGKILL)
    wait_for(lambda: read_run(run).state == "crashed", 10, "crashed")
    code, out = cli("ls", runs_dir)
    assert code == 0 and "crash" in out and "crashed" in out
    code, out = cli("status", run)
    assert code == 0 and "crashed" in out and "run --resume" in out
    code, out = cli("stop", run)
    assert code == 1 and "crashed" in out

    code, out = cli("run", "--resume", run, "--detach")
    assert code == 0, out
    wait_for(lambda: kinds(run).count("run_started") == 2, 90, "the resumed run to start")
    os.kill(live_engine_pid(run), signal.SIGTERM)  # graceful: checkpoint, run_finished stopped
    wait_exit(run)
    assert events(run)[-1].kind == "run_finished" and events(run)[-1].status == "stopped"
    assert read_run(run).state == "stopped"

    code, out = cli("run", "--resume", run, "--detach")
    assert code == 0, out
    wait_exit(run)
    log = events(run)
    assert log[-1].kind == "run_finished" and log[-1].status == "completed"
    assert [e.resumed_from for e in log if e.kind == "run_started"][1:] == [1, 1]
    assert read_run(run).state == "finished"
