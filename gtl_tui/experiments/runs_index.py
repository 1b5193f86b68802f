"""The rows of the Runs screen: every run of a folder (and of the sweeps in it), plain Python, no Textual.

A row holds what the table shows: state, progress, best fitness, the evaluation headline (5-shot learngene vs
scratch, at the largest fine-tuning budget both have) and the config keys that tell the run apart from the others
in the folder. Reading 200 runs takes a tail read of each log (``gtl_tui.runs.read_tail``), a small TOML parse and
a look at ``evaluations/``; live runs are refreshed on their own.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.rundir import RunDirError
from gtl_tui.experiments.compare import flatten, newest_evaluation, with_defaults
from gtl_tui.experiments.sweep import MANIFEST
from gtl_tui.runs import LIVE_STATES, is_run_dir, read_run

HIDDEN = {"run.seed", "name"}


@dataclass
class RunRow:
    path: Path
    name: str  # relative to the folder: "run" or "sweep/run"
    sweep: str | None
    state: str
    generation: int
    generations: int | None
    best: float | None
    updated: float | None
    config: dict[str, Any] = field(repr=False, default_factory=dict)  # flattened
    headline: tuple[float, float] | None = None  # (learngene, scratch) accuracy
    headline_label: str = ""  # e.g. "5-shot, 50 steps"
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    @property
    def seed(self) -> Any:
        return self.config.get("run.seed")

    def progress(self) -> str:
        return f"{self.generation}/{self.generations if self.generations is not None else '?'}"

    def setting(self) -> str:
        return " ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in self.overrides.items())


def headline(evaluation: dict[str, Any] | None) -> tuple[tuple[float, float] | None, str]:
    """(learngene, scratch) mean accuracy at 5 shots (else the most shots both have), largest budget both have."""
    if not evaluation:
        return None, ""
    cells: dict[tuple[int, int], dict[str, float]] = {}
    for r in evaluation.get("results", []):
        try:
            cells.setdefault((int(r["shots"]), int(r["steps"])), {})[str(r["method"])] = float(r["mean"])
        except (KeyError, TypeError, ValueError):
            continue
    both = [k for k, v in cells.items() if "learngene" in v and "scratch" in v]
    if not both:
        return None, ""
    five = [k for k in both if k[0] == 5]
    shots, steps = max(five or both)
    c = cells[(shots, steps)]
    return (c["learngene"], c["scratch"]), f"{shots}-shot, {steps} steps"


def read_row(run: Path, root: Path, sweep: str | None = None) -> RunRow:
    info = read_run(run)
    try:
        config = flatten(with_defaults(tomllib.loads((run / "config.toml").read_text())))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        config = {}
    head, head_label = headline(newest_evaluation(run))
    name = str(run.relative_to(root)) if run != root else run.name
    return RunRow(run, name, sweep, info.state, info.generation, info.generations, info.best_fitness, info.updated,
                  config, head, head_label)


def refresh_row(row: RunRow, root: Path) -> RunRow:
    """The row read again (state, progress, best, evaluation), keeping its overrides."""
    new = read_row(row.path, root, row.sweep)
    new.overrides = row.overrides
    return new


def scan(root: str | Path) -> list[RunRow]:
    """Every run directly in ``root`` and in each sweep folder in it (``root`` may itself be a sweep or a run)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise RunDirError(f"{root}: no such runs directory" if not root.exists() else f"{root}: not a directory")
    rows: list[RunRow] = []
    if is_run_dir(root):
        rows.append(read_row(root, root.parent))
    else:
        sweep_self = root.name if (root / MANIFEST).is_file() else None
        for d in sorted(root.iterdir()):
            if is_run_dir(d):
                rows.append(read_row(d, root, sweep_self))
            elif (d / MANIFEST).is_file():
                rows += [read_row(r, root, d.name) for r in sorted(d.iterdir()) if is_run_dir(r)]
    distinguish(rows)
    return rows


def holds_runs(folder: str | Path) -> bool:
    """Whether ``folder`` is a sweep or a folder holding runs or sweeps (not a run itself)."""
    p = Path(folder).expanduser()
    if not p.is_dir() or is_run_dir(p) or (p / "events.jsonl").exists():
        return False
    if (p / MANIFEST).is_file():
        return True
    try:
        return any(is_run_dir(d) or (d / MANIFEST).is_file() for d in p.iterdir())
    except OSError:
        return False


def distinguish(rows: list[RunRow]) -> None:
    """Set each row's overrides: the config keys whose values differ across the rows (seed and name aside)."""
    keys = dict.fromkeys(k for r in rows for k in r.config)
    differ = [k for k in keys if k not in HIDDEN
              and len({json.dumps(r.config.get(k), sort_keys=True) for r in rows}) > 1]
    for r in rows:
        r.overrides = {k: r.config.get(k) for k in differ}
