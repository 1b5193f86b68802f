"""The fine-tuning optimizer of an episode, one for the one-at-a-time and the batched paths (their exactness test
compares the two, so they must build it the same way)."""

from __future__ import annotations

from typing import Any

import torch


def finetune_optimizer(head: list[torch.Tensor], body: list[torch.Tensor], ft: Any,
                       fused: bool = False) -> torch.optim.Optimizer:
    """The head at ``ft.lr``, the body at ``ft.lr * ft.body_lr_scale`` (0 freezes it: no gradient at all), with
    ``ft.optimizer`` (adam or sgd with momentum 0.9) and ``ft.weight_decay``; ``fused`` kernels on CUDA."""
    groups = [{"params": head, "lr": ft.lr}]
    if ft.body_lr_scale > 0:
        groups.append({"params": body, "lr": ft.lr * ft.body_lr_scale})
    else:
        for p in body:
            p.requires_grad_(False)
    fast = {"fused": True} if fused else {}
    if ft.optimizer == "adam":
        return torch.optim.Adam(groups, weight_decay=ft.weight_decay, **fast)
    return torch.optim.SGD(groups, momentum=0.9, weight_decay=ft.weight_decay, **fast)
