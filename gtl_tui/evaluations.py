"""Evaluation results kept beside a run: ``<run dir>/evaluations/<learngene>.json``.

``gtl-tui evaluate`` writes one file per evaluated learngene (atomically); the monitor reads them back.
Plain Python (no Textual, no torch): the format and the change check are shared by both sides.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.atomic import write_atomic
from engine.rundir import CONFIG_FILE, EVALUATIONS_DIR, EVENTS_FILE, LEARNGENES_DIR


def run_dir_of(learngene: Path) -> Path | None:
    """The run directory a learngene (stem or file) was exported into, or None when it is not in one."""
    folder = Path(learngene).expanduser().resolve().parent
    run = folder.parent
    if folder.name == LEARNGENES_DIR and ((run / EVENTS_FILE).is_file() or (run / CONFIG_FILE).is_file()):
        return run
    return None


PROTOCOLS = ("default", "plain")  # the fine-tuning protocols of engine.fewshot.evaluate (a test checks they agree)


def evaluation_file(name: str, protocol: str = "default") -> str:
    """``<learngene>.json`` for the default protocol, ``<learngene>.<protocol>.json`` for another: one file per
    learngene and protocol, so evaluating under the plain protocol keeps the default one's result."""
    return f"{name}.json" if protocol == "default" else f"{name}.{protocol}.json"


def file_protocol(filename: str) -> str | None:
    """The protocol an evaluation file name says (see :func:`evaluation_file`); None for a non-JSON file."""
    if not filename.endswith(".json"):
        return None
    stem = filename.removesuffix(".json")
    for p in PROTOCOLS[1:]:
        if stem.endswith("." + p):
            return p
    return "default"


def write_evaluation(run_dir: Path, name: str, report: dict[str, Any]) -> Path:
    """Write ``report`` to ``<run_dir>/evaluations/<name>[.<protocol>].json`` (temporary file, then rename); the
    protocol is the report's ``settings.finetune.name``."""
    out = Path(run_dir) / EVALUATIONS_DIR
    out.mkdir(mode=0o700, parents=True, exist_ok=True)  # inside the run directory: owner-only too
    return write_atomic(out / evaluation_file(name, report_protocol(report)), json.dumps(report, indent=2) + "\n")


def report_protocol(report: Any) -> str:
    """The fine-tuning protocol an evaluation result records (``default`` for results older than protocols)."""
    try:
        name = report["settings"]["finetune"]["name"]
    except (KeyError, TypeError):
        return "default"
    return name if isinstance(name, str) else "default"


@dataclass
class Evaluation:
    """One evaluation file: ``cells[method][(shots, steps)] = (mean, ci95)``, or ``error`` when unreadable."""

    name: str
    mtime: float
    cells: dict[str, dict[tuple[int, int], tuple[float, float]]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def columns(self) -> list[tuple[int, int]]:
        return sorted({c for row in self.cells.values() for c in row})


def parse_evaluation(name: str, mtime: float, data: Any) -> Evaluation:
    ev = Evaluation(name, mtime)
    try:
        for r in data["results"]:
            ev.cells.setdefault(str(r["method"]), {})[(int(r["shots"]), int(r["steps"]))] = (
                float(r["mean"]), float(r["ci95"]))
        settings = data.get("settings", {})
        ev.settings = settings if isinstance(settings, dict) else {}
    except (KeyError, TypeError, ValueError, AttributeError):
        ev.cells, ev.error = {}, "not an evaluation result"
    return ev


class EvaluationDir:
    """Reads ``<run dir>/evaluations/*.json`` again only when a file was added, removed or rewritten.

    ``poll()`` costs one directory listing and a stat per file; it returns the evaluations (newest first)
    when something changed since the last call, else None.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / EVALUATIONS_DIR
        self._seen: tuple[tuple[str, int, int], ...] | None = None

    def _signature(self) -> tuple[tuple[str, int, int], ...]:
        try:
            entries = [e for e in os.scandir(self.path) if e.name.endswith(".json") and not e.name.startswith(".")]
        except OSError:
            return ()
        sig = []
        for e in entries:
            try:
                st = e.stat()
            except OSError:
                continue
            sig.append((e.name, st.st_mtime_ns, st.st_size))
        return tuple(sorted(sig))

    def poll(self) -> list[Evaluation] | None:
        sig = self._signature()
        if sig == self._seen:
            return None
        self._seen = sig
        out = []
        for name, mtime_ns, _ in sig:
            stem = name.removesuffix(".json")
            try:
                data = json.loads((self.path / name).read_text())
            except (OSError, ValueError, RecursionError) as err:
                out.append(Evaluation(stem, mtime_ns / 1e9, error=f"unreadable ({type(err).__name__})"))
                continue
            out.append(parse_evaluation(stem, mtime_ns / 1e9, data))
        out.sort(key=lambda ev: (-ev.mtime, ev.name))
        return out
