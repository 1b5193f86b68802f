"""The gene archive: every individual's learngene per generation, its retention, exports of any individual (live
through the control server and offline after the end) equal to a live export, and resume consistency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
import torch

from engine import events as ev
from engine.config import load_config
from engine.control.client import send
from engine.control.server import ControlServer
from engine.learngene import Learngene, load_learngene
from engine.run.gene_archive import (
    NotArchived,
    archive_path,
    archived_generations,
    load_generation,
    load_individual,
    save_generation,
)
from engine.run.runner import create_run_dir, run_in_dir
from engine.run.signals import RunSignals

TINY = [
    "evolution.population=4", "evolution.generations=3", "lifetime.steps=6", "lifetime.batch_size=16",
    "data.glyph_classes=20", "data.glyph_images_per_class=20", "model.width=0.25", "run.device='cpu'",
    "run.threads=1",
]


def _gene(k: float) -> Learngene:
    return Learngene(arch="conv4", in_channels=3, widths=[4, 4, 4, 4], channels=[[0], [1], [2], [3]],
                     tensors={"w": torch.full((2, 3), k)})


def _same_archive(a: Path, b: Path) -> None:
    assert archived_generations(a) == archived_generations(b)
    for g in archived_generations(a):
        ga, gb = load_generation(a, g), load_generation(b, g)
        assert sorted(ga) == sorted(gb), g
        for i, (gene, fitness) in ga.items():
            other, other_fitness = gb[i]
            assert fitness == other_fitness and gene.channels == other.channels
            assert all(torch.equal(gene.tensors[k], other.tensors[k]) for k in gene.tensors)


def _without_created(manifest: dict) -> dict:
    """All but the time of writing and the weights file's name and checksum (its bytes differ between two
    writes of the same tensors: safetensors writes its metadata map in a random order)."""
    return {k: v for k, v in manifest.items() if k not in ("created", "weights", "weights_sha256")}


# ------------------------------------------------------------------------------------------ fast: no training
def test_save_and_load_a_generation_with_retention(tmp_path: Path):
    for g in range(5):
        save_generation(tmp_path, g, {10 * g + i: (_gene(g + i / 10), 0.1 * i) for i in range(3)}, keep=2)
    assert archived_generations(tmp_path) == [3, 4]
    gene, fitness, g = load_individual(tmp_path, 41)
    assert g == 4 and fitness == 0.1 and torch.equal(gene.tensors["w"], torch.full((2, 3), 4.1))
    assert gene.tensors["w"].dtype == torch.float32  # the gene's own dtype: exports stay exact
    with pytest.raises(NotArchived):
        load_individual(tmp_path, 21)  # generation 2 was dropped
    assert save_generation(tmp_path, 5, {50: (_gene(5), 0.5)}, keep=0) is None
    assert not archive_path(tmp_path, 5).exists()
    save_generation(tmp_path, 5, {50: (_gene(5), 0.5)}, keep=None)
    assert archived_generations(tmp_path) == [3, 4, 5]
    assert not [p for p in (tmp_path / "genes").iterdir() if p.name.startswith(".")]  # no temporary left


def test_gene_history_is_not_part_of_the_config_hash():
    """Runs written before the field existed keep their hash (and so their resume)."""
    base = load_config(None, TINY)
    for keep in (0, 3):
        other = load_config(None, [*TINY, f"run.gene_history={keep}"])
        assert other.run.gene_history == keep
        assert other.hash() == base.hash() and other.compute_hash() == base.compute_hash()
    assert "gene_history" not in base.to_dict()["run"]


# ------------------------------------------------------------------------------------------ real runs
@pytest.fixture(scope="module")
def exported_run(tmp_path_factory) -> dict:
    """A tiny run whose individual of generation 0 with the lowest fitness (never the elite) is exported three
    times: live while it is held (generation 1 starting), through the control server while generation 2
    trains (from the archive), and, in the tests, offline after the end."""
    cfg = load_config(None, TINY)
    run_dir = create_run_dir(cfg, Path(tempfile.mkdtemp(prefix="gtl", dir="/tmp")), "arch")
    server = ControlServer(run_dir, RunSignals())
    server.start()
    got: dict = {"run_dir": run_dir}
    threads: list[threading.Thread] = []

    def listener(e: ev.Event) -> None:
        evo = server.evolution
        if isinstance(e, ev.GenerationStarted) and e.generation == 1:
            gen0 = {i: f for i, (_, f) in evo.last_genes.items()}
            got["id"] = min(gen0, key=lambda i: (gen0[i], i))
            got["live"] = evo.export(got["id"], out=run_dir / "live", emit=False)
        if isinstance(e, ev.GenerationStarted) and e.generation == 2:
            # a request from another thread (the engine's writer lock is held while listeners run)
            def ask() -> None:
                got["served"] = send(run_dir, "export", individual=got["id"], out=str(run_dir / "served"))

            threads.append(threading.Thread(target=ask))
            threads[-1].start()

    try:
        finished = run_in_dir(run_dir, listeners=[listener], on_evolution=server.set_evolution)
        for t in threads:
            t.join(60)
    finally:
        server.close()
    assert finished.status == "completed"
    return got


def test_the_archive_holds_every_individual_of_every_generation(exported_run):
    run_dir = exported_run["run_dir"]
    assert archived_generations(run_dir) == [0, 1, 2]
    events, _ = ev.read_events(run_dir / ev.EVENTS_FILE)
    born = {e.id: e for e in events if isinstance(e, ev.IndividualBorn)}
    fitness = {e.id: e.fitness for e in events if isinstance(e, ev.IndividualEvaluated)}
    for g in range(3):
        genes = load_generation(run_dir, g)
        assert sorted(genes) == sorted(i for i, b in born.items() if b.generation == g)
        for i, (gene, f) in genes.items():
            assert gene.channels == born[i].channels and f == fitness[i]
    # the elite's archived gene is the one the run exported at its end
    elite = events[-1].best_id
    best, _ = load_learngene(next((run_dir / "learngenes").glob(f"best-g*-i{elite}.safetensors")))
    archived, _, _ = load_individual(run_dir, elite)
    assert all(torch.equal(best.tensors[k], archived.tensors[k]) for k in best.tensors)


def test_export_of_an_old_generation_live_and_offline_equals_a_live_export(exported_run):
    run_dir, ind = exported_run["run_dir"], exported_run["id"]
    live_w, live_m = exported_run["live"]
    served = exported_run["served"]
    assert served["ok"], served
    assert Path(served["path"]) == (run_dir / "served.safetensors").resolve()
    # offline: the engine is gone; the CLI exports from the archive and the event log
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-m", "gtl_tui.cli", "export", str(run_dir), "--individual", str(ind),
                          "--out", str(run_dir / "offline")], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"individual {ind}" in out.stdout and "scp " in out.stdout
    reference = json.loads(Path(live_m).read_text())
    ref_gene, _ = load_learngene(live_w)
    assert reference["generation"] == 0 and reference["individual"] == ind
    for stem in ("served", "offline"):
        # bit-equal tensors (not file bytes: safetensors writes its metadata map in a random order)
        gene, _ = load_learngene(run_dir / stem)
        assert gene.channels == ref_gene.channels and sorted(gene.tensors) == sorted(ref_gene.tensors), stem
        assert all(gene.tensors[k].dtype == ref_gene.tensors[k].dtype and
                   gene.tensors[k].numpy().tobytes() == ref_gene.tensors[k].numpy().tobytes()
                   for k in gene.tensors), stem
        manifest = json.loads((run_dir / f"{stem}.json").read_text())
        assert _without_created(manifest) == _without_created(reference), stem
    # default name and place, as the live engine names it
    default = subprocess.run([sys.executable, "-m", "gtl_tui.cli", "export", str(run_dir), "-i", str(ind)],
                             capture_output=True, text=True, env=env, timeout=120)
    assert default.returncode == 0 and (run_dir / "learngenes" / f"ind{ind}-g0000.safetensors").is_file()


def test_offline_export_errors_are_one_line(exported_run):
    run_dir = exported_run["run_dir"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-m", "gtl_tui.cli", "export", str(run_dir), "--individual", "999"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 1 and out.stderr.strip().count("\n") == 0
    assert "no individual 999" in out.stderr


def test_retention_and_resume_keep_the_archive_consistent(exported_run, tmp_path, monkeypatch):
    """A run stopped between a generation's archive file and its checkpoint (the write failed: as if killed)
    and resumed has the archive of the uninterrupted run, file for file; gene_history=1 keeps the newest."""
    import engine.evolution.loop as loop

    real = loop.save_checkpoint

    def fail_at_1(run_dir, generation, *a, **kw):
        if generation == 1:
            raise OSError(28, "No space left on device")
        return real(run_dir, generation, *a, **kw)

    victim = create_run_dir(load_config(None, TINY), tmp_path, "victim")
    monkeypatch.setattr(loop, "save_checkpoint", fail_at_1)
    with pytest.raises(OSError):
        run_in_dir(victim)
    assert archived_generations(victim) == [0, 1]  # archive 1 written, checkpoint 1 not
    monkeypatch.setattr(loop, "save_checkpoint", real)
    assert run_in_dir(victim).status == "completed"
    _same_archive(victim, exported_run["run_dir"])

    kept = create_run_dir(load_config(None, [*TINY, "run.gene_history=1"]), tmp_path, "kept")
    assert run_in_dir(kept).status == "completed"
    assert archived_generations(kept) == [2]
    events, _ = ev.read_events(kept / ev.EVENTS_FILE)
    gen0 = [e.id for e in events if isinstance(e, ev.IndividualEvaluated) and e.generation == 0]
    dropped = next(i for i in gen0 if i != events[-1].best_id)
    from engine.run.gene_archive import export_offline

    with pytest.raises(NotArchived, match=r"newest 1 generations \(run.gene_history\)"):
        export_offline(kept, dropped)
    export_offline(kept, events[-1].best_id, tmp_path / "elite")  # the elite is always held (checkpoint)


def test_export_the_best_of_a_generation(exported_run, tmp_path):
    """``export --generation N``: the best individual of generation N as the event log names it; a generation
    not completed and --generation with --individual are one-line usage errors."""
    run_dir = exported_run["run_dir"]
    events, _ = ev.read_events(run_dir / ev.EVENTS_FILE)
    best1 = next(e.best_id for e in events if isinstance(e, ev.GenerationCompleted) and e.generation == 1)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gtl_tui.cli", "export", str(run_dir), *args],
                              capture_output=True, text=True, env=env, timeout=120)

    out = cli("--generation", "1", "--out", str(tmp_path / "g1"))
    assert out.returncode == 0, out.stderr
    assert f"individual {best1}" in out.stdout
    manifest = json.loads((tmp_path / "g1.json").read_text())
    assert manifest["generation"] == 1 and manifest["individual"] == best1
    gene, _ = load_learngene(tmp_path / "g1")
    archived, _, _ = load_individual(run_dir, best1)
    assert all(torch.equal(gene.tensors[k], archived.tensors[k]) for k in gene.tensors)
    late = cli("-g", "7")
    assert late.returncode == 2 and late.stderr.strip().count("\n") == 0
    assert "no completed generation 7 (generations 0-2 are complete)" in late.stderr
    both = cli("-g", "1", "-i", str(best1))
    assert both.returncode == 2 and "not both" in both.stderr


def test_select_scores_recent_individuals_on_validation_and_exports_the_best(exported_run):
    """``gtl-tui select``: every archived individual of the newest N generations is scored on meta-validation
    episodes (no fine-tuning), the ranking is written best first, the winner exported bit-equal to its archived
    gene, and each score is that learngene's own evaluation on those episodes (not relative to the others)."""
    from engine.data import load_dataset
    from engine.fewshot.evaluate import EvalSettings, builders, evaluate

    run_dir = exported_run["run_dir"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-m", "gtl_tui.cli", "select", str(run_dir), "--generations", "2",
                          "--episodes", "3", "--ways", "3", "--threads", "1"], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    record = json.loads((run_dir / "selection.json").read_text())
    ranking = record["ranking"]
    assert sorted(c["id"] for c in ranking) == sorted([*load_generation(run_dir, 1), *load_generation(run_dir, 2)])
    assert [c["val"] for c in ranking] == sorted((c["val"] for c in ranking), reverse=True)
    assert record["settings"]["split"] == "val" and record["settings"]["steps"] == [0]
    best = ranking[0]
    assert f"selected individual {best['id']} (generation {best['generation']})" in out.stdout
    gene, manifest = load_learngene(run_dir / "learngenes" / f"selected-g{best['generation']:04d}-i{best['id']}")
    archived, _, _ = load_individual(run_dir, best["id"])
    assert manifest["individual"] == best["id"]
    assert all(torch.equal(gene.tensors[k], archived.tensors[k]) for k in gene.tensors)
    cfg = load_config(run_dir / "config.toml")
    ds = load_dataset(cfg.data)
    s = EvalSettings(episodes=3, ways=3, shots=[5], steps=[0], split="val", seed=0,
                     nongene_init=cfg.learngene.nongene_init, nongene_scale=cfg.learngene.nongene_scale)
    alone = evaluate(ds, s, {"x": builders(s, ways=3, in_channels=ds.channels, image_size=ds.image_size,
                                           gene=archived)["learngene"]})["results"][0]
    assert alone["mean"] == best["val"]
    # no archive to choose from: one line
    empty = run_dir.parent / "no-archive"
    empty.mkdir()
    (empty / "config.toml").write_text((run_dir / "config.toml").read_text())
    (empty / "events.jsonl").write_text("")
    bad = subprocess.run([sys.executable, "-m", "gtl_tui.cli", "select", str(empty), "--ways", "3"], capture_output=True,
                         text=True, env=env, timeout=300)
    assert bad.returncode != 0 and bad.stderr.strip().count("\n") == 0 and "no gene archive" in bad.stderr
