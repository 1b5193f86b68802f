"""``gtl-tui compare``: grouping by setting and mean ± 95% CI over seeds, checked against numbers done by hand.

The runs are written directly (config, event log, evaluation file), as an engine and ``evaluate`` write them.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine import events as ev
from engine.config import load_config
from gtl_tui.cli import app
from gtl_tui.evaluations import write_evaluation
from gtl_tui.experiments.compare import mean_ci, t_quantile

runner = CliRunner()


def fake_run(root: Path, name: str, sets: list[str], finals: list[tuple[float, float]],
             evaluation: dict[tuple[str, int, int], float] | None = None, protocol: str = "default") -> Path:
    """A run directory whose generations end with the given (best, mean) fitness."""
    run = root / name
    run.mkdir(parents=True)
    (run / "config.toml").write_text(load_config(None, sets).to_toml())
    w = ev.EventWriter(run / ev.EVENTS_FILE)
    for g, (best, mean) in enumerate(finals):
        w.emit(ev.GenerationCompleted(generation=g, best=best, mean=mean, worst=mean / 2, std=0.1, diversity=0.5,
                                      best_id=g, elite_id=g, elite_fitness=best, seconds=1.0, images_per_s=10.0))
    w.close()
    if evaluation:
        results = [{"method": m, "shots": s, "steps": k, "mean": v, "ci95": 0.01, "episodes": 10}
                   for (m, s, k), v in evaluation.items()]
        write_evaluation(run, "best-g0001-i1", {"results": results, "settings": {"finetune": {"name": protocol}}})
    return run


def test_t_quantiles_match_the_tables() -> None:
    for df, t in ((1, 12.706204736), (2, 4.302652730), (4, 2.776445105), (9, 2.262157163), (29, 2.045229642)):
        assert t_quantile(0.975, df) == pytest.approx(t, abs=1e-8)
    assert mean_ci([0.4]) == {"mean": 0.4, "ci95": None, "n": 1}


def test_compare_json_means_and_cis_by_hand(tmp_path: Path) -> None:
    # ways=5: three seeds, final (best, mean) = (0.5, 0.3), (0.6, 0.35)... ; ways=10: two seeds
    a = [fake_run(tmp_path, f"w5-s{s}", ["task.ways=5", f"run.seed={s}"], [(0.1, 0.1), (b, m)],
                  {("learngene", 5, 0): acc, ("scratch", 5, 0): 0.5})
         for s, (b, m, acc) in enumerate([(0.5, 0.62, 0.7), (0.6, 0.70, 0.9), (0.8, 0.61, 0.95)])]
    b = [fake_run(tmp_path, f"w10-s{s}", ["task.ways=10", f"run.seed={s}"], [(0.2, 0.1), (0.3, 0.2), (best, 0.2)])
         for s, best in enumerate([0.3, 0.35])]
    code = runner.invoke(app, ["compare", *map(str, a + b), "--json"])
    assert code.exit_code == 0, code.output
    out = json.loads(code.output)
    s5, s10 = out["settings"]
    assert s5["overrides"] == {"task.ways": 5} and s10["overrides"] == {"task.ways": 10}
    assert s5["runs"] == [str(p) for p in a]
    # by hand: mean 0.63333, sd 0.152753, se 0.0881917, t(0.975, 2) = 4.302653 -> 0.379458
    assert s5["final_best"] == pytest.approx({"mean": 0.6333333, "ci95": 0.3794584, "n": 3}, abs=1e-6)
    # mean 0.643333, se 0.0284800, x 4.302653 -> 0.1225395
    assert s5["final_mean"] == pytest.approx({"mean": 0.6433333, "ci95": 0.1225395, "n": 3}, abs=1e-6)
    # two seeds: mean 0.325, se 0.025, t(0.975, 1) = 12.706205 -> 0.3176551
    assert s10["final_best"] == pytest.approx({"mean": 0.325, "ci95": 0.3176551, "n": 2}, abs=1e-6)
    # learngene 5-shot: 0.7, 0.9, 0.95: mean 0.85, se 0.0763763 -> 0.3286205; scratch: all 0.5, ci 0
    lg, sc = s5["evaluation"]
    per_run = lg.pop("per_run")
    assert lg == pytest.approx({"method": "learngene", "protocol": "default", "shots": 5, "steps": 0, "mean": 0.85,
                                "ci95": 0.3286205, "n": 3}, abs=1e-6)
    # each seed's own result, with the CI over its episodes
    assert [(r["run"], r["mean"], r["ci95"]) for r in per_run] == [
        ("w5-s0", 0.7, 0.01), ("w5-s1", 0.9, 0.01), ("w5-s2", 0.95, 0.01)]
    assert sc["method"] == "scratch" and sc["mean"] == pytest.approx(0.5) and sc["ci95"] == pytest.approx(0.0)
    assert s10["evaluation"] == []

    code = runner.invoke(app, ["compare", *map(str, a + b), "--csv"])
    rows = list(csv.DictReader(io.StringIO(code.output)))
    assert rows[0]["task.ways"] == "5" and rows[0]["measure"] == "final_best"
    assert float(rows[0]["ci95"]) == pytest.approx(0.3794584, abs=1e-6)
    assert len(rows) == 2 + 2 + 2  # ways=5: best, mean, 2 evaluations; ways=10: best, mean

    code = runner.invoke(app, ["compare", *map(str, a + b)], env={"COLUMNS": "200"})
    assert code.exit_code == 0 and "task.ways=5" in code.output and "0.633 ± 0.379" in code.output


def test_compare_bad_targets(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    for target, needle in ((tmp_path / "nope", "no such run directory or sweep folder"),
                           (tmp_path / "x", "neither a run directory nor a sweep folder")):
        result = runner.invoke(app, ["compare", str(target)])
        assert result.exit_code == 2 and needle in result.output and result.output.count("\n") == 1


def test_compare_keeps_each_protocol_apart(tmp_path: Path) -> None:
    """A run evaluated under both fine-tuning protocols: two files, two cells per (method, shots, steps)."""
    runs = [fake_run(tmp_path, f"s{s}", [f"run.seed={s}"], [(0.5, 0.4)], {("learngene", 5, 100): 0.6 + s / 10})
            for s in range(2)]
    for s, run in enumerate(runs):
        results = [{"method": "learngene", "shots": 5, "steps": 100, "mean": 0.3 + s / 10, "ci95": 0.02,
                    "episodes": 10}]
        write_evaluation(run, "best-g0001-i1", {"results": results, "settings": {"finetune": {"name": "plain"}}})
    assert sorted(p.name for p in (runs[0] / "evaluations").iterdir()) == [
        "best-g0001-i1.json", "best-g0001-i1.plain.json"]
    out = json.loads(runner.invoke(app, ["compare", *map(str, runs), "--json"]).output)
    (setting,) = out["settings"]
    cells = {c["protocol"]: c for c in setting["evaluation"]}
    assert cells["default"]["mean"] == pytest.approx(0.65) and cells["plain"]["mean"] == pytest.approx(0.35)
    assert [r["ci95"] for r in cells["plain"]["per_run"]] == [0.02, 0.02]
    text = runner.invoke(app, ["compare", *map(str, runs)], env={"COLUMNS": "250"}).output
    assert "plain" in text
    md = runner.invoke(app, ["compare", *map(str, runs), "--markdown"]).output.splitlines()
    assert md[0] == "| measure | (same config) (n=2) |" and md[1] == "|---|---:|"
    # 0.6 and 0.7: se 0.05, t(0.975, 1) = 12.706 -> 0.635
    assert md[-2:] == ["| learngene, 5-shot, 100 steps | 65.0 ± 63.5 |",
                       "| learngene, 5-shot, 100 steps (plain) | 35.0 ± 63.5 |"]
    rows = list(csv.DictReader(io.StringIO(runner.invoke(app, ["compare", *map(str, runs), "--csv"]).output)))
    assert sorted(r["protocol"] for r in rows if r["measure"] == "evaluation") == ["default", "plain"]


def test_a_field_added_later_is_not_a_difference(tmp_path: Path) -> None:
    """A run written before a config field existed (its config.toml lacks it) and one written after (it holds the
    default) have the same setting."""
    old = fake_run(tmp_path, "old", ["run.seed=0"], [(0.5, 0.4)])
    new = fake_run(tmp_path, "new", ["run.seed=1"], [(0.6, 0.5)])
    text = (old / "config.toml").read_text()
    assert "lineage_decay" in text
    (old / "config.toml").write_text("\n".join(line for line in text.splitlines()
                                               if not line.startswith(("lineage_decay", "crossover"))) + "\n")
    out = json.loads(runner.invoke(app, ["compare", str(old), str(new), "--json"]).output)
    assert [s["overrides"] for s in out["settings"]] == [{}] and out["settings"][0]["final_best"]["n"] == 2
