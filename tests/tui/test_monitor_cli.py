"""``gtl-tui attach`` and ``gtl-tui replay``: bad run directories give one line and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fakes import make_run
from typer.testing import CliRunner

from gtl_tui import app as monitor_app
from gtl_tui.cli import app

runner = CliRunner()


@pytest.mark.parametrize("command", ["attach", "replay"])
def test_a_missing_directory_is_one_line_and_exit_2(tmp_path: Path, command: str):
    result = runner.invoke(app, [command, str(tmp_path / "nope")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "no such run directory" in lines[0]


@pytest.mark.parametrize("command", ["attach", "replay"])
def test_a_directory_without_a_log_is_refused(tmp_path: Path, command: str):
    result = runner.invoke(app, [command, str(tmp_path)])
    assert result.exit_code == 2
    assert "no events.jsonl" in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("args, expected", [
    (["attach", "--refresh", "1.5"], {"refresh_interval": 1.5}),
    (["replay", "--speed", "40"], {"replay": True, "speed": 40.0}),
])
def test_a_run_directory_opens_the_monitor(tmp_path: Path, monkeypatch, args, expected):
    make_run(tmp_path, population=3, generations=1)
    calls = []
    monkeypatch.setattr(monitor_app, "open_monitor", lambda run_dir, **kw: calls.append((run_dir, kw)))
    result = runner.invoke(app, [args[0], str(tmp_path), *args[1:]])
    assert result.exit_code == 0, result.output
    assert calls == [(tmp_path, expected)]


def test_help_lists_both_commands():
    result = runner.invoke(app, ["--help"])
    assert "attach" in result.output and "replay" in result.output


def test_importing_the_monitor_stays_light():
    code = "import sys, gtl_tui.app, gtl_tui.cli; print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("env, flags, interval", [
    ({}, [], 0.25),
    ({"SSH_CONNECTION": "10.0.0.1 5000 10.0.0.2 22"}, [], 1.0),  # low bandwidth by itself over SSH
    ({"SSH_CONNECTION": "10.0.0.1 5000 10.0.0.2 22"}, ["--no-low-bandwidth"], 0.25),
    ({}, ["--low-bandwidth"], 1.0),
])
def test_low_bandwidth_mode(tmp_path: Path, monkeypatch, env, flags, interval):
    make_run(tmp_path, population=3, generations=1)
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    calls = []
    monkeypatch.setattr(monitor_app, "open_monitor", lambda run_dir, **kw: calls.append(kw))
    result = runner.invoke(app, ["attach", str(tmp_path), *flags])
    assert result.exit_code == 0, result.output
    assert calls == [{"refresh_interval": interval}]


def test_bad_ssh_address(tmp_path: Path):
    result = runner.invoke(app, ["attach", "ssh://"])
    assert result.exit_code == 2 and "expected ssh://" in result.output
