"""``gtl-tui compare``: runs grouped by setting (their overrides, seeds aside), mean ± 95% CI over seeds.

A run's *setting* is the config keys in which the compared runs differ (``run.seed`` and ``name`` aside), plus a
sweep's grid keys. Per setting: the final generation's best and mean fitness and every evaluation result present
(method, shots, steps; each run's newest ``evaluations/*.json``), as the mean over the setting's runs and the
half-width of its 95% confidence interval with Student's t (n - 1 degrees of freedom; none for one run).
Plain Python: no numpy, no scipy, no torch.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import events as ev
from gtl_tui.evaluations import report_protocol
from gtl_tui.experiments.sweep import CONFIG_FILE, EVAL_DIR, is_sweep_dir, read_manifest, sweep_runs
from gtl_tui.experiments.sweepfile import SEED_KEY, SweepError

IGNORED = {SEED_KEY, "name"}
VARIANT_KEY = "variant"


# --------------------------------------------------------------------------------------------- statistics
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (Lentz's method)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betai(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbeta) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbeta) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """Student's t distribution function."""
    tail = 0.5 * _betai(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (bisection on the CDF, 1e-12)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be in (0, 1)")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2.0


def mean_ci(values: list[float]) -> dict[str, Any]:
    """``{"mean", "ci95", "n"}``: ci95 = t(0.975, n-1) * s / sqrt(n), None for a single value."""
    n = len(values)
    if n == 0:
        return {"mean": None, "ci95": None, "n": 0}
    m = statistics.fmean(values)
    ci = t_quantile(0.975, n - 1) * statistics.stdev(values) / math.sqrt(n) if n > 1 else None
    return {"mean": m, "ci95": ci, "n": n}


# --------------------------------------------------------------------------------------------- runs
@dataclass
class RunRecord:
    """What comparison and reports need of one run, read from its directory."""

    path: Path
    config: dict[str, Any]  # flattened: "section.key" -> value
    history: dict[int, ev.GenerationCompleted]  # the last record of each generation (a resumed one is re-run)
    events: list[ev.Event] = field(repr=False, default_factory=list)
    evaluation: dict[str, Any] | None = None  # the newest evaluations/*.json of the default protocol
    grid_keys: list[str] = field(default_factory=list)  # the sweep's grid keys, when it belongs to one
    sweep: str | None = None
    evaluations: dict[str, dict[str, Any]] = field(default_factory=dict)  # protocol -> its newest evaluation
    variant: str | None = None  # the sweep variant's name, when it belongs to one

    @property
    def name(self) -> str:
        return f"{self.sweep}/{self.path.name}" if self.sweep else self.path.name

    @property
    def final(self) -> ev.GenerationCompleted | None:
        return self.history[max(self.history)] if self.history else None


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def newest_evaluations(run: Path) -> dict[str, dict[str, Any]]:
    """Each fine-tuning protocol's newest readable ``evaluations/*.json`` of the run: ``{protocol: result}``."""
    d = run / EVAL_DIR
    files = sorted((p for p in d.glob("*.json") if not p.name.startswith(".")), key=lambda p: p.stat().st_mtime) \
        if d.is_dir() else []
    out: dict[str, dict[str, Any]] = {}
    for p in reversed(files):
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("results"), list):
            out.setdefault(report_protocol(data), data)
    return out


def newest_evaluation(run: Path, protocol: str = "default") -> dict[str, Any] | None:
    return newest_evaluations(run).get(protocol)


def with_defaults(raw: dict[str, Any]) -> dict[str, Any]:
    """The config with every field this version knows, defaults filled in: a run written before a field existed
    does not differ from a newer run by that field's absence."""
    from engine.config import LATER_FIELDS, ConfigError, config_from_dict

    try:
        return config_from_dict(raw).to_dict()
    except (ConfigError, ValueError, TypeError):  # a config of another version: fill the known later fields only
        out = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
        for (section, key), default in LATER_FIELDS.items():
            if isinstance(out.get(section), dict):
                out[section].setdefault(key, default)
        return out


