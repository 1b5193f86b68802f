"""Training throughput of a population: ``python -m engine.benchmarks.bench [--quick]``.

For each model and population size P, images/s of:
- one after another: P networks, each trained alone on its own batches (timed on a few of them; the rate does not
  depend on P);
- population eager / compiled: the population trainer's own step (:class:`PopulationStep`, grouped network);
- dense eager / compiled: ONE network of the same architecture on the same P x batch images as one batch, the
  ceiling a fused population can approach.
All on the same synthetic uint8 data resident on the device, with the same batch assembly (gather, normalise,
crop, flip); bf16 autocast and channels_last on CUDA, fp32 on the CPU. Ratios are to the compiled dense network
(to the eager one when compiling is skipped).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.models import GeneNet, create_model
from engine.trainers.population.batches import (
    PopulationData,
    dense_layout,
    normalization,
    step_batch,
    step_inputs,
)
from engine.trainers.population.network import PopulationNet
from engine.trainers.population.train import PopulationStep, Precision, make_optimizer, train_population

WAYS = 5
IMAGES_PER_TASK = 512


@dataclass
class BenchConfig:
    models: list[str]
    populations: list[int]
    batch: int
    steps: int
    warmup: int
    width: float
    device: torch.device
    compile: bool
    sequential_networks: int
    image_size: int = 32


def synthetic_data(p: int, steps: int, batch: int, side: int, device: torch.device, seed: int) -> PopulationData:
    """Random uint8 tasks for P individuals with batch schedules and augmentation draws, on ``device``."""
    g = torch.Generator().manual_seed(seed)
    n = IMAGES_PER_TASK
    pad = side // 8
    scale, shift = normalization((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), device)
    return PopulationData(
        train_x=torch.randint(0, 256, (p, n, 3, side, side), generator=g, dtype=torch.uint8).to(device),
        train_y=torch.randint(0, WAYS, (p, n), generator=g).to(device),
        heldout_x=torch.zeros((p, 1, 3, side, side), dtype=torch.uint8, device=device),
        heldout_y=torch.zeros((p, 1), dtype=torch.long, device=device),
        heldout_n=torch.ones(p, dtype=torch.long, device=device),
        order=torch.randint(0, n, (steps, p, batch), generator=g).to(device),
        offsets=torch.randint(0, 2 * pad + 1, (steps, 2, p, batch), generator=g).to(device),
        flips=(torch.rand((steps, p, batch), generator=g) < 0.5).to(device),
        scale=scale, shift=shift)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(run: Callable[[PopulationData], None], warm: PopulationData, timed: PopulationData,
           device: torch.device) -> float:
    """Seconds of ``run(timed)`` after ``run(warm)`` (compilation and caches warmed), device work included."""
    run(warm)
    _sync(device)
    t0 = time.perf_counter()
    run(timed)
    _sync(device)
    return time.perf_counter() - t0


def _models(arch: str, p: int, cfg: BenchConfig) -> list[GeneNet]:
    return [create_model(arch, WAYS, width=cfg.width, image_size=cfg.image_size,
                         generator=torch.Generator().manual_seed(i)) for i in range(p)]


def _sgd(params, device: torch.device) -> torch.optim.SGD:
    return torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4,
                           **({"fused": True} if device.type == "cuda" else {}))


class DenseStep:
    """Forward and loss of one plain network on a batch of P*B images (the benchmark's ceiling)."""

    def __init__(self, model: GeneNet, precision: Precision, compile: bool) -> None:
        self.model, self.precision = model, precision
        if precision.channels_last:
            model.to(memory_format=torch.channels_last)
        self._fn = torch.compile(self._forward_loss, dynamic=False) if compile else self._forward_loss

    def _forward_loss(self, train_x, train_y, idx, offsets, flips, scale, shift) -> torch.Tensor:
        pr = self.precision
        x, y = step_batch(train_x, train_y, idx, offsets, flips, scale, shift, pr.input_dtype)
        with pr.autocast():
            logits = self.model(dense_layout(x, pr.channels_last))
        return F.cross_entropy(logits.float(), y.reshape(-1))

    def train(self, data: PopulationData, opt: torch.optim.Optimizer) -> None:
        self.model.train()
        for s in range(data.steps):
            loss = self._fn(*step_inputs(data, s))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def bench_one(arch: str, p: int, cfg: BenchConfig) -> dict[str, float | None]:
    """images/s of every method for one model and population size."""
    dev = cfg.device
    warm = synthetic_data(p, cfg.warmup, cfg.batch, cfg.image_size, dev, seed=1)
    timed = synthetic_data(p, cfg.steps, cfg.batch, cfg.image_size, dev, seed=2)
    out: dict[str, float | None] = {"one after another": _one_after_another(arch, cfg, warm, timed)}
    for compiled in (False, True):
        label = "compiled" if compiled else "eager"
        if compiled and not cfg.compile:
            out[f"population {label}"] = out[f"dense {label}"] = None
            continue
        out[f"population {label}"] = _population(arch, cfg, warm, timed, compiled)
        out[f"dense {label}"] = _dense(arch, cfg, warm, timed, compiled)
        if compiled:
            torch._dynamo.reset()
    return out


def _one_after_another(arch: str, cfg: BenchConfig, warm: PopulationData, timed: PopulationData) -> float:
    """Each network alone with its own optimizer and slice of the data, timed on a few networks."""
    dev, precision = cfg.device, Precision.for_device(cfg.device)
    n = min(timed.population, cfg.sequential_networks)
    singles = [DenseStep(m.to(dev), precision, compile=False) for m in _models(arch, n, cfg)]
    opts = [_sgd(s.model.parameters(), dev) for s in singles]

    def run(data: PopulationData) -> None:
        for k, (single, opt) in enumerate(zip(singles, opts, strict=True)):
            single.train(_slice(data, k), opt)

    return n * cfg.batch * cfg.steps / _timed(run, warm, timed, dev)


def _population(arch: str, cfg: BenchConfig, warm: PopulationData, timed: PopulationData, compiled: bool) -> float:
    """The population trainer's step on all P networks at once."""
    dev = cfg.device
    net = PopulationNet.from_models(_models(arch, timed.population, cfg)).to(dev)
    step = PopulationStep(net, Precision.for_device(dev), compile=compiled)
    opt = make_optimizer(net, lr=0.01, momentum=0.9, weight_decay=5e-4)
    seconds = _timed(lambda d: train_population(step, d, opt), warm, timed, dev)
    return timed.population * cfg.batch * cfg.steps / seconds


def _dense(arch: str, cfg: BenchConfig, warm: PopulationData, timed: PopulationData, compiled: bool) -> float:
    """One network on all P x batch images as one batch (the ceiling)."""
    dev = cfg.device
    dense = DenseStep(_models(arch, 1, cfg)[0].to(dev), Precision.for_device(dev), compile=compiled)
    opt = _sgd(dense.model.parameters(), dev)
    seconds = _timed(lambda d: dense.train(d, opt), warm, timed, dev)
    return timed.population * cfg.batch * cfg.steps / seconds


def _slice(data: PopulationData, k: int) -> PopulationData:
    """Individual k's data as a population of one."""
    sl = slice(k, k + 1)
    return PopulationData(
        train_x=data.train_x[sl], train_y=data.train_y[sl], heldout_x=data.heldout_x[sl],
        heldout_y=data.heldout_y[sl], heldout_n=data.heldout_n[sl], order=data.order[:, sl],
        offsets=data.offsets[:, :, sl] if data.offsets is not None else None,
        flips=data.flips[:, sl] if data.flips is not None else None, scale=data.scale, shift=data.shift)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}, torch {torch.__version__})"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads " \
           f"({os.cpu_count()} cores), torch {torch.__version__}"


