"""Few-shot evaluation of a learngene against baselines on the very same meta-test episodes.

Every method starts each episode from a network built for it (``learngene``: a descendant of the learngene;
``scratch``: random init; ``pretrained``: the network trained on all meta-train classes; ``pretrained_random20``:
a random circuit of that network with the learngene's channel counts, inherited by the same rule;
``pretrained_top20``: the same but its most important channels (largest |BatchNorm gamma|, ``engine.fewshot.circuits``);
``gen0``: a descendant of the generation-0 learngene). It is then scored on the episode's queries after 0 steps (nearest class
mean of the support set's penultimate features) and after each fine-tuning budget in ``steps``.

Fine-tuning protocol (``FinetuneSettings``): the head starts as the nearest-class-mean classifier (so step 0 of
fine-tuning equals the zero-step score), Adam on the support set (augmented), the body at ``body_lr_scale`` times
the head's learning rate, BatchNorm frozen (eval mode) or not. ``FinetuneSettings.protocol("plain")`` is the
protocol most papers use: a random head, the whole network at Adam lr 1e-3, BatchNorm in training mode.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F

from engine.data import ImageDataset, Task, augment, make_episode, normalize, sample_classes
from engine.fewshot.methods import METHODS  # noqa: F401 (re-exported: the names live torch-free)
from engine.fewshot.optim import finetune_optimizer
from engine.learngene import Learngene, extract, inherit
from engine.learngene.descendants import build_descendant
from engine.learngene.transfer import NongeneInit
from engine.models import GeneNet, create_model
from engine.seeding import torch_generator


@dataclass
class FinetuneSettings:
    """The fine-tuning protocol of an episode."""

    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-3
    body_lr_scale: float = 0.1  # 0 trains the head only (a linear probe on frozen features)
    head_init: Literal["prototype", "random"] = "prototype"
    bn: Literal["frozen", "train"] = "frozen"
    augment: bool = True
    weight_decay: float = 0.0
    name: str = "default"  # the protocol these settings started from (recorded in the results)

    @classmethod
    def protocol(cls, name: str, **overrides) -> FinetuneSettings:
        """The settings of a named protocol (``PROTOCOLS``), with ``overrides`` (None values ignored)."""
        if name not in PROTOCOLS:
            raise ValueError(f"unknown fine-tuning protocol {name!r}; choose one of {', '.join(PROTOCOLS)}")
        return cls(**(PROTOCOLS[name] | {k: v for k, v in overrides.items() if v is not None}), name=name)


#: Named fine-tuning protocols. "default": this project's (prototype head, body at a tenth of the head's rate,
#: BatchNorm frozen); "plain": the usual one of the literature (random head, whole network at Adam 1e-3,
#: BatchNorm in training mode).
PROTOCOLS: dict[str, dict] = {
    "default": {},
    "plain": {"optimizer": "adam", "lr": 1e-3, "body_lr_scale": 1.0, "head_init": "random", "bn": "train"},
}


@dataclass
class EvalSettings:
    """What is measured: episodes, shots, budgets, and the descendant built from the learngene."""

    episodes: int = 100
    ways: int = 5
    shots: list[int] = field(default_factory=lambda: [1, 5])
    queries: int = 15
    steps: list[int] = field(default_factory=lambda: [0, 10, 50])
    split: Literal["test", "val", "train"] = "test"
    seed: int = 0
    metric: Literal["euclidean", "cosine"] = "euclidean"
    arch: str | None = None  # descendant architecture (None: the learngene's)
    width_scale: float = 1.0
    extra_layers: int = 0
    nongene_init: NongeneInit = "random"
    nongene_scale: float = 0.1
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: forward and backward under bf16 autocast (fp32 weights)

    def check(self) -> None:
        if self.episodes < 1 or self.ways < 2 or self.queries < 1:
            raise ValueError("episodes >= 1, ways >= 2 and queries >= 1 are required")
        if not self.shots or min(self.shots) < 1:
            raise ValueError(f"shots must be positive integers (got {self.shots})")
        if not self.steps or min(self.steps) < 0:
            raise ValueError(f"steps must be integers >= 0 (got {self.steps})")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16 (got {self.precision!r})")


#: Builds the network of one method for one episode from the episode's init generator.
Builder = Callable[[torch.Generator], GeneNet]


def mean_ci95(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% confidence interval (1.96 standard errors; 0 for one value)."""
    m = statistics.fmean(values)
    if len(values) < 2:
        return m, 0.0
    return m, 1.96 * statistics.stdev(values) / math.sqrt(len(values))