def read_record(run: Path, grid_keys: list[str] | None = None, sweep: str | None = None,
                variant: str | None = None) -> RunRecord:
    try:
        raw = tomllib.loads((run / CONFIG_FILE).read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise SweepError(f"{run}: not a readable run directory ({type(err).__name__})") from None
    config = flatten(with_defaults(raw))
    events = ev.read_events(run / ev.EVENTS_FILE)[0]
    history = {e.generation: e for e in events if isinstance(e, ev.GenerationCompleted)}
    evals = newest_evaluations(run)
    return RunRecord(run, config, history, events, evals.get("default"), list(grid_keys or []), sweep, evals,
                     variant)


def load_records(targets: list[Path]) -> list[RunRecord]:
    """The runs named: run directories, and every started run of each sweep folder.

    Raises:
        SweepError: a target is neither (one line).
    """
    records: list[RunRecord] = []
    for t in targets:
        t = t.expanduser()
        if is_sweep_dir(t):
            manifest = read_manifest(t)
            grid = list(manifest.get("grid") or {})
            variant_of = {p["name"]: p.get("variant") for p in manifest["points"]}
            records += [read_record(r, grid, t.name, variant_of.get(r.name)) for r in sweep_runs(t)]
        elif (t / CONFIG_FILE).is_file():
            records.append(read_record(t))
        elif t.exists():
            raise SweepError(f"{t}: neither a run directory nor a sweep folder")
        else:
            raise SweepError(f"{t}: no such run directory or sweep folder")
    if not records:
        raise SweepError("no runs to compare (a sweep whose runs have not started yet?)")
    return records


def setting_keys(records: list[RunRecord]) -> list[str]:
    """The keys that tell the runs' settings apart: those whose values differ, plus the sweeps' grid keys; a
    sweep's variants by their name (``variant``) instead of the config keys they set."""
    keys: dict[str, None] = {}
    if any(r.variant is not None for r in records):
        keys[VARIANT_KEY] = None
    for r in records:
        keys.update(dict.fromkeys(r.grid_keys))
    all_keys = dict.fromkeys(k for r in records for k in r.config)
    for k in all_keys:
        if k not in IGNORED and len({json.dumps(r.config.get(k), sort_keys=True) for r in records}) > 1:
            keys[k] = None
    return [k for k in keys if k not in IGNORED and (k == VARIANT_KEY or k not in variant_keys(records))]


def variant_keys(records: list[RunRecord]) -> set[str]:
    """The config keys set by the variants of the records' sweeps."""
    out: set[str] = set()
    for sweep_path in {r.path.parent for r in records if r.variant is not None}:
        for ov in (read_manifest(sweep_path).get("variants") or {}).values():
            out.update(ov)
    return out


@dataclass
class Setting:
    overrides: dict[str, Any]
    runs: list[RunRecord]


def group(records: list[RunRecord]) -> list[Setting]:
    keys = setting_keys(records)
    groups: dict[str, Setting] = {}
    for r in records:
        ov = {k: r.variant if k == VARIANT_KEY else r.config.get(k) for k in keys}
        groups.setdefault(json.dumps(ov, sort_keys=True), Setting(ov, [])).runs.append(r)
    return list(groups.values())


def compare(records: list[RunRecord]) -> dict[str, Any]:
    """The comparison as the JSON of ``compare --json``."""
    out = []
    for s in group(records):
        finals = [r.final for r in s.runs if r.final is not None]
        cells: dict[tuple[str, str, int, int], list[tuple[str, float, float | None]]] = {}
        for r in s.runs:
            for protocol, evaluation in r.evaluations.items():
                for res in evaluation.get("results", []):
                    try:
                        key = (str(res["method"]), protocol, int(res["shots"]), int(res["steps"]))
                        ci = res.get("ci95")
                        cells.setdefault(key, []).append(
                            (r.name, float(res["mean"]), float(ci) if ci is not None else None))
                    except (KeyError, TypeError, ValueError):
                        continue
        out.append({
            "overrides": s.overrides,
            "runs": [str(r.path) for r in s.runs],
            "final_best": mean_ci([f.best for f in finals]),
            "final_mean": mean_ci([f.mean for f in finals]),
            # per cell: mean ± 95% CI over the setting's runs (seeds), and each run's own result with the CI
            # over its episodes
            "evaluation": [{"method": m, "protocol": pr, "shots": sh, "steps": st, **mean_ci([x[1] for x in v]),
                            "per_run": [{"run": name, "mean": mean, "ci95": ci} for name, mean, ci in v]}
                           for (m, pr, sh, st), v in sorted(cells.items(), key=lambda kv: (
                               kv[0][1] != "default", kv[0][1], kv[0][2], kv[0][3], kv[0][0]))],
        })
    return {"settings": out}


# --------------------------------------------------------------------------------------------- output
def _fmt(cell: dict[str, Any], scale: float = 1.0, digits: int = 3) -> str:
    if cell["mean"] is None:
        return "-"
    m = f"{scale * cell['mean']:.{digits}f}"
    return m if cell["ci95"] is None else f"{m} ± {scale * cell['ci95']:.{digits}f}"


def cell_key(c: dict[str, Any]) -> tuple[str, str, int, int]:
    """An evaluation cell's identity: method, fine-tuning protocol, shots, steps."""
    return c["method"], c.get("protocol", "default"), c["shots"], c["steps"]


def label(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "(same config)"


def to_csv(result: dict[str, Any]) -> str:
    """Long format: one row per setting and measure (final_best, final_mean, each evaluation cell)."""
    keys = list(dict.fromkeys(k for s in result["settings"] for k in s["overrides"]))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*keys, "measure", "method", "protocol", "shots", "steps", "n", "mean", "ci95"])
    for s in result["settings"]:
        ov = [s["overrides"].get(k) for k in keys]
        for measure in ("final_best", "final_mean"):
            c = s[measure]
            w.writerow([*ov, measure, "", "", "", "", c["n"], c["mean"], c["ci95"]])
        for c in s["evaluation"]:
            w.writerow([*ov, "evaluation", c["method"], c.get("protocol", "default"), c["shots"], c["steps"], c["n"],
                        c["mean"], c["ci95"]])
    return buf.getvalue()


