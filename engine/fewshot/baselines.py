"""The pretrained baseline: one network trained on all meta-train classes, saved once and reused by evaluation.

Stored like a learngene: ``<name>.safetensors`` (the state dict) plus ``<name>.json`` (arch, width, classes,
steps, dataset, image size). No pickle.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from engine.data import ImageDataset, augment, batch_indices, normalize
from engine.learngene.io import pair_paths
from engine.models import GeneNet, create_model

FORMAT = "gtl-pretrained"


@dataclass
class PretrainSettings:
    """How the pretrained baseline is trained (SGD with momentum, cosine learning rate, augmentation)."""

    arch: str = "conv4"
    width: float = 1.0
    steps: int = 1000
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    augment: bool = True
    seed: int = 0


def pretrain(dataset: ImageDataset, settings: PretrainSettings, *, device: torch.device | str = "cpu",
             progress: Callable[[int, float], None] | None = None) -> GeneNet:
    """Train ``settings.arch`` on every image of the meta-train classes for ``settings.steps`` steps."""
    s = settings
    classes = dataset.splits["train"]
    idx = torch.cat([dataset.class_indices(c) for c in classes])
    lut = torch.full((dataset.num_classes,), -1, dtype=torch.long)
    lut[torch.tensor(classes)] = torch.arange(len(classes))
    y_all = lut[dataset.labels[idx].long()]
    g = torch.Generator().manual_seed(s.seed)
    model = create_model(s.arch, len(classes), width=s.width, in_channels=dataset.channels,
                         image_size=dataset.image_size, generator=g).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * k / max(s.steps, 1))))
    order = batch_indices(len(idx), s.steps, min(s.batch_size, len(idx)), g)
    aug = torch.Generator().manual_seed(s.seed + 1)
    for step in range(s.steps):
        b = order[step]
        x = normalize(dataset.images[idx[b]], dataset.mean, dataset.std)
        if s.augment:
            x = augment(x, aug)
        loss = F.cross_entropy(model(x.to(device)), y_all[b].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress is not None:
            progress(step + 1, float(loss.detach()))
    return model.cpu().eval()


def save_pretrained(model: GeneNet, path: str | Path, settings: PretrainSettings, *, dataset: str,
                    image_size: int, extra: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write the pretrained network's weights and manifest; returns the two paths."""
    st, js = pair_paths(path)
    st.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(st),
              metadata={"format": FORMAT})
    manifest = {"format": FORMAT, "settings": asdict(settings), "num_classes": model.head.out_features,
                "in_channels": model.gene_spec().in_channels, "dataset": dataset, "image_size": image_size,
                "created": time.time(), **(extra or {})}
    js.write_text(json.dumps(manifest, indent=2) + "\n")
    return st, js


def load_pretrained(path: str | Path) -> tuple[GeneNet, dict[str, Any]]:
    """Read a network written by :func:`save_pretrained`. Raises ValueError on a missing or foreign file."""
    st, js = pair_paths(path)
    try:
        manifest = json.loads(js.read_text())
    except OSError as e:
        raise ValueError(f"cannot read pretrained manifest {js}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{js}: not a valid JSON manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{js}: not a pretrained-network manifest (format is not {FORMAT!r})")
    s = manifest["settings"]
    model = create_model(s["arch"], manifest["num_classes"], width=s["width"], in_channels=manifest["in_channels"],
                         image_size=manifest["image_size"], generator=torch.Generator().manual_seed(0))
    try:
        state = load_file(str(st))
    except (OSError, ValueError, RuntimeError) as e:
        raise ValueError(f"cannot read pretrained weights {st}: {e}") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{st}: weights do not match {s['arch']} at width {s['width']} ({str(e)[:120]})") from None
    return model.eval(), manifest
