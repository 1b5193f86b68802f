"""One lifetime: birth (inherit the learngene), brief training on the individual's task, fitness.

Everything random in a lifetime comes from generators derived from (run seed, individual id), so a lifetime
computes the same thing whichever trainer runs it and in whatever order.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.config import Config
from engine.data import ImageDataset
from engine.data.tasks import (
    ClassPartition,
    Task,
    augment,
    batch_indices,
    make_task,
    normalize,
    sample_classes,
)
from engine.evolution.individual import Genome, LifeResult
from engine.learngene import (
    Learngene,
    close_circuit,
    extract,
    gene_feature_mask,
    gene_masks,
    inherit,
    into_gene_masks,
)
from engine.models import GeneNet, create_model
from engine.seeding import torch_generator


@dataclass
class LifeContext:
    """What every lifetime of a run shares."""

    cfg: Config
    dataset: ImageDataset
    partition: ClassPartition
    device: torch.device

    @property
    def in_channels(self) -> int:
        return int(self.dataset.images.shape[1])

    def new_model(self, num_classes: int, generator: torch.Generator) -> GeneNet:
        m = self.cfg.model
        return create_model(m.arch, num_classes, width=m.width, in_channels=self.in_channels,
                            image_size=self.cfg.data.image_size, generator=generator)

    def task_for(self, genome: Genome) -> Task:
        t = self.cfg.task
        g = torch_generator(self.cfg.run.seed, "task-images", genome.id)
        return make_task(self.dataset, self.partition, genome.task, train_per_class=t.train_per_class,
                         heldout_per_class=t.heldout_per_class, generator=g)


def fresh_model(ctx: LifeContext, genome: Genome) -> GeneNet:
    """The genome's network before inheritance: its random init depends on (seed, id) and its task's size only,
    so it can be built before its parent is known (the population trainer prepares it ahead)."""
    return ctx.new_model(len(genome.task), torch_generator(ctx.cfg.run.seed, "init", genome.id))


def born(ctx: LifeContext, genome: Genome, fresh: GeneNet | None = None) -> GeneNet:
    """A fresh network of the ancestry architecture (``fresh`` when built ahead by :func:`fresh_model`),
    carrying the genome's learngene when it has one."""
    model = fresh if fresh is not None else fresh_model(ctx, genome)
    if genome.gene is not None:
        lg = ctx.cfg.learngene
        inherit(model, genome.gene, nongene_init=lg.nongene_init, nongene_scale=lg.nongene_scale)
    elif ctx.cfg.lifetime.closed_gene:  # generation 0: its random circuit starts closed too
        close_circuit(model, genome.channels)
    return model


def lifetime_grad_factors(model: GeneNet, channels: list[list[int]], ctx: LifeContext, *,
                          inherited: bool) -> dict[str, torch.Tensor] | None:
    """Parameter name -> gradient factor of its shape for a lifetime over the gene ``channels``, or None when
    every factor is 1: ``lifetime.gene_lr_scale`` on the weights of an inherited gene, 0 on the weights into the
    gene when ``lifetime.closed_gene`` (with plain or momentum SGD a zero weight with zero gradients stays zero,
    weight decay included)."""
    lt = ctx.cfg.lifetime
    scaled = inherited and lt.gene_lr_scale != 1.0
    if not (scaled or lt.closed_gene):
        return None
    factors: dict[str, torch.Tensor] = {}
    if scaled:
        factors = {n: 1.0 - (1.0 - lt.gene_lr_scale) * m.float() for n, m in gene_masks(model, channels).items()}
    if lt.closed_gene:
        for n, m in into_gene_masks(model, channels).items():
            factors[n] = factors.get(n, torch.ones(m.shape, device=m.device)).masked_fill(m, 0.0)
    return factors


