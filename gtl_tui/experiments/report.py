"""``gtl-tui report RUN... | SWEEP --out DIR``: figures, CSVs and one self-contained HTML page.

Writes into ``DIR``:

- ``fitness.png``/``.svg``: best, mean and worst per generation of one run; for several settings one line per
  setting (the mean over its seeds of the generation's best) with its 95% CI band over seeds;
- ``lineage.png``/``.svg``: the genealogy of the featured run (the one with the highest final best), the ancestry
  of its best learngene drawn over it; ``channels.png``/``.svg``: that learngene's channel set per gene layer,
  generation by generation along its ancestry;
- ``evaluation.png``/``.svg`` where evaluations exist: accuracy bars with their 95% CIs;
- ``generations.csv`` (run, generation, best, mean, worst, std, diversity, seconds) and ``individuals.csv``
  (run, generation, id, parent, task, fitness, gene_size, fraction, mutations), from the event logs;
- ``comparison.csv`` and ``comparison.json`` (``gtl-tui compare``);
- ``index.html``: the figures as inline SVG, the tables, the configs; no scripts, fonts or other requests.

``--tensorboard DIR`` writes the per-generation scalars of each run as TensorBoard event files (tensorboardX, or
torch.utils.tensorboard). matplotlib is the optional extra ``gtl-tui[report]``; it is imported when a report is made.
"""

from __future__ import annotations

import csv
import html
import json
import re
import time
from pathlib import Path
from typing import Any

from engine import events as ev
from gtl_tui.experiments.compare import (
    RunRecord,
    cell_key,
    compare,
    group,
    label,
    load_records,
    mean_ci,
    to_csv,
)
from gtl_tui.experiments.sweep import SWEEP_TOML, is_sweep_dir
from gtl_tui.experiments.sweepfile import SweepError

FIGURES = ("fitness", "lineage", "channels", "evaluation")


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise SweepError("report needs matplotlib: pip install 'gtl-tui[report]'") from None
    matplotlib.use("Agg")  # files only: no display, whatever the environment says
    matplotlib.rcParams.update({"svg.fonttype": "path", "svg.hashsalt": "gtl-tui", "font.size": 9})
    import matplotlib.pyplot as plt

    return plt


# --------------------------------------------------------------------------------------------- tables
def generation_rows(records: list[RunRecord]) -> list[dict[str, Any]]:
    return [{"run": r.name, "generation": g, "best": e.best, "mean": e.mean, "worst": e.worst, "std": e.std,
             "diversity": e.diversity, "seconds": e.seconds}
            for r in records for g, e in sorted(r.history.items())]


def _mutations(muts: list[dict[str, Any]]) -> str:
    parts = []
    for m in muts:
        added = "".join(f"+{c}" for c in m.get("added") or [])
        removed = "".join(f"-{c}" for c in m.get("removed") or [])
        parts.append(f"L{m.get('layer')}:{m.get('op')}{added}{removed}")
    return " ".join(parts)


def individuals(r: RunRecord) -> tuple[dict[int, ev.IndividualBorn], dict[int, ev.IndividualEvaluated]]:
    """Births and evaluations by id (the last record of each: a resumed generation is born and run again)."""
    born = {e.id: e for e in r.events if isinstance(e, ev.IndividualBorn)}
    done = {e.id: e for e in r.events if isinstance(e, ev.IndividualEvaluated)}
    return born, done


def individual_rows(records: list[RunRecord]) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        born, done = individuals(r)
        for i, b in sorted(born.items(), key=lambda kv: (kv[1].generation, kv[0])):
            rows.append({"run": r.name, "generation": b.generation, "id": i,
                         "parent": "" if b.parent is None else b.parent, "task": " ".join(map(str, b.task)),
                         "fitness": done[i].fitness if i in done else "", "gene_size": sum(b.gene_sizes),
                         "fraction": b.fraction, "mutations": _mutations(b.mutations)})
    return rows


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return path


