"""``PopulationTrainer``: a whole generation trained at once, in chunks that fit the device.

Each individual is born, gets its task, batches and augmentations exactly as in :func:`engine.evolution.lifetime.live`;
the chunk then trains as one :class:`PopulationNet` and each individual's weights come back as its own state dict.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

from engine.data.tasks import Task
from engine.evolution.individual import Genome, LifeResult
from engine.evolution.lifetime import LifeContext, born, combine, cpu_state, critic_score
from engine.learngene import extract, gene_masks
from engine.models import GeneNet
from engine.seeding import torch_generator
from engine.trainers.base import OnDone, OnStart
from engine.trainers.population.batches import population_data
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

    # ----------------------------------------------------------------------------------------- protocol
    def train_generation(self, genomes: list[Genome], *, on_start: OnStart, on_done: OnDone,
                         safe_point: Callable[[], None]) -> list[LifeResult]:
        results: dict[int, LifeResult] = {}
        started: set[int] = set()
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
        return [results[gm.id] for gm in genomes]

    def close(self) -> None:
        self._steps.clear()

    def _shrink(self, failed: int) -> None:
        """Halve the chunk after ``failed`` networks did not fit (the chunk is retried from birth)."""
        self.chunk = max(1, failed // 2)
        log.warning("population chunk of %d networks did not fit in memory; trying %d", failed, self.chunk)
        self._steps.clear()
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
            step = PopulationStep(net, self.precision, compile=self.compile)
            self._steps[key] = step
        else:
            step.net.load(models)
        return step

    def _births(self, chunk: list[Genome]) -> tuple[list[GeneNet], list[Task]]:
        """Every individual's network at birth and its task, built on the host by a few threads (each from its
        own generators, so the result does not depend on the threads)."""
        ctx = self.ctx

        def one(gm: Genome) -> tuple[GeneNet, Task]:
            return born(ctx, gm), ctx.task_for(gm)

        workers = min(len(chunk), os.cpu_count() or 1, MAX_BIRTH_THREADS)
        if workers <= 1:
            pairs = [one(gm) for gm in chunk]
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="gtl-birth") as pool:
                pairs = list(pool.map(one, chunk))
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
        gens = [torch_generator(cfg.run.seed, "lifetime", gm.id) for gm in chunk]
        data = population_data(tasks, gens, steps=lt.steps, batch_size=lt.batch_size, augment=cfg.data.augment,
                               mean=ctx.dataset.mean, std=ctx.dataset.std, device=ctx.device)
        step = self._step_for(models, data.batch)
        factors = None
        if lt.gene_lr_scale != 1.0 and any(gm.gene is not None for gm in chunk):
            masks = [gene_masks(m, gm.channels) if gm.gene is not None else {} for m, gm in zip(models, chunk, strict=True)]
            factors = step.net.grouped([{n: 1.0 - (1.0 - lt.gene_lr_scale) * mk.float() for n, mk in m.items()}
                                        for m in masks])
        opt = make_optimizer(step.net, lr=lt.lr, momentum=lt.momentum, weight_decay=lt.weight_decay)
        loss = train_population(step, data, opt, grad_factors=factors, safe_point=safe_point)
        correct = population_correct(step.net, data, self.precision)
        # the only host reads of the chunk: after its last step
        losses, correct_l, held = loss.tolist(), correct.tolist(), data.heldout_n.tolist()
        states = step.net.states()
        seconds = (time.perf_counter() - t0) / len(chunk)
        out = []
        for i, gm in enumerate(chunk):
            life_fit = correct_l[i] / max(held[i], 1)
            critic_fit = None
            if cfg.fitness.kind != "lifetime":  # critics train one by one (the sequential path)
                models[i].load_state_dict(states[i])
                critic_fit = critic_score(ctx, gm, extract(models[i], gm.channels), safe_point)
            out.append(LifeResult(
                id=gm.id, fitness=combine(cfg, life_fit, critic_fit), lifetime_fitness=life_fit,
                critic_fitness=critic_fit, seconds=seconds, train_loss=losses[i], images=lt.steps * data.batch,
                state=births[i] if births is not None else states[i]))
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