METHODS = ["one after another", "population eager", "population compiled", "dense eager", "dense compiled"]


def report(rows: list[tuple[str, int, dict[str, float | None]]]) -> str:
    """A Markdown table: images/s and the ratio to the compiled (else eager) dense network."""
    head = "| model | P | " + " | ".join(METHODS) + " |"
    lines = [head, "|" + " --- |" * (len(METHODS) + 2)]
    for arch, p, res in rows:
        base = res.get("dense compiled") or res.get("dense eager")
        cells = []
        for m in METHODS:
            v = res.get(m)
            cells.append("skipped" if v is None else f"{v:,.0f} ({v / base:.2f}x)" if base else f"{v:,.0f}")
        lines.append(f"| {arch} | {p} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


FULL = {"population": "16,64", "batch": 128, "steps": 30, "warmup": 5, "width": 1.0, "device": "auto",
        "sequential_networks": 4, "threads": 0}
QUICK = {"population": "4", "batch": 16, "steps": 8, "warmup": 2, "width": 0.125, "device": "cpu",
         "sequential_networks": 2, "threads": 1}  # one thread: on a small shared CPU more threads wait on each other


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse(argv: list[str] | None) -> BenchConfig:
    ap = _Parser(prog="python -m engine.benchmarks.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="tiny CPU run (under a minute): width 0.125, P=4, batch 16, 8 steps, no compile")
    ap.add_argument("--models", default="conv4,vgg11", help="comma-separated registered models")
    ap.add_argument("--population", help=f"comma-separated population sizes (default {FULL['population']})")
    ap.add_argument("--batch", type=int, help=f"images per network per step (default {FULL['batch']})")
    ap.add_argument("--steps", type=int, help=f"timed steps (default {FULL['steps']})")
    ap.add_argument("--warmup", type=int, help=f"steps before timing; compilation happens there "
                    f"(default {FULL['warmup']})")
    ap.add_argument("--width", type=float, help="width multiplier of the networks (default 1)")
    ap.add_argument("--device", help="'auto' (default), 'cpu', 'cuda' or 'cuda:N'")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                    help="measure the torch.compile columns (default: on, off with --quick)")
    ap.add_argument("--cudnn-benchmark", action=argparse.BooleanOptionalAction, default=True,
                    help="let cuDNN time its algorithms per shape, as runs on CUDA do (default: on)")
    ap.add_argument("--threads", type=int, help="CPU threads of torch (0: torch's default; 1 with --quick)")
    ap.add_argument("--sequential-networks", type=int,
                    help="networks timed for 'one after another', whose rate does not depend on P (default 4)")
    a = ap.parse_args(argv)
    for key, value in (QUICK if a.quick else FULL).items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.backends.cudnn.benchmark = a.cudnn_benchmark
    if a.device == "auto":
        a.device = "cuda" if torch.cuda.is_available() else "cpu"
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("--device cuda requested but CUDA is not available")
    try:
        pops = [int(x) for x in a.population.split(",")]
    except ValueError:
        ap.error(f"--population must be comma-separated integers (got {a.population!r})")
    from engine.models import available_models

    models = [m.strip() for m in a.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in available_models()]
    if unknown or not models:
        ap.error(f"unknown or no models {unknown}; available: {', '.join(available_models())}")
    if min(pops) < 1 or a.batch < 1 or a.steps < 1 or a.warmup < 1 or not a.width > 0:
        ap.error("population sizes, --batch, --steps, --warmup and --width must be positive")
    return BenchConfig(models=models, populations=pops, batch=a.batch, steps=a.steps, warmup=a.warmup,
                       width=a.width, device=torch.device(a.device),
                       compile=(not a.quick) if a.compile is None else a.compile,
                       sequential_networks=max(1, a.sequential_networks))


def main(argv: list[str] | None = None) -> int:
    cfg = parse(argv)
    print(f"device: {device_name(cfg.device)}")
    print(f"batch {cfg.batch} per network, {cfg.steps} timed steps after {cfg.warmup} warm-up steps, "
          f"width x{cfg.width}, {'bf16 autocast, channels_last' if cfg.device.type == 'cuda' else 'fp32'}, "
          f"compile {'on' if cfg.compile else 'off'}, cudnn.benchmark {torch.backends.cudnn.benchmark}", flush=True)
    rows = []
    for arch in cfg.models:
        for p in cfg.populations:
            t0 = time.perf_counter()
            res = bench_one(arch, p, cfg)
            rows.append((arch, p, res))
            print(f"  {arch} P={p}: " + ", ".join(f"{k} {v:,.0f}" for k, v in res.items() if v is not None)
                  + f" images/s ({time.perf_counter() - t0:.0f} s)", flush=True)
    print()
    print(report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
