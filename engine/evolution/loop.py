"""The GTL generation loop: births, lifetimes, tournaments, elitism, mutation, checkpoints, events.

The loop knows nothing of any UI: it reports through the typed events of ``engine.events`` and honours pause/stop
requests at safe points (``engine.run.signals``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import torch

import engine
from engine import events as ev
from engine.config import Config
from engine.data import ImageDataset
from engine.evolution.crossover import cross_channels, cross_gene
from engine.evolution.individual import Genome, LifeResult
from engine.evolution.lifetime import LifeContext, born, cpu_state
from engine.evolution.mutation import jaccard_diversity, mutate_channels
from engine.evolution.selection import select_parents
from engine.integrity import all_finite
from engine.learngene import Learngene, extract, random_channels, save_learngene
from engine.models import create_model, model_from_state
from engine.run.checkpoint import load_latest_valid, save_checkpoint
from engine.run.gene_archive import NotArchived, export_manifest, lineage_of, load_individual, save_generation
from engine.run.signals import RunSignals
from engine.rundir import GEN0_NAME, LEARNGENES_DIR
from engine.seeding import numpy_generator, torch_generator
from engine.timing import GenerationClock
from engine.trainers import Trainer, make_trainer


class Evolution:
    """A GTL run in ``run_dir``: fresh, or continued from its latest checkpoint."""

    def __init__(self, cfg: Config, run_dir: Path, *, dataset: ImageDataset, device: torch.device,
                 writer: ev.EventWriter, signals: RunSignals | None = None, trainer: Trainer | None = None,
                 prefetch: bool | None = None):
        """``prefetch``: prepare each generation's individuals (fresh networks, tasks, task data) while the one
        before trains, when the trainer can (``Trainer.prepare``); default on, off with ``GTL_PREFETCH=0``. The
        results are the same either way (every draw comes from its own (seed, purpose, id) generator)."""
        from engine.data.tasks import partition_classes

        self.cfg, self.run_dir, self.writer = cfg, Path(run_dir), writer
        self.signals = signals or RunSignals()
        self.signals.on_paused = lambda: self.writer.emit(ev.Paused(generation=self.generation))
        self.signals.on_resumed = lambda: self.writer.emit(ev.Resumed(generation=self.generation))
        partition = partition_classes(dataset, cfg.data.heldout_fraction, seed=cfg.data.split_seed)
        self.ctx = LifeContext(cfg=cfg, dataset=dataset, partition=partition, device=device)
        self.trainer = trainer or make_trainer(self.ctx)
        if hasattr(self.trainer, "on_warning"):  # e.g. the Ray trainer: "worker died, re-running individual 7"
            self.trainer.on_warning = lambda m: self.writer.emit(ev.Warning_(message=m))
        probe = create_model(cfg.model.arch, cfg.task.ways, width=cfg.model.width,
                             in_channels=self.ctx.in_channels, image_size=cfg.data.image_size)
        self.spec = probe.gene_spec()
        self._lock = threading.Lock()
        # evolution state (everything below is checkpointed)
        self.generation = 0  # the generation to run next
        self.next_id = 0
        self.genomes: list[Genome] = []
        self.last_genes: dict[int, tuple[Learngene, float]] = {}  # last completed generation: id -> (gene, fitness)
        self.elite: dict[str, Any] | None = None  # id, generation, fitness
        self.elite_gene: Learngene | None = None
        self.history: list[dict[str, Any]] = []
        self.individuals: dict[int, dict[str, Any]] = {}  # id -> parent, generation, fitness, mutations
        self.current_individual = 0
        self._restore_warnings: list[str] = []
        self._saver = ThreadPoolExecutor(1, thread_name_prefix="gtl-checkpoint")
        self._saving: Future[None] | None = None
        if prefetch is None:
            prefetch = os.environ.get("GTL_PREFETCH", "1") != "0"
        self._prefetch_on = prefetch and callable(getattr(self.trainer, "prepare", None))
        self._prefetcher = ThreadPoolExecutor(1, thread_name_prefix="gtl-prefetch") if self._prefetch_on else None
        self._prefetching: Future[None] | None = None
        self.clock: GenerationClock | None = None

    # ----------------------------------------------------------------------------------------- run
    def run(self) -> ev.RunFinished:
        """Run (or continue) until the last generation, a stop request, or an error; emits ``run_finished``."""
        resumed_from = self._restore()
        cfg = self.cfg
        self.writer.emit(ev.RunStarted(
            name=self.run_dir.name, config=cfg.to_dict(), config_hash=cfg.hash(), device=str(self.ctx.device),
            trainer=self.trainer.name, backend=cfg.run.backend, arch=cfg.model.arch,
            population=cfg.evolution.population, generations=cfg.evolution.generations,
            version=engine.__version__, pid=os.getpid(), resumed_from=resumed_from))
        for problem in self._restore_warnings:
            self.writer.emit(ev.Warning_(message=f"{problem}; continuing from an older checkpoint"))
        from engine.run.signals import StopRequested

        try:
            self.clock = GenerationClock(self.ctx.device)
            if not self.genomes and self.generation == 0:
                self.genomes = self._first_generation()
            while self.generation < cfg.evolution.generations:
                self._run_generation()
            self.export(reason="final")
            self._export_last_best()
            status = "completed"
        except StopRequested:
            status = "stopped"
        finally:
            try:
                self._wait_for_checkpoint()
            finally:
                self._saver.shutdown()
                if self._prefetcher is not None:  # a preparation in flight ends by itself (seconds at most)
                    self._prefetcher.shutdown(wait=True, cancel_futures=True)
                if self.clock is not None:
                    self.clock.close()
                self.trainer.close()
        best = self.elite or {}
        return self.writer.emit(ev.RunFinished(status=status, best_id=best.get("id"),
                                               best_fitness=best.get("fitness"), generations_done=self.generation))

    def _first_generation(self) -> list[Genome]:
        ratio = self.cfg.learngene.ratio
        genomes = []
        for _ in range(self.cfg.evolution.population):
            self.signals.safe_point()  # a stop (SIGTERM) is honoured during births too, not only in training
            gid = self._new_id()
            channels = random_channels(self.spec.widths, ratio, torch_generator(self.cfg.run.seed, "gene0", gid))
            genomes.append(Genome(id=gid, generation=0, parent=None, task=self._sample_task(gid), channels=channels))
        return genomes

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def _sample_task(self, gid: int) -> list[int]:
        from engine.data.tasks import sample_classes

        g = torch_generator(self.cfg.run.seed, "task", gid)
        return sample_classes(self.ctx.dataset.splits["train"], self.cfg.task.ways, g)

    def _run_generation(self) -> None:
        g, cfg = self.generation, self.cfg
        t0 = time.perf_counter()
        self.writer.emit(ev.GenerationStarted(generation=g))
        names = self.ctx.dataset.class_names
        for gm in self.genomes:
            self.writer.emit(ev.IndividualBorn(
                id=gm.id, generation=g, parent=gm.parent, task=gm.task, task_names=[names[c] for c in gm.task],
                mutations=gm.mutations, gene_sizes=[len(c) for c in gm.channels], layer_widths=self.spec.widths,
                channels=gm.channels, fraction=self._fraction(gm.channels), parent2=gm.parent2,
                from_parent2=gm.from_parent2 or None))
            self.individuals[gm.id] = {"parent": gm.parent, "generation": g, "fitness": None,
                                       "mutations": gm.mutations}
            if gm.parent2 is not None:
                self.individuals[gm.id].update(parent2=gm.parent2, from_parent2=gm.from_parent2)
        self.current_individual = 0
        self._await_prefetch()  # this generation's preparation (submitted while the previous one trained)
        if self._prefetch_on:  # the next one's, once this one's births are done and its training has begun
            self.trainer.on_training_start = lambda: self._prefetch(g + 1)

        def on_start(gm: Genome) -> None:
            self.writer.emit(ev.IndividualStarted(id=gm.id, generation=g))

        def on_done(gm: Genome, r: LifeResult) -> None:
            self._check_finite(gm, r)
            self.current_individual += 1
            self.writer.emit(ev.IndividualEvaluated(
                id=gm.id, generation=g, fitness=r.fitness, seconds=round(r.seconds, 3),
                lifetime_fitness=r.lifetime_fitness, critic_fitness=r.critic_fitness, train_loss=r.train_loss,
                loss_curve=r.loss_curve,
                images=r.images))

        t_train = time.perf_counter()
        results = self.trainer.train_generation(self.genomes, on_start=on_start, on_done=on_done,
                                                safe_point=self._safe_point)
        # the trainer's own measure of its device work where it has one (CUDA events), else the whole call
        train_s = getattr(self.trainer, "last_train_seconds", None)
        if train_s is None:
            train_s = time.perf_counter() - t_train
        self.signals.safe_point()
        for gm, r in zip(self.genomes, results, strict=True):
            self._check_finite(gm, r)
        fitness = [r.fitness for r in results]
        for gm, r in zip(self.genomes, results, strict=True):
            self.individuals[gm.id]["fitness"] = r.fitness
        # what selection sees: its own fitness, or its lineage score (evolution.lineage_decay)
        lineage = cfg.evolution.lineage_decay > 0
        score = [self._lineage_score(gm, f) for gm, f in zip(self.genomes, fitness, strict=True)] if lineage \
            else fitness
        if lineage:
            for gm, sc in zip(self.genomes, score, strict=True):
                self.individuals[gm.id]["score"] = sc
        trained = {gm.id: self._model_from_state(r.state) for gm, r in zip(self.genomes, results, strict=True)}
        own_genes = {gm.id: (extract(trained[gm.id], gm.channels), r.fitness)
                     for gm, r in zip(self.genomes, results, strict=True)}
        best_pos = max(range(len(fitness)), key=lambda i: (fitness[i], -i))
        best = self.genomes[best_pos]
        top = best_pos if not lineage else max(range(len(score)), key=lambda i: (score[i], -i))
        if self.elite is None or score[top] > self.elite["score" if lineage else "fitness"]:
            self.elite = {"id": self.genomes[top].id, "generation": g, "fitness": fitness[top]}
            if lineage:
                self.elite["score"] = score[top]
            self.elite_gene = own_genes[self.genomes[top].id][0]
        children = self._next_generation(score, trained)
        seconds = time.perf_counter() - t0
        stats = {"generation": g, "best": max(fitness), "mean": statistics.fmean(fitness), "worst": min(fitness),
                 "std": statistics.pstdev(fitness), "diversity": jaccard_diversity([gm.channels for gm in self.genomes]),
                 "best_id": best.id, "elite_id": self.elite["id"], "elite_fitness": self.elite["fitness"]}
        self.history.append(stats)
        timing = self.clock.split(train_s) if self.clock is not None else None
        self.writer.emit(ev.GenerationCompleted(**stats, seconds=round(seconds, 3),
                                                images_per_s=round(sum(r.images for r in results) / seconds, 1),
                                                timing=timing))
        with self._lock:
            self.last_genes = own_genes
            self.genomes = children
            self.generation = g + 1
        self._save_in_background(g, own_genes)
        if g == 0:  # the generation-0 baseline of `gtl-tui evaluate` (written once, no event: not a user export)
            self.export(out=self.run_dir / LEARNGENES_DIR / GEN0_NAME, reason="gen0", emit=False)

    def _check_finite(self, gm: Genome, r: LifeResult) -> None:
        """An individual whose weights (or loss, or fitness) went NaN or infinite in its lifetime scores 0 and
        passes on the gene it was born with (recomputed from its seeds), so no NaN gene enters the population."""
        if (math.isfinite(r.fitness) and (r.train_loss is None or math.isfinite(r.train_loss))
                and all_finite(r.state)):
            return
        self.writer.emit(ev.Warning_(
            message=f"individual {gm.id} (generation {gm.generation}): its weights became NaN or infinite during "
                    "its lifetime (learning rate too high?); fitness 0, and it passes on the gene it was born with"))
        r.fitness = r.lifetime_fitness = 0.0
        r.critic_fitness = None if r.critic_fitness is None else 0.0
        r.train_loss = r.loss_curve = None
        r.state = cpu_state(born(self.ctx, gm))

    def _lineage_score(self, genome: Genome, fitness: float) -> float:
        """decay x the mean score of its parents + (1 - decay) x its own fitness; its fitness in generation 0."""
        decay = self.cfg.evolution.lineage_decay
        parents = [self.individuals[p] for p in (genome.parent, genome.parent2)
                   if p is not None and p in self.individuals]
        if not parents:
            return fitness
        inherited = statistics.fmean(p.get("score", p["fitness"]) for p in parents)
        return decay * inherited + (1 - decay) * fitness

    def _next_generation(self, fitness: list[float], trained: dict[int, Any]) -> list[Genome]:
        """Children of the tournament winners on ``fitness`` (each individual's fitness or lineage score)."""
        cfg, g = self.cfg, self.generation
        rng = numpy_generator(cfg.run.seed, "tournament", g)
        n_elite = 1 if cfg.evolution.elitism and self.elite_gene is not None else 0
        tournaments = select_parents(fitness, n=cfg.evolution.population - n_elite,
                                     size=cfg.evolution.tournament_size, rng=rng)
        lineage = cfg.evolution.lineage_decay > 0
        for t in tournaments:
            self.writer.emit(ev.Tournament(generation=g, group=[self.genomes[i].id for i in t.group],
                                           fitness=[self.individuals[self.genomes[i].id]["fitness"] for i in t.group]
                                           if lineage else [fitness[i] for i in t.group],
                                           winner=self.genomes[t.winner].id,
                                           scores=[fitness[i] for i in t.group] if lineage else None))
        children: list[Genome] = []
        if n_elite:
            gid = self._new_id()
            children.append(Genome(id=gid, generation=g + 1, parent=self.elite["id"], task=self._sample_task(gid),
                                   channels=self.elite_gene.channels, gene=self.elite_gene))
        m, lg = cfg.mutation, cfg.learngene
        winners = sorted({t.winner for t in tournaments})
        for t in tournaments:
            self.signals.safe_point()  # births honour a stop too (the generation is recomputed on resume)
            parent = self.genomes[t.winner]
            gid = self._new_id()
            mate, from_mate, start = None, [], parent.channels
            if m.crossover > 0:  # its own stream: the tournament and mutation draws stay those of a run without
                xr = numpy_generator(cfg.run.seed, "crossover", gid)
                others = [w for w in winners if w != t.winner]
                if xr.random() < m.crossover and others:
                    mate = self.genomes[others[int(xr.integers(len(others)))]]
                    start, from_mate = cross_channels(parent.channels, mate.channels, xr)
            channels, records = mutate_channels(
                start, self.spec.widths, rate=m.rate, max_channels=m.max_channels,
                op_weights={"swap": m.swap, "add": m.add, "drop": m.drop}, ratio_band=lg.ratio_band,
                rng=numpy_generator(cfg.run.seed, "mutate", gid))
            gene = extract(trained[parent.id], channels) if mate is None else \
                cross_gene(trained[parent.id], trained[mate.id], channels, from_mate)
            children.append(Genome(id=gid, generation=g + 1, parent=parent.id, task=self._sample_task(gid),
                                   channels=channels, gene=gene, mutations=records,
                                   parent2=mate.id if mate is not None else None, from_parent2=from_mate))
        return children

    def _model_from_state(self, state: dict[str, torch.Tensor]):
        """The trained network around ``state`` (read only: genes are extracted from it). No random init: for
        VGG11 that init cost 0.15 s per individual, seconds per generation on the host while the GPU waited."""
        return model_from_state(self.cfg.model.arch, self.cfg.task.ways, state, width=self.cfg.model.width,
                                in_channels=self.ctx.in_channels, image_size=self.cfg.data.image_size)

    def _fraction(self, channels: list[list[int]]) -> float:
        from engine.learngene import gene_fraction

        return round(gene_fraction(self.spec, channels), 5)

    # ----------------------------------------------------------------------------------------- state
    def _save_in_background(self, generation: int, own_genes: dict[int, tuple[Learngene, float]]) -> None:
        """Write the checkpoint of completed ``generation`` while the next one trains (on a GPU the write kept
        the device idle between generations). One write is in flight at a time, and the run waits for it before
        it ends, so a stop or an error loses nothing; a killed process leaves the previous checkpoint (atomic).
        The generation's genes go to the gene archive first: killed between the two, the run re-runs the
        generation on resume and writes its archive file again (``engine.run.gene_archive``)."""
        self._wait_for_checkpoint()
        state, genes = self._checkpoint_contents()
        state = json.dumps(state)  # now: the next generation changes what the dict refers to

        def write() -> None:
            save_generation(self.run_dir, generation, own_genes, keep=self.cfg.run.gene_history)
            path = save_checkpoint(self.run_dir, generation, state, genes)
            self.writer.emit(ev.CheckpointSaved(generation=generation, path=str(path.relative_to(self.run_dir))))

        self._saving = self._saver.submit(write)

    def _safe_point(self) -> None:
        """The trainers' safe point: pause or stop requests, and a checkpoint write that failed in the background
        (a full disk) fails the run now, in the generation it was written beside, not when that one ends."""
        self.signals.safe_point()
        saving = self._saving
        if saving is not None and saving.done() and saving.exception() is not None:
            self._wait_for_checkpoint()

    def _wait_for_checkpoint(self) -> None:
        """Block until the checkpoint being written is on disk; its error, if any, is raised here."""
        saving, self._saving = self._saving, None
        if saving is not None:
            if self.clock is not None:
                with self.clock.waiting():
                    saving.result()
            else:
                saving.result()

    # ----------------------------------------------------------------------------------------- prefetch
    def _prefetch(self, generation: int) -> None:
        """Start preparing ``generation`` (the next one) in the background while this one trains: its ids are
        known (``next_id`` onwards, one per member), and so are their tasks, fresh networks and task data, which
        depend only on (seed, id). Only the inheritance waits for this generation's results."""
        if not self._prefetch_on or generation >= self.cfg.evolution.generations:
            return
        ids = range(self.next_id, self.next_id + self.cfg.evolution.population)

        def prepare() -> None:
            self.trainer.prepare([(gid, self._sample_task(gid)) for gid in ids])

        self._prefetching = self._prefetcher.submit(prepare)

    def _await_prefetch(self) -> None:
        """Wait for the preparation in flight (counted as waiting); its error, if any, is raised here."""
        pending, self._prefetching = self._prefetching, None
        if pending is not None:
            with self.clock.waiting() if self.clock is not None else contextlib.nullcontext():
                pending.result()

    def _checkpoint_contents(self) -> tuple[dict[str, Any], dict[str, Learngene]]:
        """A snapshot of the evolution state (JSON) and the learngenes a continued run needs."""
        state = {
            "generation": self.generation, "next_id": self.next_id, "seed": self.cfg.run.seed,
            "config_hash": self.cfg.hash(), "compute_hash": self.cfg.compute_hash(),
            "genomes": [{"id": gm.id, "generation": gm.generation, "parent": gm.parent, "task": gm.task,
                         "channels": gm.channels, "mutations": gm.mutations, "has_gene": gm.gene is not None,
                         **({"parent2": gm.parent2, "from_parent2": gm.from_parent2} if gm.parent2 is not None
                            else {})}
                        for gm in self.genomes],
            "last_fitness": {str(i): f for i, (_, f) in self.last_genes.items()},
            "elite": self.elite, "history": self.history,
            "individuals": {str(k): v for k, v in self.individuals.items()},
        }
        genes = {f"genome.{gm.id}": gm.gene for gm in self.genomes if gm.gene is not None}
        genes.update({f"last.{i}": gene for i, (gene, _) in self.last_genes.items()})
        if self.elite_gene is not None:
            genes["elite"] = self.elite_gene
        return state, genes

    def _restore(self) -> int | None:
        """Load the newest valid checkpoint if there is one; returns the generation the run continues with.

        A damaged newer checkpoint (checksum, header, non-finite numbers) is passed over with a warning: the run
        recomputes the generations after the older one, to the same result (all randomness is seeded)."""
        self._restore_warnings: list[str] = []
        found = load_latest_valid(self.run_dir)
        if found is None:
            return None
        path, state, genes, self._restore_warnings = found
        if not self._same_computation(state):
            raise ValueError(f"{path}: checkpoint was written with another config (hash {state['config_hash']})")
        self.generation, self.next_id = state["generation"], state["next_id"]
        self.genomes = [Genome(id=d["id"], generation=d["generation"], parent=d["parent"], task=d["task"],
                               channels=d["channels"], mutations=d["mutations"],
                               gene=genes.get(f"genome.{d['id']}"), parent2=d.get("parent2"),
                               from_parent2=d.get("from_parent2", [])) for d in state["genomes"]]
        self.last_genes = {int(i): (genes[f"last.{i}"], f) for i, f in state["last_fitness"].items()}
        self.elite, self.elite_gene = state["elite"], genes.get("elite")
        self.history = state["history"]
        self.individuals = {int(k): v for k, v in state["individuals"].items()}
        return self.generation

    def _same_computation(self, state: dict[str, Any]) -> bool:
        """Whether the checkpoint was written by this config, up to the number of generations (a finished run
        continued for more generations has a longer config). Checkpoints before ``compute_hash`` existed
        match the config, or the config with the run's length when the checkpoint was its last."""
        if "compute_hash" in state:
            return state["compute_hash"] == self.cfg.compute_hash()
        return state["config_hash"] in (self.cfg.hash(), self.cfg.with_generations(state["generation"]).hash())

    # ----------------------------------------------------------------------------------------- queries
    def lineage(self, individual: int) -> list[dict[str, Any]]:
        """The individual and its ancestors back to generation 0: id, generation, fitness, mutations."""
        return lineage_of(self.individuals, individual)

    def status(self) -> dict[str, Any]:
        s = self.signals
        state = "stopping" if s.stop_requested else "paused" if s.paused else "pausing" if s.pause_requested \
            else "running"
        elite = self.elite or {}
        return {"state": state, "generation": self.generation, "generations": self.cfg.evolution.generations,
                "individual": self.current_individual, "population": self.cfg.evolution.population,
                "best_id": elite.get("id"), "best_fitness": elite.get("fitness"), "pid": os.getpid()}

    def _export_last_best(self) -> None:
        """Also export the best of the last generation when it is not the elite: the elite is picked on one
        task's held-out accuracy, partly luck, and the last generation's best often transfers as well or better
        (docs/evaluation.md)."""
        if not self.last_genes:
            return
        best = max(self.last_genes, key=lambda i: (self.last_genes[i][1], -i))
        if self.elite is not None and best != self.elite["id"]:
            gen = self.individuals.get(best, {}).get("generation", 0)
            self.export(individual=best, out=self.run_dir / LEARNGENES_DIR / f"last-best-g{gen:04d}-i{best}",
                        reason="final")

    def _archived(self, individual: int, rec: dict[str, Any], saving: Future[None] | None
                  ) -> tuple[Learngene, float]:
        """An earlier generation's learngene from the archive; one-line ValueError when it is not there."""
        if not rec:
            raise ValueError(f"no individual {individual} in this run (ids 0..{self.next_id - 1})")
        g = rec["generation"]
        if rec.get("fitness") is None:
            raise ValueError(f"individual {individual} of generation {g} has not completed its lifetime yet")
        if saving is not None:  # its generation's file may still be being written
            wait([saving])
        try:
            gene, fitness, _ = load_individual(self.run_dir, individual, g)
        except NotArchived:
            keep = self.cfg.run.gene_history
            why = "the run keeps no gene archive (run.gene_history = 0)" if keep == 0 else \
                f"the run keeps the genes of its newest {keep} generations (run.gene_history)" if keep else \
                "its generation is not in the gene archive"
            raise ValueError(f"individual {individual} of generation {g} is not held: {why}; export the elite "
                             f"or one of generation {self.generation - 1}") from None
        return gene, fitness

    def export(self, individual: int | None = None, out: str | Path | None = None,
               reason: str = "request", emit: bool = True) -> tuple[Path, Path]:
        """Write a learngene (default: the elite) as .safetensors + .json; emits ``learngene_exported``."""
        with self._lock:
            if individual is None or (self.elite and individual == self.elite["id"]):
                if self.elite_gene is None:
                    raise ValueError("no learngene yet: the first generation has not completed")
                gene, fitness, ind = self.elite_gene, self.elite["fitness"], self.elite["id"]
            elif individual in self.last_genes:
                (gene, fitness), ind = self.last_genes[individual], individual
            else:
                gene, ind = None, individual
            rec = dict(self.individuals.get(ind, {}))
            saving = self._saving
        if gene is None:  # an older generation's: from the gene archive
            gene, fitness = self._archived(individual, rec, saving)
        if not all_finite(gene.tensors):
            raise ValueError(f"learngene of individual {ind} holds NaN or infinite weights: not exported")
        default = self.run_dir / LEARNGENES_DIR / (f"best-g{rec.get('generation', 0):04d}-i{ind}"
                                                    if individual is None else f"ind{ind}-g{rec.get('generation', 0):04d}")
        manifest = export_manifest(self.cfg, self.run_dir.name, ind, rec.get("generation"), fitness,
                                   self.lineage(ind))
        weights, meta = save_learngene(gene, Path(out) if out else default, manifest)
        if emit:
            self.writer.emit(ev.LearngeneExported(path=str(weights), individual=ind, fitness=fitness,
                                                  fraction=round(gene.fraction, 5), reason=reason))
        return weights, meta

