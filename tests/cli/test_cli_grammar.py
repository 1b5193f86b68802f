"""One CLI grammar: a run is a path or its name in --runs-dir, every listing verb takes --runs-dir, --version,
no type placeholder beside a flag."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gtl_tui.scripted import scripted_run, write_events

VERBS = ["run", "models", "attach", "replay", "ls", "status", "pause", "resume", "stop", "export", "stream", "serve",
         "evaluate", "pretrain", "sweep", "compare", "report"]


def gtl(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "150"}
    return subprocess.run([sys.executable, "-m", "gtl_tui.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=env)


def _finished_run(runs: Path, name: str) -> Path:
    run = runs / name
    run.mkdir(parents=True)
    (run / "config.toml").write_text("[run]\nseed = 0\n[evolution]\ngenerations = 2\npopulation = 3\n")
    write_events(run, scripted_run(population=3, generations=2, name=name))
    return run


def test_version():
    r = gtl("--version")
    assert r.returncode == 0 and r.stdout.startswith("gtl-tui ")


def test_a_run_by_name_in_the_runs_folder(tmp_path):
    runs = tmp_path / "elsewhere"
    _finished_run(runs, "quickstart-20261130-204912")
    listed = gtl("ls", "--runs-dir", str(runs))
    assert listed.returncode == 0 and "quickstart-20261130-204912" in listed.stdout
    assert gtl("ls", str(runs)).stdout == listed.stdout  # the folder as an argument still works
    by_name = gtl("status", "quickstart-20261130-204912", "--runs-dir", str(runs))
    by_path = gtl("status", str(runs / "quickstart-20261130-204912"))
    assert by_name.returncode == 0 and by_name.stdout == by_path.stdout and "finished" in by_name.stdout
    # the default runs folder is ./runs
    _finished_run(tmp_path / "runs", "r1")
    assert "finished" in gtl("status", "r1", cwd=tmp_path).stdout
    missing = gtl("status", "nope", "--runs-dir", str(runs))
    assert missing.returncode == 2 and "nope" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("verb", VERBS)
def test_help_shows_no_type_beside_a_flag(verb):
    r = gtl(verb, "--help")
    assert r.returncode == 0, r.stderr
    assert "<bool>" not in r.stdout and "BOOLEAN" not in r.stdout


def test_every_verb_that_resolves_runs_takes_runs_dir():
    for verb in ("ls", "status", "pause", "resume", "stop", "export", "attach", "replay", "run"):
        assert "--runs-dir" in gtl(verb, "--help").stdout, verb
