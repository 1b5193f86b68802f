"""``gtl-tui evaluate`` and ``gtl-tui pretrain``: few-shot evaluation of a learngene against baselines.

The engine part lives in :mod:`engine.fewshot`; this module parses options, resolves paths and defaults (the data
of the learngene's own run), prints a rich table and writes the JSON. torch is imported inside the commands only,
so ``import gtl_tui.cli`` stays light.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from engine.rundir import GEN0_NAME as GEN0
from engine.rundir import LEARNGENES_DIR
from gtl_tui.commands.common import default_config_path, fail


def _ints(text: str, what: str) -> list[int]:
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise fail(f"error: --{what} expects comma-separated integers (got {text!r})") from None
    if not out:
        raise fail(f"error: --{what} is empty")
    return out


def resolve_learngene(path: Path) -> tuple[Path, Path | None]:
    """A learngene path (file or stem) or a run directory -> (learngene, the run's gen-0 learngene if any)."""
    p = path.expanduser()
    if p.is_dir():
        d = p / LEARNGENES_DIR
        # The run's end exports its elite (best-...) and then, when it is another individual, the best of the last
        # generation (last-best-...), which transferred as well or better in every measured run
        # (docs/evaluation.md): the newest of them is that run end's choice.
        found = [*d.glob("best-*.json"), *d.glob("last-best-*.json")] if d.is_dir() else []
        best = sorted(found, key=lambda q: (q.stat().st_mtime, q.name.startswith("last-best")))
        if not best:
            raise fail(f"error: {p}: no exported learngene (learngenes/best-*.json); export one first")
        gen0 = d / f"{GEN0}.json"
        return best[-1], gen0 if gen0.is_file() else None
    stem = p.with_suffix("") if p.suffix in (".json", ".safetensors") else p
    if not stem.with_name(stem.name + ".json").is_file():
        raise fail(f"error: {p}: no such learngene (expected {stem.name}.json and {stem.name}.safetensors)")
    gen0 = stem.parent / f"{GEN0}.json"
    return stem, gen0 if gen0.is_file() and stem.name != GEN0 else None


def data_config(manifest: dict[str, Any], dataset: str | None, root: str | None, image_size: int | None):
    """The data section of the learngene's run, with the command-line overrides."""
    from engine.config import DataConfig

    data = dict((manifest.get("config") or {}).get("data") or {})
    if dataset:
        data["dataset"] = dataset
    if root:
        data["root"] = root
    if image_size:
        data["image_size"] = image_size
    if not data:
        data = {"dataset": manifest.get("dataset", "glyphs"), "image_size": manifest.get("image_size", 32)}
    try:
        return DataConfig.model_validate(data)
    except ValueError as err:
        first = err.errors()[0] if hasattr(err, "errors") else None  # pydantic ValidationError
        msg = first["msg"].removeprefix("Value error, ") if first else str(err)
        raise fail(f"error: data: {msg} (use --data ROOT / --dataset)") from None


def results_table(report: dict[str, Any], title: str) -> Table:
    """Methods as rows, (shots, steps) as columns, 'mean ± ci95' in percent."""
    res = report["results"]
    cols = sorted({(r["shots"], r["steps"]) for r in res})
    table = Table(title=title)
    table.add_column("method", style="bold")
    for shots, steps in cols:
        table.add_column(f"{shots}-shot\n{steps} steps", justify="right")
    for m in dict.fromkeys(r["method"] for r in res):
        cells = {(r["shots"], r["steps"]): r for r in res if r["method"] == m}
        table.add_row(m, *(f"{100 * cells[c]['mean']:.1f} ± {100 * cells[c]['ci95']:.1f}" if c in cells else "-"
                           for c in cols))
    return table


def evaluate(
    learngene: Annotated[Path, typer.Argument(
        help="Learngene (.json/.safetensors or stem) or a run directory (its last generation's best, else its elite).",
        show_default=False)],
    data: Annotated[str | None, typer.Option("--data", help="Dataset root (default: the learngene's run's).")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="glyphs, cifar-fs or miniimagenet.")] = None,
    arch: Annotated[str | None, typer.Option("--arch", help="Descendant architecture (default: the gene's).")] = None,
    width_scale: Annotated[float, typer.Option("--width-scale", help="Descendant width / ancestry width.")] = 1.0,
    extra_layers: Annotated[int, typer.Option("--extra-layers", help="PIM layers added on top.")] = 0,
    episodes: Annotated[int, typer.Option("--episodes", help="Episodes per shot setting.")] = 100,
    shots: Annotated[str, typer.Option("--shots", help="Comma-separated shots.")] = "1,5",
    steps: Annotated[str, typer.Option("--steps", help="Fine-tuning budgets (0: nearest class mean).")] = "0,10,50",
    ways: Annotated[int, typer.Option("--ways")] = 5,
    queries: Annotated[int, typer.Option("--queries", help="Query images per class.")] = 15,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the episodes and inits.")] = 0,
    pretrained: Annotated[Path | None, typer.Option("--pretrained", help="Network from `gtl-tui pretrain`.")] = None,
    gen0: Annotated[Path | None, typer.Option("--gen0", help="Generation-0 learngene (default: the run's).")] = None,
    methods: Annotated[str | None, typer.Option("--methods", help="Comma-separated subset of the methods.")] = None,
    protocol: Annotated[Literal["default", "plain"], typer.Option(
        "--protocol", help="Fine-tuning protocol: default (prototype head, body at lr/10, BatchNorm frozen) or plain "
        "(random head, whole network, Adam 1e-3, BatchNorm training); the options below override it.")] = "default",
    lr: Annotated[float | None, typer.Option("--lr", help="Fine-tuning learning rate of the head [default: 1e-3].",
                                             show_default=False)] = None,
    body_lr_scale: Annotated[float | None, typer.Option(
        "--body-lr-scale", help="Body lr / head lr (0: head only) [default: 0.1; plain: 1].", show_default=False)
    ] = None,
    optimizer: Annotated[Literal["adam", "sgd"] | None, typer.Option(
        "--optimizer", help="Fine-tuning optimizer [default: adam].", show_default=False)] = None,
    head_init: Annotated[Literal["prototype", "random"] | None, typer.Option(
        "--head-init", help="[default: prototype; plain: random]", show_default=False)] = None,
    bn: Annotated[Literal["frozen", "train"] | None, typer.Option(
        "--bn", help="BatchNorm while fine-tuning [default: frozen; plain: train].", show_default=False)] = None,
    metric: Annotated[Literal["euclidean", "cosine"], typer.Option("--metric", help="Nearest class mean.")
                      ] = "euclidean",
    nongene_init: Annotated[Literal["random", "scaled", "zero"] | None, typer.Option(
        "--nongene-init", help="Default: the run's config.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON here.")] = None,
    threads: Annotated[int, typer.Option("--threads", help="CPU threads (0: torch's default).")] = 0,
    device: Annotated[str, typer.Option("--device", help="Where episodes are fine-tuned: auto (CUDA when "
                                        "available), cpu, cuda or cuda:N.")] = "auto",
    batch_episodes: Annotated[int | None, typer.Option(
        "--batch-episodes", min=0, help="Episodes of a method fine-tuned together as one population network (same "
        "results; 1: one at a time, 0: as many as fit) [default: as many as fit on CUDA, 1 on the CPU].",
        show_default=False)] = None,
    precision: Annotated[Literal["fp32", "bf16"], typer.Option(
        "--precision", help="fp32, or bf16 (autocast, fp32 weights; faster on a GPU).")] = "fp32",
    cache_dir: Annotated[Path | None, typer.Option(
        "--cache-dir", help="Reuse results of methods already evaluated on the same inputs and settings (a sweep's "
        "baselines: computed once), and store new ones here.", show_default=False)] = None,
) -> None:
    """Few-shot evaluation of a learngene's descendants against scratch, pretrained, its random and
    top-|gamma| circuits (random-20%, top-20%) and gen-0."""
    shot_list, step_list = _ints(shots, "shots"), _ints(steps, "steps")
    lg_path, run_gen0 = resolve_learngene(learngene)
    from engine.config import ConfigError
    from engine.data import DataError, load_dataset
    from engine.fewshot.evaluate import EvalSettings, FinetuneSettings
    from engine.run.runner import resolve_device, set_threads

    set_threads(threads)
    try:
        dev = resolve_device(device)
    except ConfigError:
        raise fail(f"error: --device {device}: CUDA is not available here") from None
    except RuntimeError:
        raise fail(f"error: --device {device!r} is not a device (auto, cpu, cuda or cuda:N)") from None
    wanted = _methods(methods, arch)
    gen0 = gen0 or run_gen0
    gene, manifest, g0, pre = _load_inputs(
        lg_path, gen0 if "gen0" in wanted else None,
        pretrained if {"pretrained", "pretrained_random20", "pretrained_top20"} & set(wanted) else None)
    cfg_ln = (manifest.get("config") or {}).get("learngene", {})
    dcfg = data_config(manifest, dataset, data, None)
    try:
        ds = load_dataset(dcfg)
    except DataError as err:
        raise fail(f"error: {err}") from None
    ft = FinetuneSettings.protocol(protocol, optimizer=optimizer, lr=lr, body_lr_scale=body_lr_scale,
                                   head_init=head_init, bn=bn)
    settings = EvalSettings(episodes=episodes, ways=ways, shots=shot_list, queries=queries, steps=step_list,
                            seed=seed, metric=metric, arch=arch, width_scale=width_scale, extra_layers=extra_layers,
                            nongene_init=nongene_init or cfg_ln.get("nongene_init", "random"),
                            nongene_scale=cfg_ln.get("nongene_scale", 0.1), finetune=ft, precision=precision)
    cache = None
    if cache_dir is not None:
        from dataclasses import asdict

        from engine import __version__
        from engine.fewshot.cache import ResultCache, dataset_identity

        cache = ResultCache(cache_dir, settings=asdict(settings), data=dataset_identity(dcfg.dataset, dcfg.root),
                            version=__version__, gene=gene, gen0=g0, pretrained=pre)
    report = _evaluate(ds, settings, wanted, gene, g0, pre, device=dev, batch_episodes=batch_episodes, cache=cache)
    report["settings"].update(learngene=str(lg_path), dataset=dcfg.dataset, root=dcfg.root, arch_gene=gene.arch,
                              fraction=gene.fraction, pretrained=str(pretrained) if pretrained else None,
                              gen0=str(gen0) if g0 is not None else None, device=str(dev))
    Console().print(results_table(report, f"{lg_path.name}: {ways}-way accuracy (%), {episodes} episodes, 95% CI, "
                                          f"{protocol} fine-tuning"))
    _write_report(report, learngene, lg_path, json_out)


