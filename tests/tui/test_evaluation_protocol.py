"""An evaluation under the plain protocol sits beside the default one and says so on the Learngene tab."""

from __future__ import annotations

from pathlib import Path

from gtl_tui.evaluations import EvaluationDir, file_protocol, write_evaluation
from gtl_tui.widgets.evaluation import evaluation_title


def report(protocol: str) -> dict:
    rows = [{"method": "learngene", "shots": 5, "steps": 100, "mean": 0.5, "ci95": 0.02, "episodes": 30}]
    return {"results": rows, "settings": {"ways": 5, "episodes": 30, "finetune": {"name": protocol}}}


def test_each_protocol_has_its_file_and_the_title_names_the_plain_one(tmp_path: Path) -> None:
    names = [write_evaluation(tmp_path, "best-g0003-i28", report(p)).name for p in ("default", "plain")]
    assert names == ["best-g0003-i28.json", "best-g0003-i28.plain.json"]
    assert [file_protocol(n) for n in names] == ["default", "plain"] and file_protocol("x.txt") is None
    evaluations = {e.name: e for e in EvaluationDir(tmp_path).poll()}
    assert "plain fine-tuning" in evaluation_title(evaluations["best-g0003-i28.plain"]).plain
    assert "fine-tuning" not in evaluation_title(evaluations["best-g0003-i28"]).plain