def lifetime_schedule(n: int, steps: int, batch_size: int, generator: torch.Generator,
                      device: torch.device) -> tuple[torch.Tensor, torch.Generator]:
    """The batches of a lifetime, (steps, min(batch_size, n)) indices, and its augmentation generator on ``device``.

    Both come from ``generator`` in a fixed order, so every trainer (one by one or a whole population at once)
    draws the same batches and augmentations for the same individual.
    """
    order = batch_indices(n, steps, min(batch_size, n), generator)
    aug_gen = torch.Generator(device=device)  # augmentation draws on the device: no host round trip per step
    aug_gen.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
    return order, aug_gen


#: The training-loss curve of a lifetime (``individual_evaluated.loss_curve``): the mean loss of this many equal
#: stretches of it. Summed on the device, read back once: no per-step synchronisation.
LOSS_CURVE_POINTS = 16


def curve_segments(steps: int, points: int = LOSS_CURVE_POINTS) -> torch.Tensor:
    """The stretch (0..points-1) of each training step, for a curve of at most ``points`` values."""
    n = max(1, min(points, steps))
    return (torch.arange(steps) * n) // max(steps, 1)


def curve_means(sums: torch.Tensor, steps: int) -> list[list[float]]:
    """Per-stretch means of ``sums`` (stretches x individuals) as lists, one per individual."""
    seg = curve_segments(steps)
    counts = torch.bincount(seg, minlength=sums.shape[0]).clamp(min=1).to(sums.device, sums.dtype)
    return (sums / counts[:, None]).T.tolist()


