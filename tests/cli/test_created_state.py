"""A run directory that was created and never started (a sweep's run queued on a Ray cluster) is ``created``,
not ``crashed``; ``ls`` says so and the control verbs say how to start it."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from engine.config import load_config
from engine.run.runner import create_run_dir
from gtl_tui.cli import app
from gtl_tui.runs import read_run


def test_a_never_started_run_is_created(tmp_path: Path, tiny: list[str]) -> None:
    run = create_run_dir(load_config(None, tiny), tmp_path, "queued")
    assert read_run(run).state == "created"
    out = CliRunner().invoke(app, ["ls", "--runs-dir", str(tmp_path)]).output
    assert "created" in out and "crashed" not in out
    result = CliRunner().invoke(app, ["pause", str(run)])
    assert result.exit_code != 0 and "never started; start it with: gtl-tui run --resume" in result.output
    (run / "events.jsonl").write_text("")  # an engine that died after opening its log: crashed, as before
    assert read_run(run).state == "crashed"
