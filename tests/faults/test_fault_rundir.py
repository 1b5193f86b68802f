"""Issue 17, items 5 and 11 (permissions): run directories are created whole or not at all, never resumed
without a valid config, and bad names or runs directories give one line and exit 2."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from fault_helpers import TINY
from typer.testing import CliRunner

from engine.config import load_config
from engine.run.runner import RunDirError, create_run_dir, load_run_config


def test_a_failed_creation_leaves_nothing_behind(tmp_path, monkeypatch):
    real_write = os.write

    def full_disk(fd, data):
        if b"[evolution]" in bytes(data):
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_disk)
    (tmp_path / "runs").mkdir()
    with pytest.raises(RunDirError, match="No space left on device"):
        create_run_dir(load_config(None, TINY), tmp_path / "runs", "full")
    assert list((tmp_path / "runs").iterdir()) == []


@pytest.mark.parametrize("content", ["", "name = \"x\"\n", "\0\0\0"])
def test_a_run_without_a_complete_config_is_not_resumed(tmp_path, content):
    run = tmp_path / "half"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.toml").write_text(content)
    with pytest.raises(RunDirError, match="not a complete run config"):
        load_run_config(run)


def test_resume_of_a_half_created_run_exits_2_with_one_line(tmp_path):
    run = tmp_path / "half"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.toml").write_text("")
    r = subprocess.run([sys.executable, "-m", "gtl_tui.cli", "run", "--headless", "--resume", str(run)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "not a complete run config" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (run / "events.jsonl").exists()


def _file(tmp_path: Path) -> str:
    f = tmp_path / "afile"
    f.write_text("x")
    return str(f)


@pytest.mark.parametrize("case", ["long-name", "runs-dir-file", "runs-dir-proc", "dot", "dotdot", "slash"])
def test_bad_names_and_runs_directories_give_one_line(tmp_path, case):
    from gtl_tui.cli import app

    runs = str(tmp_path / "runs")
    args = {"long-name": ["--runs-dir", runs, "--name", "a" * 300],
            "runs-dir-file": ["--runs-dir", _file(tmp_path), "--name", "x"],
            "runs-dir-proc": ["--runs-dir", "/proc/x", "--name", "x"],
            "dot": ["--runs-dir", runs, "--name", "."],
            "dotdot": ["--runs-dir", runs, "--name", ".."],
            "slash": ["--runs-dir", runs, "--name", "a/b"]}[case]
    sets = [a for s in TINY for a in ("--set", s)]
    r = CliRunner().invoke(app, ["run", "--headless", *args, *sets])
    out = r.output.strip()
    assert r.exit_code == 2, out
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert len(out.splitlines()) == 1 and out.startswith("error:")
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_run_directories_and_their_files_are_owner_only(tmp_path):
    from engine.run.runner import run_in_dir

    run = create_run_dir(load_config(None, [*TINY, "evolution.generations=1"]), tmp_path, "private")
    assert stat.S_IMODE(run.stat().st_mode) == 0o700
    run_in_dir(run)
    for p in [run, *run.rglob("*")]:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode & 0o077 == 0, f"{p} is {oct(mode)}"
