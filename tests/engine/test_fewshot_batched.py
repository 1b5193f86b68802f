"""Episodes fine-tuned together as one population network score what they score one at a time (CPU, fp32)."""

from __future__ import annotations

import pytest
import torch

from engine.config import DataConfig
from engine.data import load_dataset
from engine.fewshot.baselines import PretrainSettings, pretrain
from engine.fewshot.batched import EpisodeBatcher, episode_batch
from engine.fewshot.evaluate import (
    EvalSettings,
    FinetuneSettings,
    builders,
    evaluate,
    make_episodes,
    run_episode,
)
from engine.learngene import extract, random_channels
from engine.models import create_model
from engine.seeding import torch_generator


@pytest.fixture(scope="module")
def glyphs():
    torch.set_num_threads(1)
    return load_dataset(DataConfig(dataset="glyphs", glyph_classes=20, glyph_images_per_class=24, image_size=32))


@pytest.fixture(scope="module")
def gene():
    m = create_model("conv4", 5, width=0.125, generator=torch.Generator().manual_seed(0))
    return extract(m, random_channels(m.gene_spec().widths, 0.45, torch.Generator().manual_seed(1)))


@pytest.fixture(scope="module")
def pre(glyphs):
    return pretrain(glyphs, PretrainSettings(arch="conv4", width=0.125, steps=3, batch_size=16))


def one_at_a_time(glyphs, s: EvalSettings, build, shots: int) -> list[dict[int, float]]:
    out = []
    for e, task in enumerate(make_episodes(glyphs, s, shots)):
        gen = torch_generator(s.seed, "init", shots, e)
        out.append(run_episode(build(gen), task, glyphs, s, gen))
    return out


PROTOCOLS = {
    "default": FinetuneSettings(lr=1e-2),
    "plain": FinetuneSettings.protocol("plain"),
    "sgd-head-only-no-augment": FinetuneSettings(optimizer="sgd", lr=0.05, body_lr_scale=0.0, augment=False,
                                                 weight_decay=5e-4),
}


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_each_episode_scores_as_it_does_alone(glyphs, gene, pre, protocol) -> None:
    """Per episode and budget, the batched accuracy equals run_episode's, for every kind of network."""
    s = EvalSettings(episodes=5, ways=3, shots=[2], queries=4, steps=[0, 2, 6], finetune=PROTOCOLS[protocol],
                     metric="cosine" if protocol == "plain" else "euclidean")
    methods = builders(s, ways=3, in_channels=3, image_size=32, gene=gene, pretrained=pre)
    tasks = make_episodes(glyphs, s, 2)
    with EpisodeBatcher(glyphs, s, "cpu", batch=3) as batcher:  # chunks of 3 and 2: a cached net and a new one
        for name in ("learngene", "pretrained", "pretrained_top20"):
            want = one_at_a_time(glyphs, s, methods[name], 2)
            got = batcher.run(methods[name], tasks, 2)
            assert got == want, name
    assert len({tuple(sorted(r.items())) for r in want}) > 1  # the episodes really differ


def test_evaluate_batched_equals_one_at_a_time(glyphs, gene, pre) -> None:
    """The whole report (every method, shots and budget) is the same with ``batch_episodes``."""
    s = EvalSettings(episodes=4, ways=3, shots=[1, 2], queries=3, steps=[0, 3], finetune=FinetuneSettings(lr=1e-2))
    methods = builders(s, ways=3, in_channels=3, image_size=32, gene=gene, gen0=gene, pretrained=pre)
    seen: list[tuple[str, int, int]] = []
    calls: list[tuple[str, int, int]] = []
    one = evaluate(glyphs, s, methods, batch_episodes=1)
    both = evaluate(glyphs, s, methods, batch_episodes=0, observer=lambda m, k, e, t: seen.append((m, k, e)),
                    progress=lambda label, done, total: calls.append((label, done, total)))
    assert both == one
    assert len(seen) == len(methods) * 2 * 4
    assert ("scratch 2-shot", 4, 4) in calls


def test_another_architecture_descendant(glyphs, gene) -> None:
    """A ResNet12 descendant (residual sums, shortcut convs) fused as one network: the same scores."""
    s = EvalSettings(episodes=3, ways=3, shots=[1], queries=3, steps=[0, 2], arch="resnet12",
                     finetune=FinetuneSettings(lr=1e-2, bn="train"))
    build = builders(s, ways=3, in_channels=3, image_size=32, gene=gene)["learngene"]
    with EpisodeBatcher(glyphs, s, "cpu", batch=3) as batcher:
        assert batcher.run(build, make_episodes(glyphs, s, 1), 1) == one_at_a_time(glyphs, s, build, 1)


def test_episode_batch_defaults() -> None:
    assert episode_batch(None, "cpu") == 1 and episode_batch(None, "cuda") == 0 and episode_batch(7, "cpu") == 7
    with pytest.raises(ValueError, match="batch_episodes"):
        episode_batch(-1, "cpu")


def test_bf16_runs_on_both_paths_and_stays_close(glyphs, gene) -> None:
    """bf16 autocast (what the GPU campaign uses) changes rounding only: the scores stay close to fp32's."""
    s = EvalSettings(episodes=4, ways=3, shots=[2], queries=4, steps=[0, 3], finetune=FinetuneSettings(lr=1e-2),
                     precision="bf16")
    methods = {"learngene": builders(s, ways=3, in_channels=3, image_size=32, gene=gene)["learngene"]}
    fp32 = evaluate(glyphs, EvalSettings(**{**s.__dict__, "precision": "fp32"}), methods)["results"]
    for batch in (1, 4):
        res = evaluate(glyphs, s, methods, batch_episodes=batch)
        assert res["settings"]["precision"] == "bf16"
        for a, b in zip(res["results"], fp32, strict=True):
            assert abs(a["mean"] - b["mean"]) <= 0.15
    with pytest.raises(ValueError, match="precision"):
        EvalSettings(precision="fp8").check()


@pytest.mark.gpu
def test_batched_on_cuda_matches_one_at_a_time(glyphs, gene, pre) -> None:
    """On CUDA (TF32 off, fp32): the batched scores match one at a time up to rare near-tie flips (grouped and
    plain cuDNN convolutions round differently), and bf16 runs."""
    torch.backends.cudnn.allow_tf32 = False
    try:
        s = EvalSettings(episodes=6, ways=3, shots=[2], queries=4, steps=[0, 3], finetune=FinetuneSettings(lr=1e-2))
        methods = builders(s, ways=3, in_channels=3, image_size=32, gene=gene, pretrained=pre)
        one = evaluate(glyphs, s, methods, device="cuda", batch_episodes=1)["results"]
        both = evaluate(glyphs, s, methods, device="cuda")["results"]  # auto: batched on CUDA
        for a, b in zip(one, both, strict=True):
            assert (a["method"], a["steps"]) == (b["method"], b["steps"])
            assert abs(a["mean"] - b["mean"]) <= 1 / (4 * 3 * 6) + 1e-9
        s.precision = "bf16"
        assert len(evaluate(glyphs, s, methods, device="cuda")["results"]) == len(one)
    finally:
        torch.backends.cudnn.allow_tf32 = True
