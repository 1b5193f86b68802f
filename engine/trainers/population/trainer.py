"""``PopulationTrainer``: a whole generation trained at once, in chunks that fit the device.

Each individual is born, gets its task, batches and augmentations exactly as in :func:`engine.evolution.lifetime.live`;
the chunk then trains as one :class:`PopulationNet` and each individual's weights come back as its own state dict.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

from engine.data.tasks import Task
from engine.evolution.individual import Genome, LifeResult
from engine.evolution.lifetime import (
    LifeContext,
    born,
    combine,
    cpu_state,
    critic_score,
    curve_means,
    curve_segments,
    fresh_model,
    lifetime_grad_factors,
    train_lives,
)
from engine.learngene import extract, gene_feature_mask
from engine.models import GeneNet
from engine.seeding import torch_generator
from engine.timing import DeviceTimer
from engine.trainers.base import OnDone, OnStart
from engine.trainers.population.batches import PopulationData, population_data
from engine.trainers.population.network import PopulationNet
from engine.trainers.population.train import (
    PopulationStep,
    Precision,
    make_optimizer,
    population_correct,
    train_population,
)

log = logging.getLogger(__name__)

#: Share of the free device memory an automatically sized chunk may plan to use.
MEMORY_SHARE = 0.6
#: Most host threads that build the networks and tasks of a chunk (births are CPU work before the GPU starts).
MAX_BIRTH_THREADS = 8


class PopulationTrainer:
    """Trains a generation as one fused network per chunk (bf16, channels_last, optionally compiled on CUDA)."""

    name = "population"

    def __init__(self, ctx: LifeContext, *, precision: Precision | None = None, compile: bool | None = None) -> None:
        """``precision`` and ``compile`` default to the device's (bf16 + channels_last on CUDA) and to
        ``run.compile`` on CUDA; tests pass them to run the CUDA code path on the CPU."""
        self.ctx = ctx
        self.precision = precision or Precision.for_device(ctx.device)
        self.compile = (bool(ctx.cfg.run.compile) and ctx.device.type == "cuda") if compile is None else compile
        limit = ctx.cfg.run.max_population_chunk
        self.chunk: int | None = limit or None  # None: sized from free memory at the first generation
        self._steps: dict[tuple[int, int], PopulationStep] = {}  # (population, batch) -> net and its step
        # What ``prepare`` built ahead for individuals not yet born: id -> (task classes, fresh network, task), and
        # (ids of a chunk) -> its data on the device. Used only when they match what training asks for.
        self._prepared: dict[int, tuple[list[int], GeneNet, Task]] = {}
        self._prepared_data: dict[tuple[int, ...], tuple[list[list[int]], PopulationData]] = {}
        self._prep_lock = threading.Lock()
        self._side = torch.cuda.Stream(ctx.device) if ctx.device.type == "cuda" else None
        self.timer = DeviceTimer(ctx.device)
        self.last_train_seconds: float | None = None
        self.on_training_start: Callable[[], None] | None = None
        """Called once per generation when its first chunk starts training (the loop starts preparing the next
        generation then, so that work does not compete with this generation's births)."""
        self._training_started = False
        """Seconds of training and scoring in the last ``train_generation`` (CUDA events on CUDA)."""

    # ----------------------------------------------------------------------------------------- protocol
    def train_generation(self, genomes: list[Genome], *, on_start: OnStart, on_done: OnDone,
                         safe_point: Callable[[], None]) -> list[LifeResult]:
        if self.ctx.cfg.task.per_individual > 1 and all(gm.life == 0 for gm in genomes):
            # K lifetimes per individual: every lifetime trains as a member of the population, then they merge
            return train_lives(self.train_generation, self.ctx, genomes, on_start=on_start, on_done=on_done,
                               safe_point=safe_point)
        results: dict[int, LifeResult] = {}
        started: set[int] = set()
        self.timer.reset()
        self._training_started = False
        for group in self._batch_groups(genomes):
            pending = group
            while pending:
                safe_point()
                size = self._chunk_size(len(genomes), pending[0])
                chunk = pending[:_balanced(len(pending), size)]
                out = None
                try:
                    out = self._train_chunk(chunk, on_start, started, safe_point)
                except torch.OutOfMemoryError:
                    if len(chunk) == 1:
                        raise
                if out is None:  # out of memory: free it outside the except block (its traceback holds tensors)
                    self._shrink(len(chunk))
                    continue
                for gm, r in zip(chunk, out, strict=True):
                    on_done(gm, r)
                    results[gm.id] = r
                pending = pending[len(chunk):]
        self.last_train_seconds = self.timer.seconds()
        with self._prep_lock:  # whatever was prepared and not used (a changed chunk size) is dropped
            ids = {gm.id for gm in genomes}
            for gid in [k for k in self._prepared if k in ids]:
                del self._prepared[gid]
            for key in [k for k in self._prepared_data if ids & set(k)]:
                del self._prepared_data[key]
        return [results[gm.id] for gm in genomes]

    def close(self) -> None:
        self._steps.clear()
        with self._prep_lock:
            self._prepared.clear()
            self._prepared_data.clear()

    # ----------------------------------------------------------------------------------------- prefetch
    def prepare(self, upcoming: list[tuple[int, list[int]]]) -> None:
        """Build ahead, for individuals (id, task classes) of the next generation, everything that does not depend
        on their parents: the fresh network (its random init), the task's images, and, once the chunk size is
        known, each chunk's data on the device (batch schedules and augmentation draws). Called from a background
        thread while the current generation trains; each piece comes from the same (seed, purpose, id) generators
        as at birth, so using it changes nothing but the time. On CUDA the data goes up on a side stream and the
        fresh networks are pinned, so their copies into the fused network do not block."""
        ctx = self.ctx
        cuda = ctx.device.type == "cuda"

        def one(spec: tuple[int, list[int]]) -> tuple[int, tuple[list[int], GeneNet, Task]]:
            gid, task = spec
            probe = Genome(id=gid, generation=-1, parent=None, task=list(task), channels=[])
            model = fresh_model(ctx, probe)
            if cuda:  # page-locked: its copy into the fused network does not block the host
                for t in list(model.parameters()) + list(model.buffers()):
                    t.data = t.data.pin_memory()
            return gid, (list(task), model, ctx.task_for(probe))

        built = dict(self._map(one, upcoming))
        with self._prep_lock:
            self._prepared.update(built)
        if self.chunk is None:  # chunk size not known before the first generation has been sized
            return
        probes = [Genome(id=gid, generation=-1, parent=None, task=list(task), channels=[]) for gid, task in upcoming]
        for group in self._batch_groups(probes):
            pending = group
            while pending:
                chunk = pending[:_balanced(len(pending), max(1, self.chunk))]
                pending = pending[len(chunk):]
                data = self._chunk_data(chunk, [built[gm.id][2] for gm in chunk])
                with self._prep_lock:
                    self._prepared_data[tuple(gm.id for gm in chunk)] = ([gm.task for gm in chunk], data)

    def _chunk_data(self, chunk: list[Genome], tasks: list[Task]) -> PopulationData:
        """The chunk's data on the device (on the side stream on CUDA, ready when ``_take_data`` hands it out)."""
        ctx, cfg = self.ctx, self.ctx.cfg
        lt = cfg.lifetime
        gens = [torch_generator(cfg.run.seed, "lifetime", gm.id) for gm in chunk]

        def make() -> PopulationData:
            return population_data(tasks, gens, steps=lt.steps, batch_size=lt.batch_size, augment=cfg.data.augment,
                                   mean=ctx.dataset.mean, std=ctx.dataset.std, device=ctx.device)

        if self._side is None:
            return make()
        with torch.cuda.stream(self._side):
            data = make()
        return data

    def _take_data(self, chunk: list[Genome]) -> PopulationData | None:
        """The prepared data of exactly this chunk (same ids, same tasks), made safe to use on this stream."""
        with self._prep_lock:
            entry = self._prepared_data.pop(tuple(gm.id for gm in chunk), None)
        if entry is None or entry[0] != [gm.task for gm in chunk]:
            return None
        data = entry[1]
        if self._side is not None:
            main = torch.cuda.current_stream(self.ctx.device)
            main.wait_stream(self._side)
            for t in vars(data).values():
                if isinstance(t, torch.Tensor):
                    t.record_stream(main)  # allocated on the side stream, used and freed on this one
        return data

    def _map(self, fn, items):
        workers = min(len(items), os.cpu_count() or 1, MAX_BIRTH_THREADS)
        if workers <= 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(workers, thread_name_prefix="gtl-birth") as pool:
            return list(pool.map(fn, items))

    def _shrink(self, failed: int) -> None:
        """Halve the chunk after ``failed`` networks did not fit (the chunk is retried from birth)."""
        self.chunk = max(1, failed // 2)
        log.warning("population chunk of %d networks did not fit in memory; trying %d", failed, self.chunk)
        self._steps.clear()
        with self._prep_lock:
            self._prepared_data.clear()
        if self.ctx.device.type == "cuda":
            torch.cuda.empty_cache()

    # ----------------------------------------------------------------------------------------- chunks
    def _batch(self, genome: Genome) -> int:
        """The lifetime batch size of ``genome``: min(batch_size, its training images), known without the task."""
        ctx = self.ctx
        per = ctx.cfg.task.train_per_class
        n = 0
        for c in genome.task:
            have = len(ctx.partition.train[c])
            n += have if per <= 0 or per >= have else per
        return min(ctx.cfg.lifetime.batch_size, n)

    def _batch_groups(self, genomes: list[Genome]) -> list[list[Genome]]:
        """Genomes grouped by batch size (one group unless some tasks have fewer images than a batch)."""
        groups: dict[int, list[Genome]] = {}
        for gm in genomes:
            groups.setdefault(self._batch(gm), []).append(gm)
        return list(groups.values())

    def _chunk_size(self, population: int, probe: Genome) -> int:
        if self.chunk is None:
            self.chunk = population if self.ctx.device.type != "cuda" else self._fit_in_memory(probe)
            log.info("population trainer: chunks of up to %d networks", self.chunk)
        return max(1, self.chunk)

    def _fit_in_memory(self, probe: Genome) -> int:
        """Networks that fit in the device's free memory, from an estimate of one network's footprint."""
        ctx = self.ctx
        model = ctx.new_model(len(probe.task), torch_generator(0, "probe"))
        b = self._batch(probe)
        side = ctx.cfg.data.image_size
        params = sum(p.numel() for p in model.parameters()) * 4 * 4  # weight, grad, momentum, lr factor (fp32)
        acts = _activation_elements(model, b, ctx.in_channels, side) * 8  # bf16 saved outputs, grads, fp32 BN
        n_img = sum(len(ctx.partition.train[c]) + len(ctx.partition.heldout[c]) for c in probe.task)
        data = n_img * ctx.in_channels * side * side
        free, _ = torch.cuda.mem_get_info(ctx.device)
        return max(1, int(MEMORY_SHARE * free // (params + acts + data)))

    def _step_for(self, models: list[GeneNet], batch: int) -> PopulationStep:
        key = (len(models), batch)
        step = self._steps.get(key)
        if step is None:
            net = PopulationNet.from_models(models).to(self.ctx.device)
            step = PopulationStep(net, self.precision, compile=self.compile,
                                  gene_loss_weight=self.ctx.cfg.lifetime.gene_loss_weight)
            self._steps[key] = step
        else:
            step.net.load(models)
        return step

    def _births(self, chunk: list[Genome]) -> tuple[list[GeneNet], list[Task]]:
        """Every individual's network at birth and its task, built on the host by a few threads (each from its
        own generators, so the result does not depend on the threads). A fresh network and task prepared ahead
        (``prepare``) only receive the learngene here: ``born`` is that fresh network plus ``inherit``."""
        ctx = self.ctx
        with self._prep_lock:
            ready = {gm.id: self._prepared.pop(gm.id) for gm in chunk if gm.id in self._prepared}

        def one(gm: Genome) -> tuple[GeneNet, Task]:
            pre = ready.get(gm.id)
            if pre is None or pre[0] != gm.task:
                return born(ctx, gm), ctx.task_for(gm)
            return born(ctx, gm, fresh=pre[1]), pre[2]

        pairs = self._map(one, chunk)
        return [m for m, _ in pairs], [t for _, t in pairs]

    def _train_chunk(self, chunk: list[Genome], on_start: OnStart, started: set[int],
                     safe_point: Callable[[], None]) -> list[LifeResult]:
        ctx, cfg = self.ctx, self.ctx.cfg
        lt = cfg.lifetime
        t0 = time.perf_counter()
        for gm in chunk:
            if gm.id not in started:
                started.add(gm.id)
                on_start(gm)
        models, tasks = self._births(chunk)
        births = None if cfg.evolution.lamarckian else [cpu_state(m) for m in models]
        data = self._take_data(chunk)
        if data is None:
            gens = [torch_generator(cfg.run.seed, "lifetime", gm.id) for gm in chunk]
            data = population_data(tasks, gens, steps=lt.steps, batch_size=lt.batch_size, augment=cfg.data.augment,
                                   mean=ctx.dataset.mean, std=ctx.dataset.std, device=ctx.device)
        step = self._step_for(models, data.batch)
        factors = None
        per_model = [lifetime_grad_factors(m, gm.channels, ctx, inherited=gm.gene is not None)
                     for m, gm in zip(models, chunk, strict=True)]
        if any(f is not None for f in per_model):
            factors = step.net.grouped([f or {} for f in per_model])
        gene_mask = None
        if lt.gene_loss_weight > 0:
            gene_mask = torch.cat([gene_feature_mask(m, gm.channels) for m, gm in zip(models, chunk, strict=True)])
            gene_mask = gene_mask.to(data.train_x.device)
        opt = make_optimizer(step.net, lr=lt.lr, momentum=lt.momentum, weight_decay=lt.weight_decay)
        if not self._training_started:
            self._training_started = True
            if self.on_training_start is not None:
                self.on_training_start()
        segments = int(curve_segments(lt.steps).max()) + 1 if lt.steps else 0
        curve = torch.zeros(segments, len(chunk), device=data.train_x.device)
        with self.timer.section():
            loss = train_population(step, data, opt, grad_factors=factors, gene_mask=gene_mask,
                                    safe_point=safe_point, curve=curve)
            correct = population_correct(step.net, data, self.precision)
        # the only host reads of the chunk: after its last step
        losses, correct_l, held = loss.tolist(), correct.tolist(), data.heldout_n.tolist()
        curves = curve_means(curve, lt.steps) if lt.steps else [None] * len(chunk)
        states = step.net.states()
        seconds = (time.perf_counter() - t0) / len(chunk)
        out = []
        for i, gm in enumerate(chunk):
            life_fit = correct_l[i] / max(held[i], 1)
            critic_fit = None
            if cfg.fitness.kind != "lifetime" and gm.life == 0:  # critics train one by one (the sequential path)
                models[i].load_state_dict(states[i])
                critic_fit = critic_score(ctx, gm, extract(models[i], gm.channels), safe_point)
            out.append(LifeResult(
                id=gm.id, fitness=combine(cfg, life_fit, critic_fit), lifetime_fitness=life_fit,
                critic_fitness=critic_fit, seconds=seconds, train_loss=losses[i], images=lt.steps * data.batch,
                state=births[i] if births is not None else states[i],
                loss_curve=[round(x, 5) for x in curves[i]] if curves[i] else None))
        return out


def _balanced(pending: int, limit: int) -> int:
    """Size of the next chunk: ``pending`` split into equal chunks of at most ``limit`` (fewer distinct shapes)."""
    n_chunks = math.ceil(pending / limit)
    return math.ceil(pending / n_chunks)


def _activation_elements(model: GeneNet, batch: int, channels: int, side: int) -> int:
    """Elements of every leaf module's output for one forward pass (on the meta device: nothing is computed)."""
    meta = copy.deepcopy(model).to("meta")
    total = 0

    def hook(_mod: torch.nn.Module, _inp: object, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel()

    handles = [m.register_forward_hook(hook) for m in meta.modules() if next(m.children(), None) is None]
    try:
        meta(torch.empty(batch, channels, side, side, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return total