def make_episodes(dataset: ImageDataset, settings: EvalSettings, shots: int) -> list[Task]:
    """The episodes of ``shots``-shot evaluation: derived from (seed, shots, episode) only, so every method and
    every evaluation with the same settings sees the same support and query images."""
    pool = dataset.splits[settings.split]
    if settings.ways > len(pool):
        raise ValueError(f"{settings.ways}-way episodes need {settings.ways} classes; the {settings.split} split has "
                         f"{len(pool)}")
    out = []
    for e in range(settings.episodes):
        g = torch_generator(settings.seed, "episode", shots, e)
        classes = sample_classes(pool, settings.ways, g)
        out.append(make_episode(dataset, classes, shots=shots, queries=settings.queries, generator=g))
    return out


@torch.no_grad()
def _features(model: GeneNet, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return model.features(x)


def _ncm_logits(support: torch.Tensor, y: torch.Tensor, query: torch.Tensor, ways: int, metric: str) -> torch.Tensor:
    if metric == "cosine":
        support, query = F.normalize(support, dim=1), F.normalize(query, dim=1)
    protos = torch.stack([support[y == c].mean(0) for c in range(ways)])
    return -torch.cdist(query, protos)


def _prototype_head(model: GeneNet, feats: torch.Tensor, y: torch.Tensor, ways: int) -> None:
    """Set the head to the nearest-class-mean classifier: logits = 2 m.f - |m|^2 (= -|f - m|^2 + |f|^2)."""
    protos = torch.stack([feats[y == c].mean(0) for c in range(ways)])
    with torch.no_grad():
        model.head.weight.copy_(2 * protos)
        model.head.bias.copy_(-(protos * protos).sum(1))


def run_episode(model: GeneNet, task: Task, dataset: ImageDataset, settings: EvalSettings,
                generator: torch.Generator) -> dict[int, float]:
    """Query accuracy of ``model`` on ``task`` after each budget in ``settings.steps``."""
    dev = next(model.parameters()).device
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=settings.precision == "bf16"):
        return _run_episode(model, task, dataset, settings, generator)


def _run_episode(model: GeneNet, task: Task, dataset: ImageDataset, settings: EvalSettings,
                 generator: torch.Generator) -> dict[int, float]:
    ft, ways = settings.finetune, task.ways
    dev = next(model.parameters()).device  # the episode's images go where the network is
    xs = normalize(task.train_x.to(dev), dataset.mean, dataset.std)
    xq = normalize(task.heldout_x.to(dev), dataset.mean, dataset.std)
    ys, yq = task.train_y.to(dev), task.heldout_y.to(dev)
    budgets = sorted(set(settings.steps))
    out: dict[int, float] = {}
    if 0 in budgets:
        logits = _ncm_logits(_features(model, xs), ys, _features(model, xq), ways, settings.metric)
        out[0] = float((logits.argmax(1) == yq).float().mean())
    last = budgets[-1]
    if last == 0:
        return out
    model.reset_head(ways, generator)
    if ft.head_init == "prototype":
        _prototype_head(model, _features(model, xs), ys, ways)
    head = list(model.head.parameters())
    body = [p for n, p in model.named_parameters() if not n.startswith("head.")]
    opt = finetune_optimizer(head, body, ft)
    for step in range(1, last + 1):
        model.train()
        if ft.bn == "frozen":
            for m in model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
        x = augment(xs, generator) if ft.augment else xs
        loss = F.cross_entropy(model(x), ys)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step in budgets:
            model.eval()
            with torch.no_grad():
                out[step] = float((model(xq).argmax(1) == yq).float().mean())
    return out


def builders(settings: EvalSettings, *, ways: int, in_channels: int, image_size: int, gene: Learngene | None,
             gen0: Learngene | None = None, pretrained: GeneNet | None = None) -> dict[str, Builder]:
    """The network of every method that the given inputs allow, each fresh per episode."""
    s = settings
    out: dict[str, Builder] = {}

    def descendant_of(g: Learngene) -> Builder:
        return lambda gen: build_descendant(
            g, ways, arch=s.arch, width_scale=s.width_scale, extra_layers=s.extra_layers, image_size=image_size,
            generator=gen, nongene_init=s.nongene_init, nongene_scale=s.nongene_scale).model

    if gene is not None:
        out["learngene"] = descendant_of(gene)
        arch = s.arch or gene.arch
        from engine.learngene.descendants import base_width

        width = base_width(gene) * s.width_scale

        def scratch(gen: torch.Generator) -> GeneNet:
            return create_model(arch, ways, width=width, in_channels=in_channels, image_size=image_size,
                                generator=gen, extra_layers=s.extra_layers)

        out["scratch"] = scratch
    if pretrained is not None:
        def whole(gen: torch.Generator) -> GeneNet:
            import copy

            m = copy.deepcopy(pretrained)
            m.reset_head(ways, gen)
            return m

        out["pretrained"] = whole
        if gene is not None:
            out["pretrained_random20"] = _random_circuit(pretrained, gene, ways, s, in_channels, image_size)
            out["pretrained_top20"] = _random_circuit(pretrained, gene, ways, s, in_channels, image_size,
                                                      chosen=True)
    if gen0 is not None:
        out["gen0"] = descendant_of(gen0)
    return out


