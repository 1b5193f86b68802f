"""The paper-scale campaign, phase by phase: ``python scripts/gpu_campaign.py --phase PHASE [--cpu-dry-run]``.

``scripts/gpu_campaign.sh`` runs the phases in order, each under its own time limit, and everything lands in
``--out`` (``$OUT``): one JSON per phase, the run directory, the pretrained network, and at the end
``campaign.json`` and ``summary.md`` (also printed). Phases:

- ``data``: the compact CIFAR-FS subset (``scripts/make_cifar_fs_subset.py``), made when missing;
- ``evolve``: VGG11 on CIFAR-FS, population 32, 30 generations of 10-way, 100-step lifetimes (compiled on CUDA);
  per generation its seconds, images/s and timing split (train / host / wait, peak memory);
- ``pretrain``: the whole VGG11 trained on all meta-train classes with the evolution's training budget (as many
  images as all lifetimes of the run saw);
- ``eval``: few-shot on the meta-test classes, 200 episodes, 1- and 5-shot, 0 / 20 / 100 steps, for learngene,
  scratch, gen0, a random and a chosen (top-|gamma|) 20% circuit of the pretrained network (``pretrained_random20``,
  ``pretrained_top20``) and the pretrained network; on CUDA the episodes of a method are fine-tuned together as
  one population network (``engine.fewshot.batched``, chunks of up to 100) in bf16 autocast;
- ``descendants``: the learngene (and scratch of the same shape) in a wider (x1.5), a deeper (+2 layers) and a
  ResNet12 descendant, as ``eval`` does;
  both write their JSON after each method (descendant), so a phase cut by its time limit keeps what it finished;
- ``bench``: ``engine.benchmarks.bench`` at P = 16 and 64 (VGG11 and Conv-4);
- ``summary``: one table and ``campaign.json``. ``all`` runs every phase in one process (the dry run does).

``--cpu-dry-run`` uses tiny sizes on the CPU so that a test runs every phase in under a minute.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script from anywhere
PHASES = ("data", "evolve", "pretrain", "eval", "descendants", "bench", "summary")
SUBSET = REPO / "data" / "cifar-fs-subset.npz"


@dataclass
class Sizes:
    """Everything the campaign's cost depends on."""

    population: int = 32
    generations: int = 30
    ways: int = 10
    steps: int = 100
    batch: int = 64
    width: float = 1.0
    compile: bool = True
    pretrain_batch: int = 512
    pretrain_lr: float = 0.1
    episodes: int = 200
    eval_ways: int = 5
    shots: tuple[int, ...] = (1, 5)
    eval_steps: tuple[int, ...] = (0, 20, 100)
    queries: int = 15
    bench_populations: tuple[int, ...] = (16, 64)
    bench_steps: int = 30
    bench_warmup: int = 5
    bench_batch: int = 128
    device: str = "auto"
    batch_episodes: int | None = None  # episodes fine-tuned together (None: as many as fit on CUDA, else 1)
    precision: str = "bf16"  # of few-shot fine-tuning (autocast; fp32 weights), as the evolution trains


DRY = Sizes(population=4, generations=2, ways=5, steps=3, batch=8, width=0.125, compile=False, pretrain_batch=16,
            episodes=2, shots=(1,), eval_steps=(0, 2), queries=2, bench_populations=(2,), bench_steps=2,
            bench_warmup=1, bench_batch=4, device="cpu", batch_episodes=2, precision="fp32")


def _write(out: Path, name: str, data: dict) -> None:
    tmp = out / f"{name}.json.tmp"
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n")
    tmp.replace(out / f"{name}.json")


def _read(out: Path, name: str) -> dict | None:
    p = out / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def _device(s: Sizes):
    import torch

    if s.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(s.device)


def _dataset(data: str):
    from engine.config import DataConfig
    from engine.data import load_dataset

    if data == "glyphs":
        return load_dataset(DataConfig(dataset="glyphs", glyph_classes=100, glyph_images_per_class=40))
    return load_dataset(DataConfig(dataset="cifar-fs", root=data))


# ---------------------------------------------------------------------------------------------------------- phases
def phase_data(a, s: Sizes) -> dict:
    if a.data == "glyphs":
        return {"dataset": "glyphs"}
    path = Path(a.data)
    if not path.is_file():
        if path != SUBSET:
            raise FileNotFoundError(f"{path} does not exist")
        from make_cifar_fs_subset import SRC, make_subset  # scripts/ is on the path when run as a script

        make_subset(SRC, path, train=200, test=200, val=10)
    ds = _dataset(str(path))
    counts = {part: sum(len(ds.class_indices(c)) for c in classes) for part, classes in ds.splits.items()}
    return {"dataset": ds.name, "path": str(path), "mib": round(path.stat().st_size / 2**20, 1),
            "classes": {k: len(v) for k, v in ds.splits.items()}, "images": counts}