# --------------------------------------------------------------------------------------------- figures
def _save(fig: Any, out: Path, name: str) -> None:
    fig.savefig(out / f"{name}.png", dpi=110)
    fig.savefig(out / f"{name}.svg", metadata={"Date": None})
    fig.clf()


def fitness_figure(plt: Any, records: list[RunRecord], out: Path) -> None:
    settings = group(records)
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    if len(records) == 1:
        r = records[0]
        gens = sorted(r.history)
        for what, style in (("best", "-"), ("mean", "--"), ("worst", ":")):
            ax.plot(gens, [getattr(r.history[g], what) for g in gens], style, marker="o", ms=3, label=what)
        ax.set_title(f"{r.name}: fitness per generation")
    else:
        for i, s in enumerate(settings):
            color = f"C{i % 10}"
            gens = sorted({g for r in s.runs for g in r.history})
            stats = [mean_ci([r.history[g].best for r in s.runs if g in r.history]) for g in gens]
            means = [c["mean"] for c in stats]
            ax.plot(gens, means, "-", marker="o", ms=3, color=color,
                    label=f"{label(s.overrides)} (n={len(s.runs)})")
            if any(c["ci95"] is not None for c in stats):
                lo = [c["mean"] - (c["ci95"] or 0.0) for c in stats]
                hi = [c["mean"] + (c["ci95"] or 0.0) for c in stats]
                ax.fill_between(gens, lo, hi, color=color, alpha=0.2, linewidth=0)
            ax.plot(gens, [statistics_mean([r.history[g].mean for r in s.runs if g in r.history]) for g in gens],
                    "--", color=color, alpha=0.6)
        ax.set_title("best fitness per generation, mean over seeds (band: 95% CI; dashed: population mean)",
                     fontsize=9)
    ax.xaxis.set_major_locator(_integer_ticks())
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, out, "fitness")
    plt.close(fig)


def _integer_ticks() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def statistics_mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def featured(records: list[RunRecord]) -> RunRecord:
    """The run whose final generation has the highest best fitness (ties: the first)."""
    scored = [r for r in records if r.final is not None]
    return max(scored, key=lambda r: r.final.best) if scored else records[0]


def best_id(r: RunRecord) -> int | None:
    finished = [e for e in r.events if isinstance(e, ev.RunFinished) and e.best_id is not None]
    if finished:
        return finished[-1].best_id
    return r.final.elite_id if r.final is not None else None


def ancestry(born: dict[int, ev.IndividualBorn], leaf: int | None) -> list[ev.IndividualBorn]:
    """The individual ``leaf`` and its ancestors, oldest first."""
    chain: list[ev.IndividualBorn] = []
    seen: set[int] = set()
    while leaf is not None and leaf in born and leaf not in seen:
        seen.add(leaf)
        chain.append(born[leaf])
        leaf = born[leaf].parent
    return chain[::-1]