def _random_circuit(pretrained: GeneNet, gene: Learngene, ways: int, s: EvalSettings, in_channels: int,
                    image_size: int, *, chosen: bool = False) -> Builder:
    """Random channels of the pretrained network, as many per slot as the learngene has (the same fraction when
    the widths agree), inherited by the same rule into a fresh network of the pretrained architecture.
    ``chosen``: the most important channels instead (``engine.fewshot.circuits.top_channels``), the same every episode."""
    from engine.fewshot.circuits import circuit_counts, top_channels

    spec = pretrained.gene_spec()
    counts = circuit_counts(pretrained, gene)
    fixed = extract(pretrained, top_channels(pretrained, counts)) if chosen else None

    def build(gen: torch.Generator) -> GeneNet:
        circuit = fixed
        if circuit is None:
            chans = [sorted(torch.randperm(w, generator=gen)[:k].tolist()) for w, k in zip(spec.widths, counts,
                                                                                           strict=True)]
            circuit = extract(pretrained, chans)
        width = spec.widths[0] / _unit_first(pretrained.arch, in_channels)
        model = create_model(pretrained.arch, ways, width=width, in_channels=in_channels, image_size=image_size,
                             generator=gen)
        return inherit(model, circuit, nongene_init=s.nongene_init, nongene_scale=s.nongene_scale)

    return build


def _unit_first(arch: str, in_channels: int) -> int:
    from engine.models.registry import unit_widths

    return unit_widths(arch, in_channels)[0]


def evaluate(dataset: ImageDataset, settings: EvalSettings, methods: dict[str, Builder], *,
             progress: Callable[[str, int, int], None] | None = None,
             observer: Callable[[str, int, int, Task], None] | None = None,
             device: torch.device | str = "cpu", batch_episodes: int | None = None) -> dict:
    """Run every method on the same episodes; returns ``{"results": [...], "settings": {...}}``.

    Networks are built on the CPU from the same generators, then fine-tuned on ``device``. ``batch_episodes``:
    episodes of a method fine-tuned together as one population network (``engine.fewshot.batched``, the same
    results); None: as many as fit on CUDA, one at a time elsewhere; 0: as many as fit; 1: one at a time.

    Each result: method, shots, steps, mean, ci95 (accuracies in [0, 1]) and the number of episodes.
    ``observer(method, shots, episode, task)`` sees every episode a method is given (tests use it).
    """
    settings.check()
    from engine.fewshot.batched import EpisodeBatcher, episode_batch

    batch = episode_batch(batch_episodes, device)
    batcher = EpisodeBatcher(dataset, settings, device, batch=batch) if batch != 1 else None
    results = []
    for shots in settings.shots:
        episodes = make_episodes(dataset, settings, shots)
        for name, build in methods.items():
            accs: dict[int, list[float]] = {k: [] for k in sorted(set(settings.steps))}
            if batcher is not None:
                for e, task in enumerate(episodes):
                    if observer is not None:
                        observer(name, shots, e, task)
                done = batcher.run(build, episodes, shots, on_chunk=None if progress is None else (
                    lambda n, total, label=f"{name} {shots}-shot": progress(label, n, total)))
                for out in done:
                    for k, a in out.items():
                        accs[k].append(a)
            for e, task in enumerate(episodes if batcher is None else ()):
                if observer is not None:
                    observer(name, shots, e, task)
                gen = torch_generator(settings.seed, "init", shots, e)  # paired: every method draws the same init
                model = build(gen).to(device)
                for k, a in run_episode(model, task, dataset, settings, gen).items():
                    accs[k].append(a)
                if progress is not None:
                    progress(f"{name} {shots}-shot", e + 1, len(episodes))
            for k, values in accs.items():
                m, ci = mean_ci95(values)
                results.append({"method": name, "shots": shots, "steps": k, "mean": m, "ci95": ci,
                                "episodes": len(values)})
    if batcher is not None:
        batcher.close()
    return {"results": results, "settings": asdict(settings) | {"methods": list(methods)}}
