"""`gtl-tui run` argument and config errors: one line, non-zero exit, no traceback, nothing trained."""

from __future__ import annotations

import subprocess
import sys

import pytest


def gtl(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gtl_tui.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_help_is_quick():
    r = gtl("--help")
    assert r.returncode == 0 and "run" in r.stdout


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--set", "evolution.population=1"], "population must be >= 2"),
        (["--set", "nosuch.key=1"], "nosuch: unknown section"),
        (["--set", "task.ways=200"], "exceeds"),
        (["--set", "data.dataset='cifar-fs'", "--set", "data.root='/nope'"], "does not exist"),
        (["/nope/config.toml"], "does not exist"),
    ],
)
def test_bad_config_stops_before_training(tmp_path, args, needle):
    r = gtl("run", "--headless", "--runs-dir", str(tmp_path), *args)
    assert r.returncode != 0
    assert needle in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir()), "a run directory was created for a bad config"


def test_broken_toml(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\nseed=1\n")
    r = gtl("run", "--headless", "--runs-dir", str(tmp_path / "runs"), str(bad))
    assert r.returncode != 0 and "broken TOML" in r.stderr and "Traceback" not in r.stderr


def test_resume_missing_dir(tmp_path):
    r = gtl("run", "--headless", "--resume", str(tmp_path / "nope"))
    assert r.returncode != 0 and "no such run directory" in r.stderr