def lineage_figures(plt: Any, r: RunRecord, out: Path) -> None:
    born, done = individuals(r)
    chain = ancestry(born, best_id(r))
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    by_gen: dict[int, list[int]] = {}
    for i, b in sorted(born.items()):
        by_gen.setdefault(b.generation, []).append(i)
    pos = {i: (b.generation, by_gen[b.generation].index(i)) for i, b in born.items()}
    for i, b in born.items():
        if b.parent is not None and b.parent in pos:
            (x0, y0), (x1, y1) = pos[b.parent], pos[i]
            ax.plot([x0, x1], [y0, y1], color="0.75", lw=0.8, zorder=1)
    for a, b in zip(chain, chain[1:], strict=False):
        (x0, y0), (x1, y1) = pos[a.id], pos[b.id]
        ax.plot([x0, x1], [y0, y1], color="C3", lw=2.5, zorder=2)
    xs, ys, cs = zip(*[(*pos[i], done[i].fitness if i in done else 0.0) for i in born], strict=True) if born else ([], [], [])
    sc = ax.scatter(xs, ys, c=cs, cmap="viridis", s=28, zorder=3, edgecolors="k", linewidths=0.3)
    if chain:
        ax.scatter([pos[b.id][0] for b in chain], [pos[b.id][1] for b in chain], s=70, facecolors="none",
                   edgecolors="C3", linewidths=1.5, zorder=4, label=f"ancestry of #{chain[-1].id}")
        ax.legend(fontsize=8, loc="upper left")
    if born:
        fig.colorbar(sc, ax=ax, label="fitness")
    ax.xaxis.set_major_locator(_integer_ticks())
    ax.yaxis.set_major_locator(_integer_ticks())
    ax.set_xlabel("generation")
    ax.set_ylabel("individual (by id within its generation)")
    ax.set_title(f"{r.name}: lineage (grey: parent -> child)")
    _save(fig, out, "lineage")
    plt.close(fig)

    layers = len(chain[-1].channels) if chain else 0
    fig, axes = plt.subplots(1, max(layers, 1), figsize=(max(2.2 * layers, 4), 3.2), layout="constrained",
                             squeeze=False)
    for li in range(layers):
        width = max(b.layer_widths[li] for b in chain)
        grid = [[1.0 if c in set(b.channels[li]) else 0.0 for c in range(width)] for b in chain]
        ax = axes[0][li]
        ax.imshow(grid, aspect="auto", cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"layer {li} ({len(chain[-1].channels[li])}/{chain[-1].layer_widths[li]})", fontsize=8)
        ax.set_xlabel("channel")
        ax.set_yticks(range(len(chain)), [f"g{b.generation}" for b in chain], fontsize=7)
    if not layers:
        axes[0][0].text(0.5, 0.5, "no learngene recorded", ha="center", va="center")
        axes[0][0].set_axis_off()
    fig.suptitle(f"{r.name}: channel set of the best learngene's ancestry, per gene layer")
    _save(fig, out, "channels")
    plt.close(fig)


#: methods whose network does not come from the run's evolution: one bar over every run when settings differ
BASELINES = ("scratch", "pretrained", "pretrained_random20", "pretrained_top20")


def pooled_baselines(comparison: dict[str, Any]) -> dict[str, Any]:
    """With several settings, the baselines as one pseudo-setting (mean ± 95% CI over every run that has them):
    they do not depend on the evolution, so a bar per setting would repeat them and bury the learngenes."""
    pooled: dict[tuple[str, str, int, int], list[float]] = {}
    for s in comparison["settings"]:
        for c in s["evaluation"]:
            if c["method"] in BASELINES:
                pooled.setdefault(cell_key(c), []).extend(r["mean"] for r in c.get("per_run", []))
    cells = [{"method": m, "protocol": pr, "shots": sh, "steps": st, **mean_ci(v)}
             for (m, pr, sh, st), v in pooled.items() if v]
    return {"overrides": {"all runs": True}, "runs": [], "evaluation": cells}


def evaluation_figure(plt: Any, records: list[RunRecord], comparison: dict[str, Any], out: Path) -> bool:
    bars: list[tuple[str, str, float, float]] = []  # (cell, series, mean, ci)
    single = len(records) == 1
    settings = comparison["settings"]
    if len(settings) > 1:
        settings = [{**s, "evaluation": [c for c in s["evaluation"] if c["method"] not in BASELINES]}
                    for s in settings] + [pooled_baselines(comparison)]
    for s in settings:
        for c in s["evaluation"]:
            ci = c["ci95"]
            if single:  # one run: the CI over its episodes (per_run holds it, from its evaluation file)
                ci = c["per_run"][0]["ci95"] if c.get("per_run") else None
            series = c["method"] if len(settings) == 1 else (
                c["method"] if s["overrides"] == {"all runs": True} else f"{c['method']} {label(s['overrides'])}")
            protocol = c.get("protocol", "default")
            bars.append((f"{c['shots']}-shot, {c['steps']} steps" + ("" if protocol == "default" else f", {protocol}"),
                         series, c["mean"], ci or 0.0))
    if not bars:
        return False
    cells = list(dict.fromkeys(b[0] for b in bars))
    series = list(dict.fromkeys(b[1] for b in bars))
    fig, ax = plt.subplots(figsize=(min(16, max(6, 1.2 * len(cells) * max(1, len(series)) / 2)), 4),
                           layout="constrained")
    w = 0.8 / len(series)
    for k, name in enumerate(series):
        pts = [(cells.index(c), m, e) for c, s, m, e in bars if s == name]
        ax.bar([x + (k - (len(series) - 1) / 2) * w for x, _, _ in pts], [100 * m for _, m, _ in pts], w,
               yerr=[100 * e for _, _, e in pts], capsize=3, label=name, color=f"C{k % 10}")
    ax.set_xticks(range(len(cells)), cells)
    ax.set_ylabel("accuracy (%)")
    ax.set_title("few-shot evaluation: mean and 95% CI" + ("" if single else " over seeds"))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars, never on them
    _save(fig, out, "evaluation")
    plt.close(fig)
    return True