def _methods(methods: str | None, arch: str | None) -> list[str]:
    """The methods asked for (default: all), checked, with the descendant architecture."""
    from engine.fewshot.evaluate import METHODS
    from engine.models import available_models

    if arch is not None and arch not in available_models():
        raise fail(f"error: --arch {arch!r} is unknown; choose one of {', '.join(available_models())}")
    wanted = [m.strip() for m in methods.split(",")] if methods else list(METHODS)
    bad = [m for m in wanted if m not in METHODS]
    if bad:
        raise fail(f"error: unknown method {bad[0]!r}; choose from {', '.join(METHODS)}")
    return wanted


def _load_inputs(lg_path: Path, gen0: Path | None, pretrained: Path | None) -> tuple[Any, dict[str, Any], Any, Any]:
    """The learngene and its manifest, the generation-0 learngene and the pretrained network (those asked for)."""
    from engine.learngene import load_learngene

    try:
        gene, manifest = load_learngene(lg_path)
        g0 = load_learngene(gen0)[0] if gen0 is not None else None
        pre = None
        if pretrained is not None:
            from engine.fewshot.baselines import load_pretrained

            pre = load_pretrained(pretrained)[0]
    except ValueError as err:
        raise fail(f"error: {err}") from None
    return gene, manifest, g0, pre


