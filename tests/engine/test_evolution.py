"""End-to-end engine runs on tiny configs: the event sequence, lineage, export, kill-and-resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY

from engine import events as ev
from engine.config import load_config
from engine.learngene import load_learngene
from engine.run.runner import create_run_dir, run_in_dir


def kinds(events: list[ev.Event]) -> list[str]:
    return [e.kind for e in events]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    cfg = load_config(None, TINY)
    run_dir = create_run_dir(cfg, tmp_path_factory.mktemp("runs"), "tiny")
    finished = run_in_dir(run_dir)
    assert finished.status == "completed"
    return run_dir


def test_event_sequence(tiny_run):
    events, _ = ev.read_events(tiny_run / ev.EVENTS_FILE)
    k = kinds(events)
    assert k[0] == "run_started" and k[-1] == "run_finished"
    assert k.count("generation_started") == 3 and k.count("generation_completed") == 3
    assert k.count("individual_born") == 12 and k.count("individual_evaluated") == 12
    assert k.count("checkpoint_saved") == 3 and k.count("learngene_exported") in (1, 2)  # elite (+ last best)
    assert [e.seq for e in events] == list(range(len(events)))
    # within a generation: born before started before evaluated, completed after all evaluations
    gen1 = [e for e in events if getattr(e, "generation", None) == 1]
    assert gen1[0].kind == "generation_started"
    assert kinds(gen1).index("generation_completed") > max(i for i, x in enumerate(kinds(gen1))
                                                         if x == "individual_evaluated")


def test_lineage_and_tournaments(tiny_run):
    events, _ = ev.read_events(tiny_run / ev.EVENTS_FILE)
    born = {e.id: e for e in events if isinstance(e, ev.IndividualBorn)}
    fitness = {e.id: e.fitness for e in events if isinstance(e, ev.IndividualEvaluated)}
    winners = {e.winner for e in events if isinstance(e, ev.Tournament)}
    for t in (e for e in events if isinstance(e, ev.Tournament)):
        assert fitness[t.winner] == max(fitness[i] for i in t.group)
    for b in born.values():
        if b.generation == 0:
            assert b.parent is None and b.mutations == []
        else:
            completed = {e.generation: e for e in events if isinstance(e, ev.GenerationCompleted)}
            elite = completed[b.generation - 1].elite_id
            # a tournament winner of the previous generation, or the elite (possibly older), unmutated
            assert (born[b.parent].generation == b.generation - 1 and b.parent in winners) or (
                b.parent == elite and b.mutations == [] and b.channels == born[elite].channels)
        assert len(set(b.task)) == 5 and len(b.channels) == len(b.layer_widths)
        assert b.gene_sizes == [len(c) for c in b.channels]
    meta_train = set(range(20)) - set()  # the tasks come only from meta-train classes
    from engine.data import load_dataset

    ds = load_dataset(load_config(None, TINY).data)
    meta_train = set(ds.splits["train"])
    assert all(set(b.task) <= meta_train for b in born.values())


def test_exported_learngene(tiny_run):
    events, _ = ev.read_events(tiny_run / ev.EVENTS_FILE)
    exports = [e for e in events if isinstance(e, ev.LearngeneExported)]
    exported = exports[0]  # the elite first
    assert Path(exported.path).name.startswith("best-")
    gene, manifest = load_learngene(exported.path)
    if len(exports) == 2:  # the best of the last generation, when it is not the elite
        last = [e for e in events if isinstance(e, ev.IndividualEvaluated) and e.generation == 2]
        top = max(last, key=lambda e: e.fitness)
        assert Path(exports[1].path).name.startswith("last-best-") and exports[1].individual == top.id
        assert exports[1].fitness == top.fitness
    completed = [e for e in events if isinstance(e, ev.GenerationCompleted)]
    assert manifest["fitness"] == max(c.best for c in completed) == exported.fitness
    assert manifest["lineage"][-1]["generation"] == 0 and manifest["lineage"][0]["id"] == exported.individual
    assert manifest["config_hash"] == load_config(tiny_run / "config.toml").hash()
    assert 0.12 < manifest["fraction"] < 0.3 and manifest["arch"] == "conv4"
    assert "version" in manifest and manifest["config"]["evolution"]["population"] == 4


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "gtl_tui.cli", *args]


def _history(run_dir: Path) -> dict[int, tuple[float, float, float]]:
    """Fitness per generation (the last record of each, since a resumed generation is re-run)."""
    events, _ = ev.read_events(run_dir / ev.EVENTS_FILE)
    return {e.generation: (e.best, e.mean, e.worst) for e in events if isinstance(e, ev.GenerationCompleted)}


def _best_gene(run_dir: Path):
    """The elite exported at the end of the run (a continued run also holds its earlier end's elite)."""
    events, _ = ev.read_events(run_dir / ev.EVENTS_FILE)
    best_id = events[-1].best_id
    path = next((run_dir / "learngenes").glob(f"best-g*-i{best_id}.safetensors"))
    return load_learngene(path)


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", ["checkpoint_saved", "individual_evaluated"])
def test_kill_and_resume_equals_uninterrupted(tmp_path, kill_after):
    sets = [a for s in TINY + ["evolution.generations=4"] for a in ("--set", s)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref = subprocess.run(_cli("run", "--headless", "--runs-dir", str(tmp_path), "--name", "ref", *sets),
                         env=env, capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    victim = subprocess.Popen(_cli("run", "--headless", "--runs-dir", str(tmp_path), "--name", "victim", *sets),
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "victim" / ev.EVENTS_FILE
    deadline = time.time() + 120
    # kill in generation 1: after its first evaluation, or right after checkpoint 1 was written
    target = 1 if kill_after == "checkpoint_saved" else 2
    while time.time() < deadline:
        events, _ = ev.read_events(log) if log.exists() else ([], 0)
        hits = [e for e in events if e.kind == kill_after]
        if len(hits) >= target + (3 if kill_after == "individual_evaluated" else 0):
            break
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    events, _ = ev.read_events(log)
    assert not any(e.kind == "run_finished" for e in events), "killed too late"
    resumed = subprocess.run(_cli("run", "--headless", "--resume", str(tmp_path / "victim")),
                             env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert _history(tmp_path / "victim") == _history(tmp_path / "ref")
    g_ref, m_ref = _best_gene(tmp_path / "ref")
    g_vic, m_vic = _best_gene(tmp_path / "victim")
    assert g_ref.channels == g_vic.channels and m_ref["fitness"] == m_vic["fitness"]
    assert all(torch.equal(g_ref.tensors[k], g_vic.tensors[k]) for k in g_ref.tensors)
    from engine.run.gene_archive import archived_generations, load_generation

    # the gene archive too: every individual's learngene of every generation, as the uninterrupted run's
    assert archived_generations(tmp_path / "victim") == archived_generations(tmp_path / "ref") == [0, 1, 2, 3]
    for g in range(4):
        a, b = load_generation(tmp_path / "ref", g), load_generation(tmp_path / "victim", g)
        assert sorted(a) == sorted(b) and all(a[i][1] == b[i][1] and torch.equal(a[i][0].tensors[k], b[i][0].tensors[k])
                                              for i in a for k in a[i][0].tensors)
    events, _ = ev.read_events(log)
    starts = [e for e in events if isinstance(e, ev.RunStarted)]
    assert len(starts) == 2 and starts[1].resumed_from is not None
    assert events[-1].kind == "run_finished" and events[-1].status == "completed"


def test_a_finished_run_continued_for_more_generations_equals_a_longer_run(tiny_run, tmp_path):
    """`run --resume RUN --generations 4` on the finished 3-generation run goes on from its last checkpoint and
    ends where a 4-generation run ends: same fitness history, same elite learngene, tensor for tensor."""
    import shutil

    longer = create_run_dir(load_config(None, TINY + ["evolution.generations=4"]), tmp_path, "longer")
    assert run_in_dir(longer).status == "completed"
    continued = tmp_path / "continued"
    shutil.copytree(tiny_run, continued)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    refused = subprocess.run(_cli("run", "--headless", "--resume", str(continued)), env=env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "--generations N" in refused.stderr
    short = subprocess.run(_cli("run", "--headless", "--resume", str(continued), "--generations", "3"), env=env,
                           capture_output=True, text=True, timeout=60)
    assert short.returncode != 0 and "completed 3 generations" in short.stderr
    done = subprocess.run(_cli("run", "--headless", "--resume", str(continued), "--generations", "4"), env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert load_config(continued / "config.toml").evolution.generations == 4
    assert _history(continued) == _history(longer)
    g_long, m_long = _best_gene(longer)
    g_cont, m_cont = _best_gene(continued)
    assert g_long.channels == g_cont.channels and m_long["fitness"] == m_cont["fitness"]
    assert all(torch.equal(g_long.tensors[k], g_cont.tensors[k]) for k in g_long.tensors)
    events, _ = ev.read_events(continued / ev.EVENTS_FILE)
    starts = [e for e in events if isinstance(e, ev.RunStarted)]
    assert [s.resumed_from for s in starts] == [None, 3] and starts[1].generations == 4
    assert events[-1].kind == "run_finished" and events[-1].generations_done == 4


def test_resume_with_other_config_is_refused(tiny_run, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(tiny_run, other)
    (other / "config.toml").write_text(load_config(None, TINY + ["lifetime.steps=7"]).to_toml())
    with pytest.raises(ValueError, match="another config"):
        run_in_dir(other)


@pytest.mark.parametrize("levers", [
    ["fitness.kind='critic'", "fitness.critic_steps=3"],
    ["fitness.kind='mixed'", "lifetime.gene_lr_scale=0.1", "learngene.nongene_init='scaled'"],
    ["evolution.lamarckian=false", "evolution.elitism=false", "learngene.nongene_init='zero'"],
])
def test_levers_run(tmp_path, levers):
    cfg = load_config(None, TINY + ["evolution.generations=2"] + levers)
    run_dir = create_run_dir(cfg, tmp_path, "lever")
    assert run_in_dir(run_dir).status == "completed"
    events, _ = ev.read_events(run_dir / ev.EVENTS_FILE)
    evaluated = [e for e in events if isinstance(e, ev.IndividualEvaluated)]
    assert len(evaluated) == 8
    if cfg.fitness.kind != "lifetime":
        assert all(e.critic_fitness is not None for e in evaluated)
    if cfg.fitness.kind == "critic":
        assert all(e.fitness == e.critic_fitness for e in evaluated)


def test_gene_lr_scale_zero_freezes_gene(tmp_path):
    """With gene_lr_scale = 0 (and no weight decay) the inherited gene weights leave a lifetime unchanged."""
    from engine.data import load_dataset
    from engine.data.tasks import partition_classes
    from engine.evolution.individual import Genome
    from engine.evolution.lifetime import LifeContext, born, train_on_task
    from engine.learngene import extract, random_channels
    from engine.models import create_model
    from engine.seeding import torch_generator

    cfg = load_config(None, TINY + ["lifetime.gene_lr_scale=0.0", "lifetime.weight_decay=0.0"])
    ds = load_dataset(cfg.data)
    ctx = LifeContext(cfg=cfg, dataset=ds, partition=partition_classes(ds, 0.2, seed=0), device=torch.device("cpu"))
    src = create_model("conv4", 5, width=0.25, generator=torch_generator(0, "src"))
    channels = random_channels(src.gene_spec().widths, 0.45, torch_generator(0, "ch"))
    gene = extract(src, channels)
    genome = Genome(id=99, generation=1, parent=0, task=ds.splits["train"][:5], channels=channels, gene=gene)
    model = born(ctx, genome)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_on_task(model, ctx.task_for(genome), ctx, steps=5, generator=torch_generator(0, "t"),
                  gene_channels=channels)
    after_gene = extract(model, channels)
    for k, t in gene.tensors.items():
        if not k.endswith(("running_mean", "running_var")):
            assert torch.equal(after_gene.tensors[k], t), k
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())  # the rest trained


def test_checkpoints_match_configs_up_to_the_runs_length():
    """A checkpoint matches its config with any number of generations; one from before ``compute_hash`` matches
    its config, or (a finished run being continued) the config with the run's length at that checkpoint."""
    from types import SimpleNamespace

    from engine.evolution.loop import Evolution

    cfg = load_config(None, TINY)  # 3 generations
    longer, other = cfg.with_generations(8), load_config(None, TINY + ["lifetime.steps=7"])
    same = Evolution._same_computation
    new_style = {"config_hash": cfg.hash(), "compute_hash": cfg.compute_hash(), "generation": 3}
    assert same(SimpleNamespace(cfg=longer), new_style) and not same(SimpleNamespace(cfg=other), new_style)
    old_style = {"config_hash": cfg.hash(), "generation": 3}
    assert same(SimpleNamespace(cfg=cfg), old_style) and same(SimpleNamespace(cfg=longer), old_style)
    assert not same(SimpleNamespace(cfg=longer), {**old_style, "generation": 2})  # not its last checkpoint
    assert not same(SimpleNamespace(cfg=other), old_style)


def test_checkpoints_are_written_while_the_next_generation_trains(tmp_path, monkeypatch):
    """Each checkpoint is written beside the next generation; the run ends only when the last one is on disk."""
    import threading

    import engine.evolution.loop as loop

    writers, real = [], loop.save_checkpoint

    def slow_save(*args, **kwargs):
        time.sleep(0.3)
        writers.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "save_checkpoint", slow_save)
    run_dir = create_run_dir(load_config(None, TINY), tmp_path, "background")
    assert run_in_dir(run_dir).status == "completed"
    assert len(writers) == 3 and all(w.startswith("gtl-checkpoint") for w in writers)
    events, _ = ev.read_events(run_dir / ev.EVENTS_FILE)
    k = kinds(events)
    saved = [e for e in events if isinstance(e, ev.CheckpointSaved)]
    assert [e.generation for e in saved] == [0, 1, 2]
    started_1 = next(i for i, e in enumerate(events) if isinstance(e, ev.GenerationStarted) and e.generation == 1)
    assert started_1 < events.index(saved[0]), "generation 1 waited for checkpoint 0"
    assert k[-1] == "run_finished" and events.index(saved[-1]) < len(events) - 1
    assert (run_dir / "checkpoints" / "gen_00002.safetensors").is_file()


def test_a_failed_checkpoint_write_fails_the_run(tmp_path, monkeypatch):
    import engine.evolution.loop as loop

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(loop, "save_checkpoint", full_disk)
    run_dir = create_run_dir(load_config(None, TINY), tmp_path, "full")
    with pytest.raises(OSError, match="No space left"):
        run_in_dir(run_dir)
    events, _ = ev.read_events(run_dir / ev.EVENTS_FILE)
    assert events[-1].kind == "run_finished" and events[-1].status == "failed"
    assert "No space left" in events[-1].error
    assert not any(isinstance(e, ev.GenerationStarted) and e.generation == 2 for e in events)
