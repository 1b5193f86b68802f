"""`[notify] command`: a user's program gets chosen events as JSON on stdin, without slowing or breaking the run."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from engine.config import ConfigError, load_config
from engine.events import RunFinished, Warning_
from engine.run.notify import Notifier

SHRINK = ["evolution.population=4", "evolution.generations=2", "lifetime.steps=10", "lifetime.batch_size=8",
          "data.glyph_classes=20", "data.glyph_images_per_class=10", "model.width=0.25", "run.device=cpu"]


def _recorder(tmp_path, code: int = 0, sleep: float = 0.0) -> str:
    script = tmp_path / "record.py"
    script.write_text(
        "import sys, time\n"
        f"time.sleep({sleep})\n"
        f"open({str(tmp_path / 'got.jsonl')!r}, 'a').write(sys.stdin.read().strip() + '\\n')\n"
        f"sys.exit({code})\n")
    return f"{sys.executable} {script}"


def test_notifier_sends_only_chosen_kinds_and_survives_failing_or_slow_commands(tmp_path):
    n = Notifier(_recorder(tmp_path), ["run_finished"], timeout_s=5)
    n(Warning_(message="ignored"))
    n(RunFinished(status="completed", best_id=3, best_fitness=0.5))
    n.close()
    got = [json.loads(x) for x in (tmp_path / "got.jsonl").read_text().splitlines()]
    assert [g["kind"] for g in got] == ["run_finished"] and got[0]["best_id"] == 3 and n.sent == 1

    failing = Notifier(_recorder(tmp_path, code=3), ["warning"], timeout_s=5)
    slow = Notifier(_recorder(tmp_path, sleep=30), ["warning"], timeout_s=0.5)
    missing = Notifier("/nowhere/notify-me", ["warning"])
    t0 = time.monotonic()
    for notifier in (failing, slow, missing):
        notifier(Warning_(message="w"))  # never blocks the caller
    assert time.monotonic() - t0 < 0.5
    for notifier in (failing, slow, missing):
        notifier.close()
        assert notifier.failed == 1 and notifier.sent == 0


def test_notify_config_is_checked_and_left_out_of_the_hash(tmp_path):
    plain = load_config(None, [])
    cfg = load_config(None, ["notify.command='notify-send gtl'"])
    assert cfg.notify is not None and cfg.notify.events == ["run_finished", "warning"]
    assert cfg.hash() == plain.hash() and cfg.compute_hash() == plain.compute_hash()
    with pytest.raises(ConfigError, match="unknown event kind 'run_finishd'"):
        load_config(None, ["notify.command='x'", "notify.events=['run_finishd']"])
    with pytest.raises(ConfigError, match="command"):
        load_config(None, ["notify.events=['warning']"])


@pytest.mark.slow
def test_a_headless_run_tells_the_command_it_finished(tmp_path):
    sets = [a for s in [*SHRINK, f"notify.command={json.dumps(_recorder(tmp_path))}",
                        "notify.events=['run_started', 'run_finished']"] for a in ("--set", s)]
    proc = subprocess.run([sys.executable, "-m", "gtl_tui.cli", "run", "--headless", "--runs-dir",
                           str(tmp_path / "runs"), "--name", "n", *sets], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = [json.loads(x) for x in (tmp_path / "got.jsonl").read_text().splitlines()]
    assert [g["kind"] for g in got] == ["run_started", "run_finished"]
    assert got[1]["status"] == "completed"