def _evaluate(ds: Any, settings: Any, wanted: list[str], gene: Any, g0: Any, pre: Any, *, device: Any,
              batch_episodes: int | None, cache: Any = None) -> dict[str, Any]:
    """Run the episodes of every method that can be built, with a progress bar; returns the report. With a
    ``cache`` (:class:`engine.fewshot.cache.ResultCache`), methods already computed on the same inputs are
    taken from it and the others stored in it."""
    from rich.progress import Progress

    from engine.fewshot.evaluate import builders
    from engine.fewshot.evaluate import evaluate as run_eval

    try:
        settings.check()
        found = builders(settings, ways=settings.ways, in_channels=ds.channels, image_size=ds.image_size,
                         gene=gene, gen0=g0, pretrained=pre)
    except ValueError as err:
        raise fail(f"error: {err}") from None
    chosen = {m: found[m] for m in wanted if m in found}
    missing = [m for m in wanted if m not in found]
    console = Console(stderr=True)
    if missing:
        console.print(f"[yellow]skipping {', '.join(missing)}: needs --pretrained / a gen-0 learngene[/]")
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("evaluating", total=None)

        def progress(label: str, done: int, total: int) -> None:
            bar.update(task, description=label, completed=done, total=total)

        hits = {m: rows for m in chosen if cache is not None and (rows := cache.get(m)) is not None}
        if hits:
            console.print(f"from the cache: {', '.join(hits)}")
        todo = {m: b for m, b in chosen.items() if m not in hits}
        try:
            report = run_eval(ds, settings, todo, progress=progress, device=device, batch_episodes=batch_episodes)
        except ValueError as err:
            raise fail(f"error: {err}") from None
    if cache is not None:
        for m in todo:
            cache.put(m, [r for r in report["results"] if r["method"] == m])
    if hits:  # the report as if every method had run: shots, then methods in their order, then steps
        order = list(chosen)
        rows = report["results"] + [r for rows in hits.values() for r in rows]
        report["results"] = sorted(rows, key=lambda r: (settings.shots.index(r["shots"]), order.index(r["method"]),
                                                         r["steps"]))
        report["settings"]["methods"] = order
        report["settings"]["cached"] = list(hits)
    return report


