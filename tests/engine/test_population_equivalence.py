"""The population trainer computes what the one-by-one trainer computes.

Two levels:
- float64, every registered model, NCHW and channels_last: the fused network, the summed loss and the one fused
  SGD (momentum, weight decay, gene learning-rate factors) give each individual the weights, BN statistics and
  held-out predictions of that individual trained alone with its own SGD, to atol 1e-10 (seen: 1e-14).
- fp32, end to end against ``SequentialTrainer`` (``live``): every weight and BatchNorm statistic of individual k
  agrees with the same individual trained alone to atol 1e-4 / rtol 1e-4, and fitness is equal. Grouped and plain
  convolutions round differently (1e-7); a few steps of a small network at a high learning rate can amplify that
  chaotically (a ReLU or max-pool decision flips), so the fp32 lifetime here is short and tame (3 steps, lr 0.02,
  batch 32): float64 shows the computation itself is the same.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.config import Config
from engine.data import load_dataset, partition_classes
from engine.data.tasks import augment
from engine.evolution.individual import Genome, LifeResult
from engine.evolution.lifetime import LifeContext, born
from engine.learngene import extract, gene_masks, random_channels
from engine.models import available_models, create_model
from engine.run.signals import RunSignals, StopRequested
from engine.seeding import torch_generator
from engine.trainers import make_trainer
from engine.trainers.population import (
    PopulationNet,
    PopulationStep,
    PopulationTrainer,
    Precision,
    make_optimizer,
    population_correct,
    population_data,
    train_population,
)
from engine.trainers.population.batches import augment_draws, crop_flip, step_batch, step_inputs
from engine.trainers.sequential import SequentialTrainer

ATOL = RTOL = 1e-4


@pytest.fixture(scope="module")
def dataset():
    torch.set_num_threads(1)
    cfg = Config.model_validate({"data": {"glyph_classes": 20, "glyph_images_per_class": 20}})
    return load_dataset(cfg.data)


def make_ctx(dataset, arch: str = "conv4", device: str = "cpu", **sections) -> LifeContext:
    raw = {
        "model": {"arch": arch, "width": 0.125},
        "data": {"glyph_classes": 20, "glyph_images_per_class": 20},
        "lifetime": {"steps": 3, "batch_size": 16, "lr": 0.02, "momentum": 0.9, "weight_decay": 5e-4,
                     "gene_lr_scale": 0.5},
        "run": {"trainer": "population"},
    }
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value)
    cfg = Config.model_validate(raw)
    partition = partition_classes(dataset, cfg.data.heldout_fraction, seed=cfg.data.glyph_seed)
    return LifeContext(cfg=cfg, dataset=dataset, partition=partition, device=torch.device(device))


def make_genomes(ctx: LifeContext, n: int, with_genes: bool = True) -> list[Genome]:
    """n genomes with their own tasks; all but the first carry a learngene (so gene scaling is exercised)."""
    cfg = ctx.cfg
    pool = ctx.dataset.splits["train"]
    genomes = []
    for i in range(n):
        g = torch_generator(7, "test-genome", i)
        perm = torch.randperm(len(pool), generator=g)[:cfg.task.ways].tolist()
        ancestor = create_model(cfg.model.arch, cfg.task.ways, width=cfg.model.width, generator=g)
        channels = random_channels(ancestor.gene_spec().widths, 0.45, g)
        gene = extract(ancestor, channels) if with_genes and i > 0 else None
        genomes.append(Genome(id=100 + i, generation=1, parent=None, task=[pool[j] for j in perm],
                              channels=channels, gene=gene))
    return genomes


def run(trainer, genomes: list[Genome], safe_point=lambda: None) -> tuple[list[LifeResult], list[str]]:
    calls: list[str] = []
    results = trainer.train_generation(genomes, on_start=lambda gm: calls.append(f"start {gm.id}"),
                                       on_done=lambda gm, r: calls.append(f"done {gm.id}"), safe_point=safe_point)
    return results, calls


def assert_same(a: list[LifeResult], b: list[LifeResult], atol: float = ATOL, rtol: float = RTOL) -> None:
    assert [r.id for r in a] == [r.id for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert set(ra.state) == set(rb.state)
        for key in ra.state:
            torch.testing.assert_close(ra.state[key], rb.state[key], atol=atol, rtol=rtol,
                                       msg=lambda m, k=key, i=ra.id: f"individual {i}, {k}: {m}")
        assert ra.fitness == rb.fitness
        assert ra.lifetime_fitness == rb.lifetime_fitness
        assert ra.critic_fitness == rb.critic_fitness
        assert ra.train_loss == pytest.approx(rb.train_loss, rel=1e-4, abs=1e-5)
        assert ra.loss_curve is not None and rb.loss_curve is not None
        assert ra.loss_curve == pytest.approx(rb.loss_curve, rel=1e-4, abs=1e-4)  # the same curve, both trainers
        assert ra.images == rb.images


@pytest.mark.parametrize("arch", available_models())
def test_population_equivalence_every_model(dataset, arch):
    """Individual k of the population network ends with the weights, BN statistics and fitness it has alone."""
    ctx = make_ctx(dataset, arch)
    genomes = make_genomes(ctx, 3)
    seq, _ = run(SequentialTrainer(ctx), genomes)
    pop, calls = run(PopulationTrainer(ctx), genomes)
    assert_same(pop, seq)
    assert sorted(calls) == sorted([f"start {g.id}" for g in genomes] + [f"done {g.id}" for g in genomes])
    # the lifetime really changed the weights, and BN statistics moved away from their birth values
    birth = born(ctx, genomes[0]).state_dict()
    bn_key = next(k for k in birth if k.endswith("running_mean"))
    assert not torch.allclose(pop[0].state[bn_key], birth[bn_key])
    assert int(pop[0].state[bn_key.replace("running_mean", "num_batches_tracked")]) == ctx.cfg.lifetime.steps


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("arch", available_models())
def test_population_equivalence_float64_exact(dataset, arch, channels_last):
    """One fused SGD on the summed loss == P separate SGDs, to float64 rounding (gradients never mix)."""
    ctx = make_ctx(dataset, arch, lifetime={"steps": 2, "lr": 0.05}, task={"heldout_per_class": 2})
    lt = ctx.cfg.lifetime
    genomes = make_genomes(ctx, 3)
    models = [born(ctx, gm).double() for gm in genomes]
    data = population_data([ctx.task_for(gm) for gm in genomes],
                           [torch_generator(0, "t", gm.id) for gm in genomes], steps=lt.steps,
                           batch_size=lt.batch_size, augment=True, mean=ctx.dataset.mean, std=ctx.dataset.std,
                           device=ctx.device)
    precision = Precision("cpu", bf16=False, channels_last=channels_last, input_dtype=torch.float64)
    step = PopulationStep(PopulationNet.from_models(models), precision)
    factors = [{n: 1.0 - 0.5 * m.double() for n, m in gene_masks(md, gm.channels).items()} if gm.gene else {}
               for md, gm in zip(models, genomes, strict=True)]
    opt = make_optimizer(step.net, lr=lt.lr, momentum=lt.momentum, weight_decay=lt.weight_decay)
    train_population(step, data, opt, grad_factors=step.net.grouped(factors))
    correct = population_correct(step.net, data, precision)

    for k, model in enumerate(models):  # the reference: each individual alone, its own optimizer
        opt_k = torch.optim.SGD(model.parameters(), lr=lt.lr, momentum=lt.momentum, weight_decay=lt.weight_decay)
        model.train()
        for s in range(lt.steps):
            x, y = step_batch(*step_inputs(data, s), torch.float64)
            loss = F.cross_entropy(model(x[k].permute(0, 3, 1, 2)), y[k])
            opt_k.zero_grad()
            loss.backward()
            for n, p in model.named_parameters():
                if n in factors[k]:
                    p.grad.mul_(factors[k][n])
            opt_k.step()
        model.eval()
        n_held = int(data.heldout_n[k])
        x_held = (data.heldout_x[k, :n_held].double() * data.scale.double().view(-1, 1, 1)
                  - data.shift.double().view(-1, 1, 1))
        with torch.no_grad():
            pred = model(x_held).argmax(1)
        assert int(correct[k]) == int((pred == data.heldout_y[k, :n_held]).sum())
    for k, state in enumerate(step.net.states()):
        for key, t in models[k].state_dict().items():
            torch.testing.assert_close(state[key], t, atol=1e-10, rtol=1e-10, msg=lambda m, key=key: f"{key}: {m}")


def test_population_equivalence_chunked(dataset):
    """P = 5 in chunks of 2 (2 + 2 + 1 ... balanced to 2, 2, 1) gives what one chunk of 5 gives."""
    genomes = make_genomes(make_ctx(dataset), 5)
    whole, _ = run(PopulationTrainer(make_ctx(dataset)), genomes)
    chunked_trainer = PopulationTrainer(make_ctx(dataset, run={"max_population_chunk": 2}))
    chunked, calls = run(chunked_trainer, genomes)
    assert_same(chunked, whole, atol=1e-5, rtol=1e-5)
    assert calls[:4] == [f"start {genomes[0].id}", f"start {genomes[1].id}", f"done {genomes[0].id}",
                         f"done {genomes[1].id}"]
    assert {k[0] for k in chunked_trainer._steps} == {1, 2}


def test_population_equivalence_without_augmentation_or_momentum(dataset):
    ctx = make_ctx(dataset, data={"augment": False}, lifetime={"momentum": 0.0, "gene_lr_scale": 1.0})
    genomes = make_genomes(ctx, 3)
    assert_same(run(PopulationTrainer(ctx), genomes)[0], run(SequentialTrainer(ctx), genomes)[0])


def test_population_equivalence_mixed_fitness_and_birth_states(dataset):
    """Critic fitness (scored one by one) and non-Lamarckian inheritance (birth weights) match too."""
    ctx = make_ctx(dataset, fitness={"kind": "mixed", "critics": 1, "critic_steps": 2},
                   evolution={"lamarckian": False})
    genomes = make_genomes(ctx, 2)
    pop, _ = run(PopulationTrainer(ctx), genomes)
    assert_same(pop, run(SequentialTrainer(ctx), genomes)[0])
    assert pop[0].critic_fitness is not None
    for key, t in born(ctx, genomes[0]).state_dict().items():
        assert torch.equal(pop[0].state[key], t)


def test_population_augmentation_equals_augment():
    """The vectorised crop-and-flip with pre-drawn numbers equals ``augment`` drawing them itself."""
    x = torch.randn(3, 6, 3, 32, 32)
    for k in range(3):
        g_ref, g_pop = torch.Generator().manual_seed(k), torch.Generator().manual_seed(k)
        offsets, flips = augment_draws(g_pop, 2, 6, 32)
        for s in range(2):
            expected = augment(x[k], g_ref)
            out = crop_flip(x[k:k + 1], offsets[s][:, None], flips[s][None])  # (1, B, H, W, C)
            assert torch.equal(out[0].permute(0, 3, 1, 2), expected)


def test_population_pauses_and_stops_at_every_step(dataset):
    ctx = make_ctx(dataset)
    genomes = make_genomes(ctx, 2, with_genes=False)
    count = 0

    def counting() -> None:
        nonlocal count
        count += 1

    run(PopulationTrainer(ctx), genomes, counting)
    assert count >= ctx.cfg.lifetime.steps
    signals = RunSignals()
    signals.request_stop()
    with pytest.raises(StopRequested):
        run(PopulationTrainer(ctx), genomes, signals.safe_point)


def test_population_trainer_is_registered_and_chosen_by_config(dataset):
    assert isinstance(make_trainer(make_ctx(dataset)), PopulationTrainer)
    assert make_trainer(make_ctx(dataset, run={"trainer": "auto"})).name == "sequential"  # CPU default


def test_population_net_rejects_unknown_modules():
    model = create_model("conv4", 5, width=0.25, generator=torch.Generator().manual_seed(0))
    model.blocks[0].act = torch.nn.PReLU()
    with pytest.raises(TypeError, match="PReLU"):
        PopulationNet(model, 2)


def test_population_cuda_code_path_on_cpu_bf16_channels_last(dataset):
    """The CUDA recipe (bf16 autocast, bf16 inputs, channels_last) run on the CPU: close to fp32, fp32 states."""
    ctx = make_ctx(dataset, lifetime={"steps": 2, "gene_lr_scale": 1.0})
    genomes = make_genomes(ctx, 2)
    cuda_like = Precision("cpu", bf16=True, channels_last=True, input_dtype=torch.bfloat16)
    low, _ = run(PopulationTrainer(ctx, precision=cuda_like), genomes)
    ref, _ = run(PopulationTrainer(ctx), genomes)
    for a, b in zip(low, ref, strict=True):
        assert all(t.dtype == b.state[k].dtype and t.is_contiguous() for k, t in a.state.items())
        torch.testing.assert_close(a.state["head.weight"], b.state["head.weight"], atol=0.02, rtol=0.05)
        assert a.train_loss == pytest.approx(b.train_loss, rel=0.05)


@pytest.mark.slow
def test_population_compiled_once_and_reused(dataset):
    """torch.compile (here on the CPU) gives the eager results and is not recompiled for the next generation."""
    from torch._dynamo.utils import counters

    ctx = make_ctx(dataset, lifetime={"steps": 2, "gene_lr_scale": 1.0})
    genomes = make_genomes(ctx, 2)
    trainer = PopulationTrainer(ctx, compile=True)
    compiled, _ = run(trainer, genomes)
    assert_same(compiled, run(PopulationTrainer(ctx), genomes)[0], atol=1e-4, rtol=1e-4)
    frames = counters["stats"]["unique_graphs"]
    assert frames > 0
    again, _ = run(trainer, make_genomes(ctx, 4)[2:])  # the next generation: new individuals, same shapes
    assert counters["stats"]["unique_graphs"] == frames
    assert len(again) == 2


def test_bench_quick_prints_every_method(capsys):
    from engine.benchmarks import bench

    assert bench.main(["--quick", "--models", "conv4", "--steps", "1", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("device: CPU")
    assert "| conv4 | 4 |" in out and "one after another" in out and "(1.00x)" in out


@pytest.mark.gpu
def test_population_generation_learns_in_bf16_on_cuda(dataset):
    """A generation in bf16 / channels_last on the GPU learns its tasks (well above chance)."""
    ctx = make_ctx(dataset, device="cuda", model={"width": 0.5},
                   lifetime={"steps": 150, "batch_size": 32, "gene_lr_scale": 1.0}, run={"compile": False})
    genomes = make_genomes(ctx, 4)
    trainer = PopulationTrainer(ctx)
    results, _ = run(trainer, genomes)
    assert trainer.precision.bf16 and trainer.precision.channels_last
    mean_fit = sum(r.fitness for r in results) / len(results)
    assert mean_fit > 1 / ctx.cfg.task.ways + 0.3, mean_fit  # bf16 on the CPU reaches 0.74 here
    assert all(t.device.type == "cpu" and t.dtype != torch.bfloat16 for t in results[0].state.values())
    seq, _ = run(SequentialTrainer(ctx), genomes[:1])
    assert abs(seq[0].fitness - results[0].fitness) < 0.25


@pytest.mark.gpu
@pytest.mark.slow
def test_population_compiled_on_cuda_once_per_run(dataset):
    """run.compile on CUDA: compiled at the first generation, reused by the next (same shapes)."""
    from torch._dynamo.utils import counters

    ctx = make_ctx(dataset, device="cuda", lifetime={"steps": 10, "gene_lr_scale": 1.0}, run={"compile": True})
    trainer = PopulationTrainer(ctx)
    assert trainer.compile
    first, _ = run(trainer, make_genomes(ctx, 3))
    frames = counters["stats"]["unique_graphs"]
    second, _ = run(trainer, make_genomes(ctx, 6)[3:])
    assert counters["stats"]["unique_graphs"] == frames > 0
    assert all(0 <= r.fitness <= 1 and r.train_loss == r.train_loss for r in first + second)


@pytest.mark.gpu
@pytest.mark.parametrize("arch", available_models())
def test_population_equivalence_on_cuda_fp32(dataset, arch):
    """On the GPU in fp32 (TF32 off, channels_last as in bf16 runs): individual k of the population network
    ends with the weights and BN statistics it has when trained alone on the GPU. cuDNN picks different
    algorithms for grouped and plain convolutions, so the tolerance is 1e-3 (the CPU's is 1e-4)."""
    ctx = make_ctx(dataset, arch, device="cuda")
    genomes = make_genomes(ctx, 3)
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        seq, _ = run(SequentialTrainer(ctx), genomes)
        fp32 = Precision("cuda", bf16=False, channels_last=True)
        pop, _ = run(PopulationTrainer(ctx, precision=fp32, compile=False), genomes)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    for rp, rs in zip(pop, seq, strict=True):
        for key in rs.state:
            torch.testing.assert_close(rp.state[key], rs.state[key], atol=1e-3, rtol=1e-3,
                                       msg=lambda m, k=key, i=rp.id: f"individual {i}, {k}: {m}")
        assert rp.fitness == pytest.approx(rs.fitness, abs=0.1)


class _SmallDevice(PopulationTrainer):
    """A trainer whose device "fits" at most ``fits`` networks at once: bigger chunks run out of memory after
    they started (as a real out-of-memory error would come mid-lifetime)."""

    def __init__(self, ctx: LifeContext, fits: int) -> None:
        super().__init__(ctx)
        self.fits, self.tried = fits, []

    def _train_chunk(self, chunk, on_start, started, safe_point):
        self.tried.append(len(chunk))
        if len(chunk) > self.fits:
            for gm in chunk:  # the lifetimes had begun: the retry must not announce them again
                if gm.id not in started:
                    started.add(gm.id)
                    on_start(gm)
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return super()._train_chunk(chunk, on_start, started, safe_point)


def test_population_out_of_memory_halves_the_chunk_and_loses_nothing(dataset):
    """A chunk that does not fit is halved and retried from birth; results equal one chunk of the whole."""
    genomes = make_genomes(make_ctx(dataset), 5)
    whole, _ = run(PopulationTrainer(make_ctx(dataset)), genomes)
    small = _SmallDevice(make_ctx(dataset), fits=2)
    results, calls = run(small, genomes)
    assert small.tried == [5, 2, 2, 1] and small.chunk == 2  # 5 failed -> chunks of 2 (balanced: 2, 2, 1)
    assert_same(results, whole, atol=1e-5, rtol=1e-5)
    assert sorted(c for c in calls if c.startswith("start")) == sorted(f"start {gm.id}" for gm in genomes)
    assert sorted(c for c in calls if c.startswith("done")) == sorted(f"done {gm.id}" for gm in genomes)
    with pytest.raises(torch.OutOfMemoryError):  # not even one network fits: the error is the user's to see
        run(_SmallDevice(make_ctx(dataset), fits=0), genomes[:1])


def test_population_equivalence_closed_gene(dataset):
    """``lifetime.closed_gene``: both trainers keep the weights into every gene at zero (generation 0's random
    circuit as well as an inherited one) and end with the same weights."""
    from engine.learngene import into_gene_masks

    ctx = make_ctx(dataset, lifetime={"closed_gene": True})
    genomes = make_genomes(ctx, 3)  # the first without a gene: a generation-0 birth
    pop, _ = run(PopulationTrainer(ctx), genomes)
    assert_same(pop, run(SequentialTrainer(ctx), genomes)[0])
    for gm, r in zip(genomes, pop, strict=True):
        masks = into_gene_masks(born(ctx, gm), gm.channels)
        assert sum(int(m.sum()) for m in masks.values()) > 0
        assert all(torch.count_nonzero(r.state[name][m]) == 0 for name, m in masks.items())


@pytest.mark.parametrize("arch", available_models())
def test_population_equivalence_gene_loss(dataset, arch):
    """``lifetime.gene_loss_weight``: the population's heads read each individual's own gene features for the
    second loss, as each network does alone (with a closed gene, the two levers together)."""
    ctx = make_ctx(dataset, arch, lifetime={"gene_loss_weight": 0.5, "closed_gene": True})
    genomes = make_genomes(ctx, 3)
    pop, _ = run(PopulationTrainer(ctx), genomes)
    assert_same(pop, run(SequentialTrainer(ctx), genomes)[0])
    plain, _ = run(PopulationTrainer(make_ctx(dataset, arch, lifetime={"closed_gene": True})), genomes)
    assert pop[0].train_loss > plain[0].train_loss  # the loss holds the second term