def train_on_task(
    model: GeneNet,
    task: Task,
    ctx: LifeContext,
    *,
    steps: int,
    generator: torch.Generator,
    gene_channels: list[list[int]] | None = None,
    inherited: bool = True,
    safe_point: Callable[[], None] | None = None,
    curve: list[float] | None = None,
) -> float:
    """Train ``model`` on ``task`` for ``steps`` SGD steps; returns the mean loss of the last 10 steps. ``curve``,
    when given, receives the mean loss of each of :data:`LOSS_CURVE_POINTS` stretches of the lifetime.

    With ``gene_channels``, gradients follow :func:`lifetime_grad_factors`: with ``lifetime.gene_lr_scale`` != 1
    the gene weights of an ``inherited`` gene are scaled, so the inherited circuit is refined more slowly than
    the rest (0 freezes it); with ``lifetime.closed_gene`` nothing flows into the gene from outside it; with
    ``lifetime.gene_loss_weight`` > 0 the loss adds that weight times the loss of the head on the gene's features
    alone (:func:`gene_loss`).
    """
    lt, dev = ctx.cfg.lifetime, ctx.device
    model.to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=lt.lr, momentum=lt.momentum, weight_decay=lt.weight_decay)
    scale_masks = None
    factors = lifetime_grad_factors(model, gene_channels, ctx, inherited=inherited) if gene_channels else None
    if factors is not None:
        params = dict(model.named_parameters())
        scale_masks = [(params[n], f.to(dev, torch.float32)) for n, f in factors.items() if n in params]
    gene_mask = (gene_feature_mask(model, gene_channels).to(dev)
                 if gene_channels and lt.gene_loss_weight > 0 else None)
    x_all, y_all = task.train_x.to(dev), task.train_y.to(dev)
    order, aug_gen = lifetime_schedule(len(x_all), steps, lt.batch_size, generator, dev)
    mean, std = ctx.dataset.mean, ctx.dataset.std
    losses: list[float] = []
    segments = curve_segments(steps) if curve is not None else None
    sums = torch.zeros(int(segments.max()) + 1 if steps else 0, 1, device=dev) if segments is not None else None
    for step in range(steps):
        if safe_point is not None:
            safe_point()
        idx = order[step].to(dev)
        x = normalize(x_all[idx], mean, std)
        if ctx.cfg.data.augment:
            x = augment(x, aug_gen)
        if gene_mask is None:
            loss = F.cross_entropy(model(x), y_all[idx])
        else:
            loss = gene_loss(model.head, model.features(x), gene_mask, y_all[idx], lt.gene_loss_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if scale_masks is not None:
            for p, factor in scale_masks:
                if p.grad is not None:
                    p.grad.mul_(factor)
        opt.step()
        if sums is not None:
            sums[int(segments[step]), 0] += loss.detach()
        if step >= steps - 10:
            losses.append(float(loss.detach()))
    if sums is not None and steps:
        curve.extend(curve_means(sums, steps)[0])
    return sum(losses) / max(len(losses), 1)


def gene_loss(head: torch.nn.Module, features: torch.Tensor, gene_mask: torch.Tensor, y: torch.Tensor,
              weight: float, reduction: str = "mean") -> torch.Tensor:
    """The lifetime loss with ``lifetime.gene_loss_weight``: cross-entropy of the head on all features plus
    ``weight`` x its cross-entropy on the gene's features alone (``features * gene_mask``)."""
    return (F.cross_entropy(head(features), y, reduction=reduction)
            + weight * F.cross_entropy(head(features * gene_mask), y, reduction=reduction))


@torch.inference_mode()
def accuracy(model: GeneNet, x: torch.Tensor, y: torch.Tensor, ctx: LifeContext, batch: int = 512) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        xb = normalize(x[i:i + batch].to(ctx.device), ctx.dataset.mean, ctx.dataset.std)
        correct += int((model(xb).argmax(1) == y[i:i + batch].to(ctx.device)).sum())
    return correct / max(len(x), 1)


def critic_score(ctx: LifeContext, genome: Genome, gene: Learngene, safe_point: Callable[[], None] | None) -> float:
    """Transfer fitness: fresh networks inherit ``gene`` and learn other meta-train classes briefly."""
    cfg = ctx.cfg
    pool = [c for c in ctx.dataset.splits["train"] if c not in set(genome.task)]
    scores = []
    for k in range(cfg.fitness.critics):
        g = torch_generator(cfg.run.seed, "critic", genome.id, k)
        classes = sample_classes(pool, cfg.task.ways, g)
        shots = cfg.fitness.critic_shots or cfg.task.train_per_class  # k-shot critics: few-shot fitness
        task = make_task(ctx.dataset, ctx.partition, classes, train_per_class=shots,
                         heldout_per_class=cfg.task.heldout_per_class, generator=g)
        critic = ctx.new_model(len(classes), g)
        inherit(critic, gene, nongene_init=cfg.learngene.nongene_init, nongene_scale=cfg.learngene.nongene_scale)
        train_on_task(critic, task, ctx, steps=cfg.fitness.critic_steps, generator=g,
                      gene_channels=gene.channels, safe_point=safe_point)
        scores.append(accuracy(critic, task.heldout_x, task.heldout_y, ctx))
    return sum(scores) / len(scores)


def life_genomes(ctx: LifeContext, genome: Genome) -> list[Genome]:
    """The ``task.per_individual`` lifetimes of an individual: itself, then, for k = 1 .. K-1, the same inherited
    gene on a task of its own. Lifetime k's draws (task, init, images, batches) come from the key (id, k), so the
    streams of the individual's own lifetime are those of a run with one task per individual."""
    out = [genome]
    for k in range(1, ctx.cfg.task.per_individual):
        key = (genome.id, k)
        task = sample_classes(ctx.dataset.splits["train"], ctx.cfg.task.ways,
                              torch_generator(ctx.cfg.run.seed, "task", key))
        out.append(dataclasses.replace(genome, id=key, task=task, life=k))
    return out


def merge_lives(cfg: Config, genome: Genome, results: list[LifeResult]) -> LifeResult:
    """One individual's result from its K lifetimes: fitness from the mean held-out accuracy (and the critic
    score of its first lifetime's gene), the first lifetime's weights to inherit from."""
    first = results[0]
    life_fit = statistics.fmean(r.lifetime_fitness for r in results)
    return LifeResult(id=genome.id, fitness=combine(cfg, life_fit, first.critic_fitness), lifetime_fitness=life_fit,
                      critic_fitness=first.critic_fitness, seconds=sum(r.seconds for r in results),
                      train_loss=statistics.fmean(r.train_loss for r in results),
                      images=sum(r.images for r in results), state=first.state, loss_curve=first.loss_curve)


def train_lives(train: Callable[..., list[LifeResult]], ctx: LifeContext, genomes: list[Genome], *,
                on_start: Callable[[Genome], None], on_done: Callable[[Genome, LifeResult], None],
                safe_point: Callable[[], None]) -> list[LifeResult]:
    """Run ``train`` (a trainer's ``train_generation``) on every lifetime of every genome as if each were an
    individual, and report and return one merged result per genome (``task.per_individual`` > 1)."""
    lives = {gm.id: life_genomes(ctx, gm) for gm in genomes}
    owner = {life.id: gm for gm in genomes for life in lives[gm.id]}
    done: dict[int, dict[object, LifeResult]] = {}
    merged: dict[int, LifeResult] = {}

    def start(life: Genome) -> None:
        if life.life == 0:
            on_start(owner[life.id])

    def finish(life: Genome, result: LifeResult) -> None:
        gm = owner[life.id]
        got = done.setdefault(gm.id, {})
        got[life.id] = result
        if len(got) == len(lives[gm.id]):
            merged[gm.id] = merge_lives(ctx.cfg, gm, [got[x.id] for x in lives[gm.id]])
            on_done(gm, merged[gm.id])

    train([life for gm in genomes for life in lives[gm.id]], on_start=start, on_done=finish, safe_point=safe_point)
    return [merged[gm.id] for gm in genomes]


def live(ctx: LifeContext, genome: Genome, safe_point: Callable[[], None] | None = None) -> LifeResult:
    """Birth, lifetime training and fitness of one individual (its ``task.per_individual`` lifetimes)."""
    if ctx.cfg.task.per_individual > 1 and genome.life == 0:
        lives = life_genomes(ctx, genome)
        return merge_lives(ctx.cfg, genome, [_one_life(ctx, life, safe_point) for life in lives])
    return _one_life(ctx, genome, safe_point)


def _one_life(ctx: LifeContext, genome: Genome, safe_point: Callable[[], None] | None) -> LifeResult:
    cfg = ctx.cfg
    t0 = time.perf_counter()
    model = born(ctx, genome)
    birth_state = None if cfg.evolution.lamarckian else cpu_state(model)
    task = ctx.task_for(genome)
    g = torch_generator(cfg.run.seed, "lifetime", genome.id)
    curve: list[float] = []
    loss = train_on_task(model, task, ctx, steps=cfg.lifetime.steps, generator=g,
                         gene_channels=genome.channels, inherited=genome.gene is not None,
                         safe_point=safe_point, curve=curve)
    life_fit = accuracy(model, task.heldout_x, task.heldout_y, ctx)
    critic_fit = None
    if cfg.fitness.kind != "lifetime" and genome.life == 0:  # critics score the gene once, not per lifetime
        critic_fit = critic_score(ctx, genome, extract(model.cpu(), genome.channels), safe_point)
    fitness = combine(cfg, life_fit, critic_fit)
    images = cfg.lifetime.steps * min(cfg.lifetime.batch_size, len(task.train_x))
    return LifeResult(id=genome.id, fitness=fitness, lifetime_fitness=life_fit, critic_fitness=critic_fit,
                      seconds=time.perf_counter() - t0, train_loss=loss, images=images,
                      state=birth_state if birth_state is not None else cpu_state(model),
                      loss_curve=[round(x, 5) for x in curve] or None)


def combine(cfg: Config, life_fit: float, critic_fit: float | None) -> float:
    """An individual's fitness from its lifetime fitness and its critic score (``fitness.kind``)."""
    if critic_fit is None:
        return life_fit
    if cfg.fitness.kind == "critic":
        return critic_fit
    w = cfg.fitness.critic_weight
    return (1 - w) * life_fit + w * critic_fit


def cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``model``'s state on the CPU (a birth or end-of-life state kept beyond the lifetime)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
