"""Where a population step spends GPU time: ``python scripts/gpu_profile.py [ARCH] [P]``.

Profiles a few eager training steps of the population network and of the dense ceiling (one network on the
same P x batch images) and prints the kernels by GPU time, to show which layers keep the population from the
ceiling.
"""

from __future__ import annotations

import sys

import torch
from torch.profiler import ProfilerActivity, profile

from engine.benchmarks.bench import FULL, BenchConfig, DenseStep, _models, _sgd, synthetic_data
from engine.trainers.population import (
    PopulationNet,
    PopulationStep,
    Precision,
    make_optimizer,
    train_population,
)


def top_kernels(fn, label: str, rows: int = 12) -> None:
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    print(f"\n## {label}")
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=rows, max_name_column_width=70))


def main() -> int:
    arch = sys.argv[1] if len(sys.argv) > 1 else "vgg11"
    p = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    dev = torch.device("cuda")
    cfg = BenchConfig(models=[arch], populations=[p], batch=FULL["batch"], steps=3, warmup=1, width=1.0,
                      device=dev, compile=False, sequential_networks=1)
    data = synthetic_data(p, cfg.steps, cfg.batch, cfg.image_size, dev, seed=0)
    precision = Precision.for_device(dev)
    net = PopulationNet.from_models(_models(arch, p, cfg)).to(dev)
    step = PopulationStep(net, precision)
    opt = make_optimizer(net, lr=0.01, momentum=0.9, weight_decay=5e-4)
    top_kernels(lambda: train_population(step, data, opt), f"{arch} population P={p}, 3 steps, eager")
    dense = DenseStep(_models(arch, 1, cfg)[0].to(dev), precision, compile=False)
    dopt = _sgd(dense.model.parameters(), dev)
    top_kernels(lambda: dense.train(data, dopt), f"{arch} dense on P x batch, 3 steps, eager")
    return 0


if __name__ == "__main__":
    sys.exit(main())
