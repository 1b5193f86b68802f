"""``export``: a learngene out of a run, from its live engine or, once the engine is gone, from what the run kept
(the final learngene, the gene archive). Not a light-client verb: the archive is read with torch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.atomic import copy_atomic
from gtl_tui.commands.common import DEFAULT_RUNS_DIR, EXIT_FAILED, RunArg, RunsDirOpt, fail, resolve_run
from gtl_tui.commands.control import _read, _request
from gtl_tui.runs import RunInfo, final_learngene


def _export_offline(info: RunInfo, individual: int | None, out: Path | None) -> None:
    """Export from a run whose engine is gone: the final learngene in learngenes/ for the best, else any
    individual of any generation from the run's gene archive (``engine.run.gene_archive``, which imports torch:
    export is no light-client verb)."""
    gene = final_learngene(Path(info.path)) if individual is None else None
    if gene is None:
        from engine.run.gene_archive import export_offline

        out_path = out
        if out is not None and out.is_dir():
            out_path = out / f"{Path(info.path).name}-{'best' if individual is None else f'ind{individual}'}"
        try:
            weights, manifest = export_offline(Path(info.path), individual, out_path)
        except ValueError as err:
            raise fail(f"error: cannot export from {info.path} ({info.state}): {err}", EXIT_FAILED) from None
        except OSError as err:
            raise fail(f"error: export: {err}", EXIT_FAILED) from None
        from engine.control.server import scp_line

        what = "the best learngene" if individual is None else f"the learngene of individual {individual}"
        typer.echo(f"the engine is not running ({info.state}); {what}, from the genes the run kept:")
        typer.echo(f"learngene {weights}\nmanifest  {manifest}\n{scp_line(weights, manifest)}")
        return
    from engine.control.server import scp_line

    weights, manifest = gene, gene.with_suffix(".json")
    if out is not None:
        stem = out / f"{Path(info.path).name}-best" if out.is_dir() else out
        if stem.suffix in (".safetensors", ".json"):
            stem = stem.with_suffix("")
        try:
            stem.parent.mkdir(parents=True, exist_ok=True)
            new_w, new_m = stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")
            copy_atomic(weights, new_w)
            copy_atomic(manifest, new_m)
        except OSError as err:
            raise fail(f"error: export: {err}", EXIT_FAILED) from None
        weights, manifest = new_w, new_m
    what = "final learngene" if info.state == "finished" else "newest learngene exported from it"
    typer.echo(f"the engine is not running ({info.state}); the run's {what}:")
    typer.echo(f"learngene {weights}\nmanifest  {manifest}\n{scp_line(weights, manifest)}")


def best_of_generation(run: Path, generation: int) -> int:
    """The id of generation ``generation``'s best individual, as the engine named it in the event log
    (``generation_completed.best_id``; after a resume the newest entry counts). Raises a one-line usage error."""
    from engine.events import EVENTS_FILE, GenerationCompleted, read_events

    best = {e.generation: e.best_id for e in read_events(run / EVENTS_FILE)[0] if isinstance(e, GenerationCompleted)}
    if generation not in best:
        done = f"generations 0-{max(best)} are complete" if best else "no generation is complete yet"
        raise fail(f"error: {run.name} has no completed generation {generation} ({done})")
    return best[generation]


def export(
    run: RunArg,
    individual: Annotated[int | None, typer.Option("--individual", "-i", min=0,
                                                   help="An individual's id (default: the best).")] = None,
    generation: Annotated[int | None, typer.Option(
        "--generation", "-g", min=0, help="The best individual of this generation (numbered from 0, as in the "
                                          "event log and the monitor).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output path or folder (default: RUN/learngenes/).")]
    = None,
    runs_dir: RunsDirOpt = DEFAULT_RUNS_DIR,
) -> None:
    """Export the best learngene (or an individual's) as .safetensors + .json and print an scp line."""
    run = resolve_run(run, runs_dir)
    if generation is not None:
        if individual is not None:
            raise fail("error: give --individual or --generation, not both")
        individual = best_of_generation(run, generation)
    info = _read(run)
    out_abs = out.expanduser().resolve() if out is not None else None
    if not info.controllable:
        if info.live:
            raise fail(f"error: cannot export from {info.path}: its engine (pid {info.pid}) has no control socket",
                       EXIT_FAILED)
        _export_offline(info, individual, out_abs)
        return
    args: dict[str, object] = {}
    if individual is not None:
        args["individual"] = individual
    if out_abs is not None:
        args["out"] = str(out_abs)
    reply = _request(run, "export", "export failed: ", **args)
    typer.echo(f"learngene {reply['path']}\nmanifest  {reply['manifest']}\n{reply['scp']}")
