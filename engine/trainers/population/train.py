"""Training and scoring a :class:`PopulationNet` on its :class:`PopulationData`.

The loss is the sum over individuals of each one's mean cross-entropy, so the gradient of individual k's weights
is exactly the gradient of its own loss (groups never mix). SGD with momentum and weight decay acts element by
element, so one optimizer over the fused parameters is the P optimizers of the individuals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.evolution.lifetime import curve_segments
from engine.trainers.population.batches import (
    PopulationData,
    gather_normalized,
    grouped_layout,
    step_batch,
    step_inputs,
)
from engine.trainers.population.network import PopulationNet


@dataclass(frozen=True)
class Precision:
    """How a population trains: bf16 autocast, bf16 inputs and channels_last on CUDA; plain fp32 elsewhere."""

    device_type: str
    bf16: bool
    channels_last: bool
    input_dtype: torch.dtype = torch.float32

    @classmethod
    def for_device(cls, device: torch.device) -> Precision:
        if device.type == "cuda":
            return cls("cuda", bf16=True, channels_last=True, input_dtype=torch.bfloat16)
        return cls(device.type, bf16=False, channels_last=False)

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.bf16)


class PopulationStep:
    """Forward and loss of one training step of ``net``; compiled once with ``compile=True`` and reused for
    every generation that loads new individuals into the same ``net``."""

    def __init__(self, net: PopulationNet, precision: Precision, *, compile: bool = False,
                 gene_loss_weight: float = 0.0) -> None:
        self.net, self.precision, self.compiled = net, precision, compile
        self.gene_loss_weight = gene_loss_weight
        if precision.channels_last:
            net.to(memory_format=torch.channels_last)
        self._fn = torch.compile(self._forward_loss, dynamic=False) if compile else self._forward_loss

    def _forward_loss(self, train_x: Tensor, train_y: Tensor, idx: Tensor, offsets: Tensor | None,
                      flips: Tensor | None, scale: Tensor, shift: Tensor,
                      gene_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        pr = self.precision
        x, y = step_batch(train_x, train_y, idx, offsets, flips, scale, shift, pr.input_dtype)
        x = grouped_layout(x, pr.channels_last)
        p, k = self.net.population, self.net.num_classes
        with pr.autocast():
            if gene_mask is None:
                outs = [self.net(x)]  # (B, P, K)
            else:  # lifetime.gene_loss_weight: the heads also read each individual's gene features alone
                feats = self.net.net.features(x)
                outs = [self.net.net.head(f).view(-1, p, k) for f in (feats, feats * gene_mask)]
        b = outs[0].shape[0]
        labels = y.t().reshape(b * p)

        def per_individual(logits: Tensor) -> Tensor:  # each individual's mean cross-entropy, (P,)
            if logits.dtype in (torch.float16, torch.bfloat16):
                logits = logits.float()
            return F.cross_entropy(logits.reshape(b * p, k), labels, reduction="none").view(b, p).mean(0)

        per = per_individual(outs[0])
        if gene_mask is not None:
            per = per + self.gene_loss_weight * per_individual(outs[1])
        return per.sum(), per

    def __call__(self, data: PopulationData, step: int, gene_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(summed loss, per-individual losses (P,)) of step ``step``; ``gene_mask`` (P * feature_dim,): each
        individual's gene features, for the gene loss (``lifetime.gene_loss_weight``)."""
        return self._fn(*step_inputs(data, step), gene_mask)


def make_optimizer(net: PopulationNet, *, lr: float, momentum: float, weight_decay: float) -> torch.optim.SGD:
    """One SGD over the fused parameters (fused kernels on CUDA, foreach elsewhere)."""
    cuda = next(net.parameters()).device.type == "cuda"
    return torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay,
                           **({"fused": True} if cuda else {}))


def train_population(step: PopulationStep, data: PopulationData, opt: torch.optim.Optimizer, *,
                     grad_factors: dict[str, Tensor] | None = None, gene_mask: Tensor | None = None,
                     safe_point: Callable[[], None] | None = None, curve: Tensor | None = None) -> Tensor:
    """Train for ``data.steps`` steps; returns each individual's mean loss over the last 10 steps (P,), on device.
    ``curve`` (stretches x P, on the device), when given, accumulates each stretch's summed losses
    (``engine.evolution.lifetime.curve_segments``).

    ``grad_factors`` (parameter name -> factor of the parameter's shape) scale gradients before each update
    (gene learning-rate scaling, a closed gene); ``gene_mask`` adds the gene loss (:class:`PopulationStep`).
    Nothing in the loop reads a value back to the host.
    """
    net = step.net
    net.train()
    named = [(n, p) for n, p in net.net.named_parameters()]
    factors = [grad_factors[n] for n, _ in named] if grad_factors else None
    last = torch.zeros(data.population, device=data.train_x.device)
    n = data.steps
    segments = curve_segments(n).tolist() if curve is not None else None
    for s in range(n):
        if safe_point is not None:
            safe_point()
        total, per = step(data, s, gene_mask)
        opt.zero_grad(set_to_none=True)
        total.backward()
        if factors is not None:
            pairs = [(p.grad, f) for (_, p), f in zip(named, factors, strict=True) if p.grad is not None]
            torch._foreach_mul_([g for g, _ in pairs], [f for _, f in pairs])
        opt.step()
        if curve is not None:
            curve[segments[s]] += per.detach().float()
        if s >= n - 10:
            last += per.detach()
    return last / max(min(n, 10), 1)


@torch.inference_mode()
def population_correct(net: PopulationNet, data: PopulationData, precision: Precision, batch: int = 512) -> Tensor:
    """Correct held-out predictions per individual (P,), on device; eval mode, no augmentation."""
    net.eval()
    p, m = data.heldout_x.shape[:2]
    correct = torch.zeros(p, dtype=torch.long, device=data.heldout_x.device)
    for i in range(0, m, batch):
        xs = data.heldout_x[:, i:i + batch]
        n = xs.shape[1]
        idx = torch.arange(n, device=xs.device).expand(p, n)
        x = gather_normalized(xs, idx, data.scale, data.shift, precision.input_dtype).permute(0, 1, 3, 4, 2)
        with precision.autocast():
            pred = net(grouped_layout(x, precision.channels_last)).argmax(-1).t()  # (P, n)
        valid = torch.arange(i, i + n, device=xs.device)[None, :] < data.heldout_n[:, None]
        correct += ((pred == data.heldout_y[:, i:i + n]) & valid).sum(1)
    return correct