def _write_report(report: dict[str, Any], learngene: Path, lg_path: Path, json_out: Path | None) -> None:
    """``--json``, and ``<run>/evaluations/<learngene>.json`` when the learngene belongs to a run (the monitor
    shows it on the Learngene tab)."""
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2) + "\n")
    from gtl_tui.evaluations import run_dir_of, write_evaluation

    run = learngene.expanduser() if learngene.expanduser().is_dir() else run_dir_of(lg_path)
    if run is not None:
        written = write_evaluation(run, lg_path.name.removesuffix(".json"), report)
        typer.echo(f"evaluation -> {written}", err=True)


def pretrain(
    config: Annotated[Path | None, typer.Argument(help="TOML config (data, arch, width, budget).",
                                                  show_default=False)] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", "-s", help="Override: section.key=value.")] = None,
    learngene: Annotated[Path | None, typer.Option("--learngene", help="Take the config from this learngene's "
                                                   "manifest instead.")] = None,
    steps: Annotated[int, typer.Option("--steps", help="Training steps (0: the evolution's total: population x "
                                       "generations x lifetime steps).")] = 0,
    out: Annotated[Path, typer.Option("--out", help="Output stem (.safetensors + .json).")] = Path("pretrained"),
    threads: Annotated[int, typer.Option("--threads", help="CPU threads (0: torch's default).")] = 0,
) -> None:
    """Train the whole network on all meta-train classes once (the `pretrained` baseline of `evaluate`)."""
    from engine.config import ConfigError, config_from_dict, load_config

    try:
        if learngene is not None:
            stem, _ = resolve_learngene(learngene)
            from engine.config import apply_overrides
            from engine.integrity import read_json_file

            manifest = read_json_file(stem.with_name(stem.name + ".json"), "learngene manifest")
            base = manifest.get("config") if isinstance(manifest, dict) else None
            cfg = config_from_dict(apply_overrides(dict(base) if isinstance(base, dict) else {}, set_ or []))
        else:
            cfg = load_config(config or default_config_path(), set_ or [])
    except (ConfigError, ValueError) as err:  # ValueError: an unreadable or too deep manifest
        raise fail(f"error: {err}") from None
    if steps < 0:
        raise fail("error: --steps must be >= 0")
    from engine.data import DataError, load_dataset
    from engine.fewshot.baselines import PretrainSettings, save_pretrained
    from engine.fewshot.baselines import pretrain as train
    from engine.run.runner import set_threads

    set_threads(threads)
    e, lt = cfg.evolution, cfg.lifetime
    budget = steps or e.population * e.generations * lt.steps
    settings = PretrainSettings(arch=cfg.model.arch, width=cfg.model.width, steps=budget, batch_size=lt.batch_size,
                                lr=lt.lr, momentum=lt.momentum, weight_decay=lt.weight_decay,
                                augment=cfg.data.augment, seed=cfg.run.seed)
    try:
        ds = load_dataset(cfg.data)
    except DataError as err:
        raise fail(f"error: {err}") from None
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"pretraining {cfg.model.arch}", total=budget)
        model = train(ds, settings, progress=lambda k, loss: bar.update(task, completed=k,
                                                                      description=f"loss {loss:.3f}"))
    st, js = save_pretrained(model, out, settings, dataset=cfg.data.dataset, image_size=cfg.data.image_size,
                             extra={"config_hash": cfg.hash()})
    typer.echo(f"pretrained {cfg.model.arch} ({budget} steps) -> {st}")