def phase_evolve(a, s: Sizes) -> dict:
    from engine.config import load_config
    from engine.run.runner import create_run_dir, run_in_dir

    data = (["data.dataset='glyphs'", "data.glyph_images_per_class=40"] if a.data == "glyphs"
            else ["data.dataset='cifar-fs'", f"data.root='{Path(a.data).resolve()}'"])
    cfg = load_config(REPO / "configs" / "cifar-fs-vgg11.toml", [
        *data, f"evolution.population={s.population}", f"evolution.generations={s.generations}",
        f"task.ways={s.ways}", f"lifetime.steps={s.steps}", f"lifetime.batch_size={s.batch}",
        f"model.width={s.width}", f"run.compile={'true' if s.compile else 'false'}", f"run.device='{s.device}'",
        "run.trainer='population'", "name='campaign'"])
    run_dir = create_run_dir(cfg, a.out / "runs", "campaign")
    t0 = time.perf_counter()
    finished = run_in_dir(run_dir)
    gens, trainer, device = [], None, None
    for raw in (run_dir / "events.jsonl").read_text().splitlines():
        e = json.loads(raw)
        if e["kind"] == "run_started":
            trainer, device = e["trainer"], e["device"]
        elif e["kind"] == "generation_completed":
            gens.append({k: e.get(k) for k in ("generation", "best", "mean", "seconds", "images_per_s", "timing")})
    images = s.population * s.generations * s.steps * s.batch
    return {"run_dir": str(run_dir), "status": finished.status, "seconds": round(time.perf_counter() - t0, 1),
            "trainer": trainer, "device": device, "generations": gens, "lifetime_images": images,
            "elite": {"id": finished.best_id, "fitness": finished.best_fitness}}


