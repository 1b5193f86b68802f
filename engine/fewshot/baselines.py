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
    dev = torch.device(device)
    x_all, y_all = dataset.images[idx].to(dev), y_all.to(dev)  # once: on a GPU each batch is cut on the device
    for step in range(s.steps):
        b = order[step].to(dev)
        x = normalize(x_all[b], dataset.mean, dataset.std)
        if s.augment:
            x = augment(x, aug)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):  # bf16 as runs train
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y_all[b])
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


def _check_manifest(manifest: dict[str, Any], where: Path) -> None:
    """Every field :func:`load_pretrained` builds a network from, checked for type and range first: a tampered
    manifest (a width of 1e9, a million classes) must give one line, not a traceback or an endless allocation."""
    from engine.models import available_models

    s = manifest.get("settings")

    def bad(what: str) -> ValueError:
        return ValueError(f"{where}: pretrained manifest field {what} is missing or out of range")

    if not isinstance(s, dict):
        raise bad("'settings'")
    if s.get("arch") not in available_models():
        raise ValueError(f"{where}: unknown architecture {s.get('arch')!r}; available: {', '.join(available_models())}")
    w = s.get("width")
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w <= 8:
        raise bad("'settings.width' (0 < width <= 8)")
    for key, lo, hi in (("num_classes", 1, 100_000), ("in_channels", 1, 64), ("image_size", 8, 512)):
        v = manifest.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise bad(f"{key!r} ({lo}..{hi})")


def load_pretrained(path: str | Path) -> tuple[GeneNet, dict[str, Any]]:
    """Read a network written by :func:`save_pretrained`. Raises ValueError on a missing or foreign file."""
    from engine.integrity import MAX_WEIGHTS_BYTES, check_file, read_json_file

    st, js = pair_paths(path)
    manifest = read_json_file(js, "pretrained manifest")  # size-limited; too deep is a ValueError
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{js}: not a pretrained-network manifest (format is not {FORMAT!r})")
    s = manifest.get("settings")
    _check_manifest(manifest, js)
    check_file(st, MAX_WEIGHTS_BYTES, "pretrained weights")  # a regular file of bounded size, before reading
    model = create_model(s["arch"], manifest["num_classes"], width=s["width"], in_channels=manifest["in_channels"],
                         image_size=manifest["image_size"], generator=torch.Generator().manual_seed(0))
    try:
        state = load_file(str(st))
    except Exception as e:  # OSError, or safetensors' own error on a damaged file
        raise ValueError(f"cannot read pretrained weights {st}: {e}") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{st}: weights do not match {s['arch']} at width {s['width']} ({str(e)[:120]})") from None
    return model.eval(), manifest