def to_markdown(result: dict[str, Any]) -> str:
    """A GitHub table: one column per setting, one row per measure (final fitness, then each evaluation cell:
    accuracy in %), each cell the mean ± 95% CI over the setting's seeds (n in the header)."""
    settings = result["settings"]
    head = ["measure", *(f"{label(s['overrides'])} (n={len(s['runs'])})" for s in settings)]
    rows = [["final best fitness", *(_fmt(s["final_best"]) for s in settings)],
            ["final mean fitness", *(_fmt(s["final_mean"]) for s in settings)]]
    cols = list(dict.fromkeys(cell_key(c) for s in settings for c in s["evaluation"]))
    for key in cols:
        m, pr, sh, st = key
        cells = []
        for s in settings:
            c = next((x for x in s["evaluation"] if cell_key(x) == key), None)
            cells.append("-" if c is None else _fmt(c, 100, 1))
        rows.append([f"{m}, {sh}-shot, {st} steps" + ("" if pr == "default" else f" ({pr})"), *cells])
    right = "|".join(["---", *("---:" for _ in settings)])
    return "\n".join(["| " + " | ".join(head) + " |", f"|{right}|", *("| " + " | ".join(r) + " |" for r in rows)]) + "\n"


def table(result: dict[str, Any]) -> Any:
    from rich.table import Table

    cols = list(dict.fromkeys(cell_key(c) for s in result["settings"] for c in s["evaluation"]))
    t = Table(title="mean ± 95% CI over seeds (evaluations: accuracy, %)", header_style="bold")
    t.add_column("setting")
    t.add_column("seeds", justify="right")
    t.add_column("final best", justify="right")
    t.add_column("final mean", justify="right")
    for m, pr, sh, st in cols:
        t.add_column(f"{m}\n{sh}-shot {st} steps" + ("" if pr == "default" else f"\n{pr}"), justify="right")
    for s in result["settings"]:
        ev_cells = {cell_key(c): c for c in s["evaluation"]}
        t.add_row(label(s["overrides"]), str(len(s["runs"])), _fmt(s["final_best"]), _fmt(s["final_mean"]),
                  *(_fmt(ev_cells[c], 100, 1) if c in ev_cells else "-" for c in cols))
    return t