def phase_pretrain(a, s: Sizes) -> dict:
    from engine.fewshot.baselines import PretrainSettings, pretrain, save_pretrained

    evolve = _read(a.out, "evolve") or {}
    images = evolve.get("lifetime_images") or s.population * s.generations * s.steps * s.batch
    steps = max(1, images // s.pretrain_batch)  # the evolution's budget: as many training images
    ds = _dataset(a.data)
    settings = PretrainSettings(arch="vgg11", width=s.width, steps=steps, batch_size=s.pretrain_batch,
                                lr=s.pretrain_lr)
    t0 = time.perf_counter()
    model = pretrain(ds, settings, device=_device(s))
    seconds = time.perf_counter() - t0
    path, _ = save_pretrained(model, a.out / "pretrained-vgg11", settings, dataset=ds.name,
                              image_size=ds.image_size, extra={"budget_images": images})
    return {"path": str(path), "steps": steps, "batch": s.pretrain_batch, "images": steps * s.pretrain_batch,
            "seconds": round(seconds, 1)}


def _learngenes(a) -> tuple:
    from engine.learngene import load_learngene

    evolve = _read(a.out, "evolve")
    if not evolve:
        raise RuntimeError("no evolve.json: the evolve phase has not completed")
    genes = Path(evolve["run_dir"]) / "learngenes"
    best = sorted(genes.glob("best-*.safetensors"))
    if not best:
        raise RuntimeError(f"no exported learngene in {genes}: the evolution did not finish")
    gen0 = genes / "gen0-best.safetensors"
    return load_learngene(best[-1])[0], (load_learngene(gen0)[0] if gen0.is_file() else None), str(best[-1])


def _settings(s: Sizes, **kw):
    from engine.fewshot.evaluate import EvalSettings

    return EvalSettings(episodes=s.episodes, ways=s.eval_ways, shots=list(s.shots), queries=s.queries,
                        steps=list(s.eval_steps), precision=s.precision, **kw)


def _fewshot(a, s: Sizes, name: str, runs: list[tuple[str, dict, Callable]], head: dict,
             key: str | None = None) -> dict:
    """Evaluate each (label, settings overrides, methods) in turn on the same episodes, writing ``name``.json
    after each one (``partial`` until the last), so a phase cut by its time limit keeps what it finished.
    ``key``: the field that names each result's run (e.g. "descendant")."""
    import torch

    from engine.fewshot.evaluate import evaluate

    ds, dev = _dataset(a.data), _device(s)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # each shape is timed once; 200 episodes x 100 steps reuse it
    rows, timing, t0, report = [], [], time.perf_counter(), {}
    for label, kw, builders_of in runs:
        settings = _settings(s, **kw)
        t1 = time.perf_counter()
        report = evaluate(ds, settings, builders_of(settings, ds), device=dev, batch_episodes=s.batch_episodes)
        seconds = time.perf_counter() - t1
        episodes = settings.episodes * len(settings.shots) * len(report["settings"]["methods"])
        timing.append({"run": label, "seconds": round(seconds, 1), "episodes": episodes,
                       "episodes_per_s": round(episodes / max(seconds, 1e-9), 2)})
        rows += [{**({key: label} if key else {}), **r} for r in report["results"]]
        _write(a.out, name, {**head, "partial": True, "seconds": round(time.perf_counter() - t0, 1),
                             "timing": timing, "settings": report["settings"], "results": rows})
    return {**head, "seconds": round(time.perf_counter() - t0, 1), "timing": timing,
            "settings": report.get("settings"), "results": rows}


def phase_eval(a, s: Sizes) -> dict:
    from engine.fewshot.baselines import load_pretrained
    from engine.fewshot.evaluate import builders

    gene, gen0, gene_path = _learngenes(a)
    pre = _read(a.out, "pretrain")
    pretrained = load_pretrained(pre["path"])[0] if pre else None

    def methods(settings, ds) -> dict:
        return builders(settings, ways=settings.ways, in_channels=ds.channels, image_size=ds.image_size, gene=gene,
                        gen0=gen0, pretrained=pretrained)

    ds = _dataset(a.data)
    probe = methods(_settings(s), ds)
    # one method at a time (the same episodes for each), so a cut phase keeps the methods it finished
    runs = [(m, {}, lambda st, d, m=m: {m: methods(st, d)[m]}) for m in probe]
    out = _fewshot(a, s, "eval", runs, {"learngene": gene_path})
    out["settings"] = {**(out["settings"] or {}), "methods": list(probe)}
    return out


DESCENDANTS = (("wider x1.5", {"width_scale": 1.5}), ("deeper +2", {"extra_layers": 2}),
               ("resnet12", {"arch": "resnet12"}))


def phase_descendants(a, s: Sizes) -> dict:
    from engine.fewshot.evaluate import builders

    gene, _, gene_path = _learngenes(a)

    def methods(settings, ds) -> dict:  # learngene and scratch of the descendant's shape
        return builders(settings, ways=settings.ways, in_channels=ds.channels, image_size=ds.image_size, gene=gene)

    return _fewshot(a, s, "descendants", [(label, kw, methods) for label, kw in DESCENDANTS],
                    {"learngene": gene_path}, key="descendant")


def phase_bench(a, s: Sizes) -> dict:
    import torch

    from engine.benchmarks import bench

    dev = _device(s)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    cfg = bench.BenchConfig(models=["vgg11", "conv4"], populations=list(s.bench_populations), batch=s.bench_batch,
                            steps=s.bench_steps, warmup=s.bench_warmup, width=s.width, device=dev,
                            compile=s.compile, sequential_networks=2)
    rows = []
    for arch in cfg.models:
        for p in cfg.populations:
            rows.append((arch, p, bench.bench_one(arch, p, cfg)))
            print(f"  bench {arch} P={p}: {rows[-1][2]}", flush=True)
    return {"device": bench.device_name(dev), "table": bench.report(rows),
            "rows": [{"model": m, "population": p, **r} for m, p, r in rows]}


# ---------------------------------------------------------------------------------------------------------- summary
def _fmt(r: dict) -> str:
    return f"{100 * r['mean']:.1f} ± {100 * r['ci95']:.1f}"


def summary(out: Path) -> tuple[str, dict]:
    parts = {name: _read(out, name) for name in PHASES[:-1]}
    lines = ["# GTL campaign", ""]
    meta = _read(out, "meta") or {}
    lines += [f"device: {meta.get('device', '?')}; sizes: {json.dumps(meta.get('sizes', {}))}", ""]
    ev = parts["evolve"]
    if ev:
        gens = ev["generations"]
        later = [g for g in gens[1:] if g.get("timing")]
        lines += [f"## Evolution: {len(gens)} generations in {ev['seconds']} s ({ev['status']}, trainer "
                  f"{ev['trainer']} on {ev['device']}); elite fitness {ev['elite']['fitness']}", ""]
        if gens:
            lines.append(f"generation 0: {gens[0]['seconds']} s; later generations: mean "
                         f"{sum(g['seconds'] for g in gens[1:]) / max(len(gens) - 1, 1):.2f} s, "
                         f"{sum(g['images_per_s'] for g in gens[1:]) / max(len(gens) - 1, 1):,.0f} images/s")
        if later:
            tot = {k: sum(g["timing"][k] for g in later) for k in ("wall", "train", "host", "wait")}
            peak = max((g["timing"].get("peak_mem", 0) for g in later), default=0)
            lines.append(f"timing after generation 0: train {100 * tot['train'] / tot['wall']:.1f}%, host "
                         f"{100 * tot['host'] / tot['wall']:.1f}%, wait {100 * tot['wait'] / tot['wall']:.1f}% of "
                         f"{tot['wall']:.1f} s" + (f"; peak memory {peak / 2**30:.1f} GiB" if peak else ""))
        lines.append("")
    if parts["pretrain"]:
        p = parts["pretrain"]
        lines += [f"pretrained VGG11: {p['steps']} steps of {p['batch']} ({p['images']:,} images) in {p['seconds']} s",
                  ""]
    table: dict[tuple, dict[str, str]] = {}
    cols: list[str] = []
    if parts["eval"]:
        for r in parts["eval"]["results"]:
            table.setdefault((r["shots"], r["steps"]), {})[r["method"]] = _fmt(r)
            cols += [r["method"]] if r["method"] not in cols else []
    if parts["descendants"]:
        for r in parts["descendants"]["results"]:
            name = f"{r['method']} ({r['descendant']})"
            table.setdefault((r["shots"], r["steps"]), {})[name] = _fmt(r)
            cols += [name] if name not in cols else []
    if table:
        n = (parts["eval"] or parts["descendants"])["settings"]["episodes"]
        lines += [f"## Few-shot accuracy on the meta-test classes (%, mean ± 95% CI, {n} episodes)", "",
                  "| shots | steps | " + " | ".join(cols) + " |", "|" + " --- |" * (len(cols) + 2)]
        for (shots, steps), row in sorted(table.items()):
            lines.append(f"| {shots} | {steps} | " + " | ".join(row.get(c, "-") for c in cols) + " |")
        lines.append("")
    for name in ("eval", "descendants"):
        if parts[name] and parts[name].get("timing"):
            tm = parts[name]["timing"]
            n, sec = sum(x["episodes"] for x in tm), sum(x["seconds"] for x in tm)
            lines.append(f"{name}: {n:,} fine-tuned episodes in {sec:.1f} s ({n / max(sec, 1e-9):.1f} episodes/s)")
    lines.append("")
    if parts["bench"] and "table" in parts["bench"]:
        lines += [f"## Throughput ({parts['bench'].get('device', '?')})", "", parts["bench"]["table"], ""]
    errors = {k: v["error"] for k, v in parts.items() if v and "error" in v}
    missing = [k for k, v in parts.items() if v is None]
    partial = [k for k, v in parts.items() if v and v.get("partial")]
    if errors or missing or partial:
        lines += ["## Not measured", ""] + [f"- {k}: {v.splitlines()[-1]}" for k, v in errors.items()] + \
                 [f"- {k}: did not run or did not finish" for k in missing] + \
                 [f"- {k}: cut by its time limit; only {', '.join(x['run'] for x in parts[k]['timing'])} "
                  f"finished" for k in partial]
    text = "\n".join(lines).rstrip() + "\n"
    return text, {"meta": meta, **parts}


# ---------------------------------------------------------------------------------------------------------- main
RUNNERS = {"data": phase_data, "evolve": phase_evolve, "pretrain": phase_pretrain, "eval": phase_eval,
           "descendants": phase_descendants, "bench": phase_bench}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gpu_campaign.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--phase", choices=(*PHASES, "all"), default="all")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", default=str(SUBSET), help="CIFAR-FS .npz (default: the subset), or 'glyphs'")
    ap.add_argument("--cpu-dry-run", action="store_true", help="tiny sizes on the CPU (a test runs this)")
    ap.add_argument("--episodes", type=int, help="few-shot episodes per shot count (default 200)")
    ap.add_argument("--generations", type=int, help="generations of the evolution (default 30)")
    a = ap.parse_args(argv)
    s = DRY if a.cpu_dry_run else Sizes()
    if a.episodes:
        s.episodes = a.episodes
    if a.generations:
        s.generations = a.generations
    a.out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO / "scripts"))
    if a.phase in ("data", "all") or not (a.out / "meta.json").is_file():
        import torch

        dev = _device(s)
        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({platform.machine()})"
        _write(a.out, "meta", {"device": name, "torch": torch.__version__, "sizes": asdict(s),
                               "dry_run": a.cpu_dry_run, "started": time.time()})
    status = 0
    for phase in (PHASES if a.phase == "all" else (a.phase,)):
        if phase == "summary":
            text, everything = summary(a.out)
            (a.out / "summary.md").write_text(text)
            _write(a.out, "campaign", everything)
            print(text)
            continue
        print(f"=== {phase}", flush=True)
        t0 = time.perf_counter()
        try:
            result = RUNNERS[phase](a, s)
        except Exception as err:  # noqa: BLE001 (a failed phase is recorded; the next ones still run)
            done = _read(a.out, phase) or {}  # rows a few-shot phase finished before the error are kept
            result = {**(done if done.get("partial") else {}),
                      "error": f"{type(err).__name__}: {err}\n{traceback.format_exc()}"}
            print(f"{phase} failed: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
            status = 1
        result["phase_seconds"] = round(time.perf_counter() - t0, 1)
        _write(a.out, phase, result)
        print(f"=== {phase}: {result['phase_seconds']} s", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