# --------------------------------------------------------------------------------------------- html
CSS = """body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:70em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.85em}
figure{margin:1em 0}figure svg{max-width:100%;height:auto}figcaption{color:#666;font-size:.85em}"""


def _inline_svg(path: Path) -> str:
    text = path.read_text()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: the page parses it as HTML


def _cell(c: dict[str, Any], scale: float = 1.0, digits: int = 3) -> str:
    if c["mean"] is None:
        return "-"
    m = f"{scale * c['mean']:.{digits}f}"
    return m if c["ci95"] is None else f"{m} ± {scale * c['ci95']:.{digits}f}"


def comparison_html(comparison: dict[str, Any]) -> str:
    cols = list(dict.fromkeys(cell_key(c) for s in comparison["settings"] for c in s["evaluation"]))
    head = "".join(f"<th>{html.escape(m)}<br>{sh}-shot, {st} steps" + ("" if pr == "default" else f"<br>{pr}")
                   + "</th>" for m, pr, sh, st in cols)
    rows = []
    for s in comparison["settings"]:
        cells = {cell_key(c): c for c in s["evaluation"]}
        rows.append(f"<tr><td class=l>{html.escape(label(s['overrides']))}</td><td>{len(s['runs'])}</td>"
                    f"<td>{_cell(s['final_best'])}</td><td>{_cell(s['final_mean'])}</td>"
                    + "".join(f"<td>{_cell(cells[c], 100, 1) if c in cells else '-'}</td>" for c in cols) + "</tr>")
    return (f"<table><tr><th class=l>setting</th><th>runs</th><th>final best</th><th>final mean</th>{head}</tr>"
            + "".join(rows) + "</table>")


def runs_html(records: list[RunRecord]) -> str:
    rows = []
    for r in records:
        f = r.final
        state = next((e.status for e in reversed(r.events) if isinstance(e, ev.RunFinished)), "not finished")
        rows.append(f"<tr><td class=l>{html.escape(r.name)}</td><td>{r.config.get('run.seed')}</td>"
                    f"<td>{len(r.history)}</td><td>{f.best:.3f}</td><td>{f.mean:.3f}</td><td class=l>{state}</td></tr>"
                    if f else f"<tr><td class=l>{html.escape(r.name)}</td><td colspan=5>no generation</td></tr>")
    return ("<table><tr><th class=l>run</th><th>seed</th><th>generations</th><th>final best</th><th>final mean</th>"
            "<th class=l>state</th></tr>" + "".join(rows) + "</table>")


