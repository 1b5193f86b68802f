"""Few-shot episodes fine-tuned together: a chunk of episodes of one method as one population network.

:func:`engine.fewshot.evaluate.run_episode` fine-tunes one network on one episode; on a GPU a small network on 5-25
support images leaves the device mostly idle (~3 ms per VGG11 step, whatever the batch). Here a chunk of P
episodes becomes one :class:`~engine.trainers.population.PopulationNet` (grouped convolutions, per-member BatchNorm and
heads): member k is episode k's network, fed episode k's support and query images, so every member computes what
its network computes alone, in one kernel per layer.

Same semantics as one at a time, member by member:

- each network is built from the episode's own init generator (``torch_generator(seed, "init", shots, e)``), its
  head reset from it, and its augmentations drawn from it step by step (:func:`augment_draws` reproduces
  :func:`engine.data.augment`'s draws), all before the first step;
- the loss is the sum over members of each one's mean cross-entropy, so member k's gradient is its own; Adam and
  SGD (momentum, weight decay) act element by element, so one optimizer over the fused parameters, with the
  head and body groups of the one-at-a-time optimizer, is P independent optimizers;
- BatchNorm statistics are per channel, so per member, in training and frozen mode alike.

Floating point: grouped and plain convolutions round differently (~1e-7 in fp32), so after many steps a rare
query prediction on a near tie may differ; ``tests/engine/test_fewshot_batched.py`` checks equal accuracies.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.data import ImageDataset, Task
from engine.fewshot.optim import finetune_optimizer
from engine.models import GeneNet
from engine.seeding import torch_generator
from engine.trainers.population.batches import augment_draws, crop_flip, grouped_layout, normalization
from engine.trainers.population.network import PopulationNet

log = logging.getLogger(__name__)

#: Share of the free device memory a chunk may plan to use (the estimate is rough: keep a margin).
MEMORY_SHARE = 0.5
#: Host threads building a chunk's networks (each from its own generator: the result does not depend on them).
MAX_BUILD_THREADS = 8
#: At most this many episodes per chunk on CUDA: 200 episodes run as two chunks, so the host builds the second
#: chunk's networks while the first trains (a chunk of 100 VGG11s of 25 images is ~2,500 images per step).
MAX_CHUNK = 100
#: Episodes per chunk on the CPU when asked to size it (``batch_episodes=0``): no memory probe there.
CPU_CHUNK = 32

Builder = Callable[[torch.Generator], GeneNet]


def episode_batch(batch_episodes: int | None, device: torch.device | str) -> int:
    """Episodes fine-tuned together: ``batch_episodes`` when given (1: one at a time); by default all that fit
    on CUDA (0 here means "size it from memory") and one at a time elsewhere."""
    if batch_episodes is not None:
        if batch_episodes < 0:
            raise ValueError(f"batch_episodes must be >= 0 (got {batch_episodes})")
        return batch_episodes
    return 0 if torch.device(device).type == "cuda" else 1


@dataclass
class _Chunk:
    """What the host prepares for P episodes: networks (heads reset) and every random draw of fine-tuning."""

    models: list[GeneNet]
    offsets: Tensor | None  # (steps, 2, P, N) crop offsets
    flips: Tensor | None  # (steps, P, N)


class EpisodeBatcher:
    """Fine-tunes the episodes of one (method, shots) setting in chunks; reuses one fused network per shape."""

    def __init__(self, dataset: ImageDataset, settings, device: torch.device | str, *, batch: int = 0) -> None:
        self.dataset, self.settings, self.device = dataset, settings, torch.device(device)
        self.auto = batch == 0  # sized from free memory for every (method, shots): their networks differ
        self.batch = batch
        self._nets: dict[tuple, PopulationNet] = {}
        cuda = self.device.type == "cuda"
        self._workers = min(os.cpu_count() or 1, MAX_BUILD_THREADS) if cuda else 1
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="gtl-episode")
        self._ahead = ThreadPoolExecutor(1, thread_name_prefix="gtl-episode-ahead")  # the next chunk's births

    def close(self) -> None:
        self._ahead.shutdown(wait=True, cancel_futures=True)
        self._pool.shutdown(wait=True)
        self._nets.clear()

    def __enter__(self) -> EpisodeBatcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------------ host side
    def _prepare(self, build: Builder, tasks: Sequence[Task], shots: int, first: int) -> _Chunk:
        s, ft = self.settings, self.settings.finetune
        last = max(s.steps)

        def one(i: int) -> tuple[GeneNet, Tensor | None, Tensor | None]:
            gen = torch_generator(s.seed, "init", shots, first + i)  # the generator run_episode gets
            model = build(gen)
            if last == 0:
                return model, None, None
            model.reset_head(tasks[i].ways, gen)  # run_episode's order: head, then one augment per step
            if not ft.augment:
                return model, None, None
            off, flip = augment_draws(gen, last, len(tasks[i].train_x), int(tasks[i].train_x.shape[-2]))
            return model, off, flip

        if self._workers > 1 and len(tasks) > 1:
            parts = list(self._pool.map(one, range(len(tasks))))
        else:
            parts = [one(i) for i in range(len(tasks))]
        models = [m for m, _, _ in parts]
        if self.device.type == "cuda":  # page-locked: the copies into the fused network do not block the host
            for m in models:
                for q in [*m.parameters(), *m.buffers()]:
                    q.data = q.data.pin_memory()
        if parts[0][1] is None:
            return _Chunk(models, None, None)
        return _Chunk(models, torch.stack([o for _, o, _ in parts], 2), torch.stack([f for _, _, f in parts], 1))

    # ------------------------------------------------------------------------------------------------ device side
    def _net(self, models: list[GeneNet]) -> PopulationNet:
        m = models[0]
        key = (type(m).__name__, len(models), tuple((k, tuple(v.shape)) for k, v in m.state_dict().items()))
        net = self._nets.get(key)
        if net is None:
            # built on the device from a template there and filled member by member: never P copies on the host
            net = PopulationNet(copy.deepcopy(m).to(self.device), len(models), models)
            self._nets.clear()  # one shape at a time: a method's chunks share it, the next method frees it
            self._nets[key] = net
        else:
            net.load(models)
        return net

    def _size(self, build: Builder, task: Task, shots: int) -> int:
        """Episodes per chunk that fit in free device memory (a rough estimate, with a margin)."""
        if self.device.type != "cuda":
            return CPU_CHUNK
        from engine.trainers.population.trainer import _activation_elements

        model = build(torch_generator(0, "probe", shots))
        params = sum(p.numel() for p in model.parameters()) * 4 * 5  # weight, grad, 2 Adam moments, a copy (fp32)
        n, side = len(task.train_x), int(task.train_x.shape[-1])
        acts = _activation_elements(model, max(n, len(task.heldout_x)), int(task.train_x.shape[1]), side) * 4 * 3
        data = (n + len(task.heldout_x)) * int(task.train_x[0].numel()) * 4
        free, _ = torch.cuda.mem_get_info(self.device)
        return max(1, min(MAX_CHUNK, int(MEMORY_SHARE * free // (params + acts + data))))

    def run(self, build: Builder, tasks: Sequence[Task], shots: int, *,
            on_chunk: Callable[[int, int], None] | None = None) -> list[dict[int, float]]:
        """Query accuracy of every episode after each budget, as :func:`engine.fewshot.evaluate.run_episode` gives it.

        ``on_chunk(done, total)`` after each chunk (progress). A chunk that does not fit in device memory is
        retried at half the size, from its networks' births (the same generators, so the same result).
        """
        if not tasks:
            return []
        if self.auto:
            self.batch = self._size(build, tasks[0], shots)
            log.info("few-shot evaluation: %d episodes per chunk", self.batch)
        out: list[dict[int, float]] = []
        start = 0
        pending: Future | None = None
        pending_span = (0, 0)
        while start < len(tasks):
            size = min(self.batch, len(tasks) - start)
            if pending is not None and pending_span == (start, size):
                chunk = pending.result()
            else:
                chunk = self._prepare(build, tasks[start:start + size], shots, start)
            pending = None
            nxt = start + size
            if nxt < len(tasks) and self.device.type == "cuda":  # the next chunk's births while this one trains
                nsize = min(self.batch, len(tasks) - nxt)
                pending = self._ahead.submit(self._prepare, build, tasks[nxt:nxt + nsize], shots, nxt)
                pending_span = (nxt, nsize)
            result = None
            try:
                result = self._finetune(chunk, tasks[start:start + size])
            except torch.OutOfMemoryError:
                if size == 1:
                    raise
            if result is None:  # freed outside the except block (its traceback holds device tensors)
                del chunk
                self._nets.clear()
                self.batch = max(1, size // 2)
                log.warning("few-shot evaluation: %d episodes did not fit in memory; trying %d", size, self.batch)
                if pending is not None:
                    pending.cancel()
                    pending = None
                torch.cuda.empty_cache()
                continue
            out += result
            if on_chunk is not None:
                on_chunk(start + size, len(tasks))
            start += size
        return out

    def _finetune(self, chunk: _Chunk, tasks: Sequence[Task]) -> list[dict[int, float]]:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.settings.precision == "bf16"):
            return self._finetune_chunk(chunk, tasks)

    def _finetune_chunk(self, chunk: _Chunk, tasks: Sequence[Task]) -> list[dict[int, float]]:
        s, ft = self.settings, self.settings.finetune
        dev, p = self.device, len(tasks)
        ways = tasks[0].ways
        if any(t.ways != ways or t.train_x.shape != tasks[0].train_x.shape
               or t.heldout_x.shape != tasks[0].heldout_x.shape for t in tasks):
            raise ValueError("episodes of one chunk must share ways, shots and queries")
        scale, shift = normalization(self.dataset.mean, self.dataset.std, dev)

        def images(xs: list[Tensor]) -> Tensor:  # uint8 (P, N, C, H, W) -> normalised fp32, as normalize() does
            x = torch.stack(xs).to(dev).to(torch.float32)
            return x * scale.view(-1, 1, 1) - shift.view(-1, 1, 1)

        xs, xq = images([t.train_x for t in tasks]), images([t.heldout_x for t in tasks])
        ys = torch.stack([t.train_y for t in tasks]).to(dev)  # (P, N)
        yq = torch.stack([t.heldout_y for t in tasks]).to(dev)  # (P, Q)
        net = self._net(chunk.models)
        fused = net.net
        budgets = sorted(set(s.steps))
        acc: dict[int, Tensor] = {}

        def layout(x: Tensor) -> Tensor:  # (P, B, C, H, W) -> (B, P*C, H, W)
            return grouped_layout(x.permute(0, 1, 3, 4, 2), channels_last=False)

        def features(x: Tensor) -> Tensor:  # (P, B, D)
            f = fused.features(layout(x))
            return f.view(f.shape[0], p, -1).transpose(0, 1)

        fs = None
        if 0 in budgets or ft.head_init == "prototype" and budgets[-1] > 0:
            net.eval()
            with torch.no_grad():
                fs = features(xs)
                if 0 in budgets:
                    logits = _ncm_logits(fs, ys, features(xq), ways, s.metric)  # (P, Q, ways)
                    acc[0] = (logits.argmax(-1) == yq).float().mean(1)
        last = budgets[-1]
        if last > 0:
            head = [fused.head.weight, fused.head.bias]
            if ft.head_init == "prototype":
                protos = _prototypes(fs, ys, ways)  # (P, ways, D)
                with torch.no_grad():
                    fused.head.weight.copy_((2 * protos).reshape(p * ways, -1))
                    fused.head.bias.copy_(-(protos * protos).sum(-1).reshape(-1))
            body = [q for n, q in fused.named_parameters() if not n.startswith("head.")]
            for q in fused.parameters():
                q.requires_grad_(True)  # a cached network may have had a frozen body in an earlier setting
            opt = finetune_optimizer(head, body, ft, fused=dev.type == "cuda")
            offsets = chunk.offsets.to(dev) if chunk.offsets is not None else None
            flips = chunk.flips.to(dev) if chunk.flips is not None else None
            bns = [m for m in fused.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
            ys_flat = ys.t().reshape(-1)  # (N*P,), member-minor like the logits
            for step in range(1, last + 1):
                net.train()
                if ft.bn == "frozen":
                    for m in bns:
                        m.eval()
                if offsets is not None:
                    x = grouped_layout(crop_flip(xs, offsets[step - 1], flips[step - 1]), channels_last=False)
                else:
                    x = layout(xs)
                logits = net(x).float()  # (N, P, ways)
                n = logits.shape[0]
                per = F.cross_entropy(logits.reshape(n * p, ways), ys_flat, reduction="none").view(n, p).mean(0)
                opt.zero_grad(set_to_none=True)
                per.sum().backward()
                opt.step()
                if step in budgets:
                    net.eval()
                    with torch.no_grad():
                        acc[step] = (net(layout(xq)).argmax(-1).t() == yq).float().mean(1)
        rows = {k: v.tolist() for k, v in acc.items()}  # the only host reads of the chunk
        return [{k: rows[k][i] for k in budgets if k in rows} for i in range(p)]


def _prototypes(feats: Tensor, y: Tensor, ways: int) -> Tensor:
    """(P, ways, D): each member's class means, ``feats[k][y[k] == c].mean(0)`` (the one-at-a-time arithmetic)."""
    counts = torch.stack([(y == c).sum(1) for c in range(ways)], 1)  # (P, ways)
    if bool((counts == counts[0, 0]).all()):  # every class as often in every member (k-shot): one gather
        order = torch.sort(y, dim=1, stable=True).indices.view(y.shape[0], ways, -1)  # class-major, index order
        d = feats.shape[-1]
        picked = feats.gather(1, order.reshape(y.shape[0], -1, 1).expand(-1, -1, d))
        return picked.view(y.shape[0], ways, -1, d).mean(2)
    return torch.stack([torch.stack([f[yy == c].mean(0) for c in range(ways)]) for f, yy in zip(feats, y, strict=True)])


def _ncm_logits(support: Tensor, y: Tensor, query: Tensor, ways: int, metric: str) -> Tensor:
    """(P, Q, ways) nearest-class-mean logits of each member (``engine.fewshot.evaluate._ncm_logits`` per member)."""
    if metric == "cosine":
        support, query = F.normalize(support, dim=-1), F.normalize(query, dim=-1)
    return -torch.cdist(query, _prototypes(support, y, ways))
