"""Few-shot evaluation on tiny glyph data: every method, the JSON shape, the CI, identical episodes."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest
import torch

from engine.config import DataConfig
from engine.data import load_dataset
from engine.fewshot.baselines import PretrainSettings, load_pretrained, pretrain, save_pretrained
from engine.fewshot.evaluate import (
    METHODS,
    EvalSettings,
    FinetuneSettings,
    builders,
    evaluate,
    make_episodes,
    mean_ci95,
)
from engine.learngene import extract, random_channels
from engine.models import create_model


@pytest.fixture(scope="module")
def glyphs():
    return load_dataset(DataConfig(dataset="glyphs", glyph_classes=20, glyph_images_per_class=24, image_size=32))


@pytest.fixture(scope="module")
def gene():
    m = create_model("conv4", 5, width=0.125, generator=torch.Generator().manual_seed(0))
    return extract(m, random_channels(m.gene_spec().widths, 0.45, torch.Generator().manual_seed(1)))


@pytest.fixture(scope="module")
def pre(glyphs):
    return pretrain(glyphs, PretrainSettings(arch="conv4", width=0.125, steps=3, batch_size=16))


def test_mean_ci95_matches_the_formula() -> None:
    v = [0.2, 0.4, 0.9, 0.5]
    m, ci = mean_ci95(v)
    assert m == pytest.approx(0.5)
    assert ci == pytest.approx(1.96 * statistics.stdev(v) / math.sqrt(4))
    assert mean_ci95([0.3]) == (0.3, 0.0)


def test_all_methods_same_episodes_and_json_shape(glyphs, gene, pre) -> None:
    s = EvalSettings(episodes=2, ways=3, shots=[1, 2], queries=3, steps=[0, 2],
                     finetune=FinetuneSettings(lr=1e-2))
    seen: dict[tuple[str, int, int], tuple[torch.Tensor, torch.Tensor]] = {}
    report = evaluate(glyphs, s, builders(s, ways=3, in_channels=3, image_size=32, gene=gene, gen0=gene,
                                          pretrained=pre),
                      observer=lambda m, k, e, t: seen.__setitem__((m, k, e), (t.train_x, t.heldout_x)))
    res = report["results"]
    assert {r["method"] for r in res} == set(METHODS)
    assert len(res) == len(METHODS) * 2 * 2
    for r in res:
        assert set(r) >= {"method", "shots", "steps", "mean", "ci95"}
        assert 0 <= r["mean"] <= 1 and r["ci95"] >= 0 and r["episodes"] == 2
    for k in (1, 2):  # every method got exactly the same support and query images
        for e in range(2):
            ref = seen[("learngene", k, e)]
            for m in METHODS:
                assert torch.equal(seen[(m, k, e)][0], ref[0]) and torch.equal(seen[(m, k, e)][1], ref[1])
    assert report["settings"]["shots"] == [1, 2] and report["settings"]["methods"] == list(METHODS)
    # episodes are a function of the settings alone
    again = make_episodes(glyphs, s, 2)
    assert torch.equal(again[1].train_x, seen[("scratch", 2, 1)][0])
    assert all(c in glyphs.splits["test"] for t in again for c in t.classes)


def test_zero_steps_equals_a_prototype_head(glyphs, gene) -> None:
    """Fine-tuning starts at the nearest-class-mean classifier: a 1-step budget with lr 0 scores like 0 steps."""
    s = EvalSettings(episodes=3, ways=3, shots=[2], queries=4, steps=[0, 1],
                     finetune=FinetuneSettings(lr=0.0, augment=False))
    report = evaluate(glyphs, s, {"learngene": builders(s, ways=3, in_channels=3, image_size=32,
                                                        gene=gene)["learngene"]})
    by = {r["steps"]: r["mean"] for r in report["results"]}
    assert by[0] == pytest.approx(by[1])


def test_pretrained_round_trip(tmp_path: Path, pre) -> None:
    st, js = save_pretrained(pre, tmp_path / "p", PretrainSettings(arch="conv4", width=0.125, steps=3),
                             dataset="glyphs", image_size=32)
    model, manifest = load_pretrained(tmp_path / "p.json")
    assert manifest["settings"]["arch"] == "conv4"
    for (k, a), b in zip(pre.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    js.write_text("{}")
    with pytest.raises(ValueError, match="not a pretrained-network manifest"):
        load_pretrained(tmp_path / "p")


def test_bad_settings(glyphs) -> None:
    with pytest.raises(ValueError, match="shots"):
        evaluate(glyphs, EvalSettings(shots=[0]), {})
    with pytest.raises(ValueError, match="classes"):
        make_episodes(glyphs, EvalSettings(ways=10), 1)


def test_plain_protocol_is_a_random_head_whole_network_adam_with_bn_training(glyphs, gene) -> None:
    """``protocol("plain")`` fine-tunes exactly as the usual hand-written loop does."""
    from engine.data import augment, normalize
    from engine.fewshot.evaluate import run_episode
    from engine.seeding import torch_generator

    ft = FinetuneSettings.protocol("plain")
    assert (ft.optimizer, ft.lr, ft.body_lr_scale, ft.head_init, ft.bn, ft.name) == \
        ("adam", 1e-3, 1.0, "random", "train", "plain")
    assert FinetuneSettings.protocol("default") == FinetuneSettings()
    assert FinetuneSettings.protocol("plain", bn="frozen", lr=None).bn == "frozen"  # overrides; None is unset
    with pytest.raises(ValueError, match="unknown fine-tuning protocol 'magic'"):
        FinetuneSettings.protocol("magic")
    s = EvalSettings(episodes=1, ways=3, shots=[2], queries=3, steps=[0, 2, 4], finetune=ft)
    build = builders(s, ways=3, in_channels=3, image_size=32, gene=gene)["learngene"]
    task = make_episodes(glyphs, s, 2)[0]
    gen = torch_generator(0, "test-plain")
    got = run_episode(build(gen), task, glyphs, s, gen)
    # the reference: a fresh head, every parameter in one Adam at 1e-3, the whole network in training mode
    gen = torch_generator(0, "test-plain")
    model = build(gen)
    model.reset_head(3, gen)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xs, xq = (normalize(x, glyphs.mean, glyphs.std) for x in (task.train_x, task.heldout_x))
    want = {}
    for step in range(1, 5):
        model.train()
        loss = torch.nn.functional.cross_entropy(model(augment(xs, gen)), task.train_y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step in (2, 4):
            model.eval()
            with torch.no_grad():
                want[step] = float((model(xq).argmax(1) == task.heldout_y).float().mean())
    assert set(got) == {0, 2, 4}
    assert {k: got[k] for k in (2, 4)} == want
