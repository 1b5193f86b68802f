"""``gtl-tui select``: choose a run's learngene on meta-validation episodes (:mod:`engine.fewshot.select`) and
export it as ``learngenes/selected-g<generation>-i<id>``; the ranking goes to ``selection.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from engine.atomic import write_atomic
from gtl_tui.commands.common import DEFAULT_RUNS_DIR, EXIT_FAILED, RunArg, RunsDirOpt, fail, resolve_run


def select(
    run: RunArg,
    generations: Annotated[int, typer.Option("--generations", min=1, help="Candidates: every individual of the "
                                             "newest N generations the gene archive holds.")] = 8,
    episodes: Annotated[int, typer.Option("--episodes", min=1, help="Meta-validation episodes.")] = 30,
    shots: Annotated[int, typer.Option("--shots", min=1)] = 5,
    ways: Annotated[int, typer.Option("--ways", min=2)] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the episodes and non-gene inits.")] = 0,
    threads: Annotated[int, typer.Option("--threads", help="CPU threads (0: torch's default).")] = 0,
    runs_dir: RunsDirOpt = DEFAULT_RUNS_DIR,
) -> None:
    """Choose the run's learngene by transfer: score its recent individuals' descendants on meta-validation
    classes (few-shot, no fine-tuning) and export the best; evaluate it on meta-test with `gtl-tui evaluate`."""
    run = resolve_run(run, runs_dir)
    from engine.config import ConfigError, load_config
    from engine.data import DataError, load_dataset
    from engine.fewshot.evaluate import EvalSettings
    from engine.fewshot.select import SELECTION_FILE, select_learngene, selection_record
    from engine.run.gene_archive import export_offline
    from engine.run.runner import set_threads
    from engine.rundir import CONFIG_FILE, LEARNGENES_DIR

    set_threads(threads)
    try:
        cfg = load_config(run / CONFIG_FILE)
        ds = load_dataset(cfg.data)
    except (ConfigError, DataError) as err:
        raise fail(f"error: {err}") from None
    if "val" not in ds.splits or len(ds.splits["val"]) < ways:
        raise fail(f"error: {cfg.data.dataset} has {len(ds.splits.get('val', []))} meta-validation classes; "
                   f"{ways}-way episodes need {ways}")
    settings = EvalSettings(episodes=episodes, ways=ways, shots=[shots], steps=[0], split="val", seed=seed,
                            nongene_init=cfg.learngene.nongene_init, nongene_scale=cfg.learngene.nongene_scale)
    try:
        ranking = select_learngene(run, ds, settings, generations=generations)
        best = ranking[0]
        stem = run / LEARNGENES_DIR / f"selected-g{best.generation:04d}-i{best.id}"
        weights, manifest = export_offline(run, best.id, stem)
        record = selection_record(ranking, settings, generations, str(weights))
        write_atomic(run / SELECTION_FILE, json.dumps(record, indent=2) + "\n")
    except ValueError as err:
        raise fail(f"error: cannot select in {run}: {err}", EXIT_FAILED) from None
    except OSError as err:
        raise fail(f"error: select: {err}", EXIT_FAILED) from None
    table = Table(title=f"{run.name}: {len(ranking)} candidates, {ways}-way {shots}-shot meta-validation accuracy "
                        f"(%), {episodes} episodes, no fine-tuning")
    for col in ("individual", "generation", "own fitness", "validation"):
        table.add_column(col, justify="right")
    for c in ranking[:5]:
        table.add_row(str(c.id), str(c.generation), f"{c.fitness:.3f}", f"{100 * c.val:.1f} ± {100 * c.ci95:.1f}")
    Console().print(table)
    typer.echo(f"selected individual {best.id} (generation {best.generation})\nlearngene {weights}\n"
               f"manifest  {manifest}\nranking   {run / SELECTION_FILE}\n"
               f"next: gtl-tui evaluate {Path(weights).with_suffix('')}")