def write_html(out: Path, targets: list[Path], records: list[RunRecord], comparison: dict[str, Any],
               figures: list[tuple[str, str]]) -> Path:
    configs = []
    for t in targets:
        if is_sweep_dir(t) and (t / SWEEP_TOML).is_file():
            configs.append((f"sweep file of {t.name}", (t / SWEEP_TOML).read_text()))
    for s in group(records):
        r = s.runs[0]
        configs.append((f"config of {label(s.overrides)} ({r.name})", (r.path / "config.toml").read_text()))
    title = "GTL report: " + ", ".join(t.name for t in targets)
    parts = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p>{len(records)} run(s), written {time.strftime('%Y-%m-%d %H:%M')} by gtl-tui report. Data: "
             "<a href='generations.csv'>generations.csv</a>, <a href='individuals.csv'>individuals.csv</a>, "
             "<a href='comparison.csv'>comparison.csv</a>.</p>",
             "<h2>Settings (mean ± 95% CI over seeds)</h2>", comparison_html(comparison),
             "<h2>Runs</h2>", runs_html(records)]
    for name, caption in figures:
        parts.append(f"<h2>{html.escape(caption.split(':')[0])}</h2><figure>{_inline_svg(out / f'{name}.svg')}"
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("<h2>Configs</h2>")
    for what, text in configs:
        parts.append(f"<h3>{html.escape(what)}</h3><pre>{html.escape(text)}</pre>")
    parts.append("</body></html>\n")
    page = "\n".join(parts)
    if re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page):  # a page that must open offline
        raise SweepError("report: the page would make a network request")
    path = out / "index.html"
    path.write_text(page)
    return path


# --------------------------------------------------------------------------------------------- tensorboard
def write_tensorboard(records: list[RunRecord], logdir: Path) -> list[Path]:
    try:
        from tensorboardX import SummaryWriter  # not torch's writer: the CLI never imports torch
    except ImportError:
        raise SweepError("--tensorboard needs tensorboardX: pip install 'gtl-tui[report]'") from None
    dirs = []
    for r in records:
        d = logdir / r.name
        writer = SummaryWriter(logdir=str(d))
        for g, e in sorted(r.history.items()):
            for key in ("best", "mean", "worst", "std", "elite_fitness"):
                writer.add_scalar(f"fitness/{key}", getattr(e, key), g)
            writer.add_scalar("population/diversity", e.diversity, g)
            writer.add_scalar("speed/seconds", e.seconds, g)
            writer.add_scalar("speed/images_per_s", e.images_per_s, g)
        writer.close()
        dirs.append(d)
    return dirs


# --------------------------------------------------------------------------------------------- all
def build_report(targets: list[Path], out: Path, tensorboard: Path | None = None) -> list[Path]:
    """Write the report of the runs or sweeps ``targets`` into ``out``; returns the files written.

    Raises:
        SweepError: a target is not a run or sweep, or matplotlib (tensorboardX) is missing (one line).
    """
    records = load_records(targets)
    plt = _pyplot()
    out.mkdir(parents=True, exist_ok=True)
    comparison = compare(records)
    written = [
        write_csv(out / "generations.csv", generation_rows(records),
                  ["run", "generation", "best", "mean", "worst", "std", "diversity", "seconds"]),
        write_csv(out / "individuals.csv", individual_rows(records),
                  ["run", "generation", "id", "parent", "task", "fitness", "gene_size", "fraction", "mutations"]),
    ]
    (out / "comparison.csv").write_text(to_csv(comparison))
    (out / "comparison.json").write_text(json.dumps(comparison, indent=2) + "\n")
    written += [out / "comparison.csv", out / "comparison.json"]
    fitness_figure(plt, records, out)
    star = featured(records)
    lineage_figures(plt, star, out)
    figures = [("fitness", "Fitness: " + ("best, mean and worst per generation" if len(records) == 1 else
                                          "per setting, mean over seeds with 95% CI band")),
               ("lineage", f"Lineage: the genealogy of {star.name}, the best learngene's ancestry in red"),
               ("channels", f"Channel map: the best learngene of {star.name} along its ancestry, per gene layer")]
    if evaluation_figure(plt, records, comparison, out):
        figures.append(("evaluation", "Evaluation: few-shot accuracy of each method, mean and 95% CI"))
    for name, _ in figures:
        written += [out / f"{name}.png", out / f"{name}.svg"]
    written.append(write_html(out, [t.expanduser() for t in targets], records, comparison, figures))
    if tensorboard is not None:
        written += write_tensorboard(records, tensorboard)
    return written
