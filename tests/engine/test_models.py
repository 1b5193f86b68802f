"""The model registry and every registered network (tiny widths, CPU)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from engine.models import GeneNet, arch_spec, available_models, create_model, model_from_state

MODELS = available_models()


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_registry_lists_the_paper_architectures() -> None:
    assert {"conv4", "vgg11", "resnet12"} <= set(MODELS)


def test_unknown_model_names_the_available_ones() -> None:
    with pytest.raises(KeyError, match="available: .*conv4.*resnet12.*vgg11"):
        create_model("resnet9000", 5)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("size", [32, 84])
def test_forward_shapes(name: str, size: int) -> None:
    model = create_model(name, 7, width=0.25, image_size=size, generator=gen(0)).eval()
    x = torch.randn(2, 3, size, size, generator=gen(1))
    feats = model.features(x)
    assert isinstance(model, GeneNet) and model.arch == name
    assert feats.shape == (2, model.feature_dim)
    assert model(x).shape == (2, 7)
    assert torch.equal(model(x), model.head(feats))


def test_feature_dims_and_sizes() -> None:
    assert create_model("conv4", 5, generator=gen(0)).feature_dim == 256
    assert create_model("conv4", 5, image_size=84, generator=gen(0)).feature_dim == 1600
    assert create_model("resnet12", 5, width=0.5, generator=gen(0)).feature_dim == 320
    vgg = create_model("vgg11", 5, generator=gen(0))
    assert vgg.feature_dim == 512
    n = sum(p.numel() for p in vgg.parameters())
    assert 9.1e6 < n < 9.3e6


def test_one_channel_images() -> None:
    model = create_model("conv4", 3, in_channels=1, generator=gen(0))
    assert model.gene_spec().in_channels == 1
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 3)


@pytest.mark.parametrize("name", MODELS)
def test_create_model_is_deterministic_and_leaves_global_rng_alone(name: str) -> None:
    before = torch.random.get_rng_state()
    a = create_model(name, 5, width=0.25, generator=gen(3)).state_dict()
    b = create_model(name, 5, width=0.25, generator=gen(3)).state_dict()
    c = create_model(name, 5, width=0.25, generator=gen(4)).state_dict()
    assert torch.equal(before, torch.random.get_rng_state())
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    for k, v in a.items():  # BN starts at weight 1, bias 0, fresh statistics
        if k.endswith("running_var"):
            assert torch.equal(v, torch.ones_like(v))
        if k.endswith(("running_mean", "num_batches_tracked")):
            assert not v.any()


@pytest.mark.parametrize("name", MODELS)
def test_gene_spec_matches_the_modules(name: str) -> None:
    model = create_model(name, 5, width=0.25, generator=gen(0))
    spec = model.gene_spec()
    mods = dict(model.named_modules())
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert sorted(r.conv for r in spec.convs) == sorted(convs)  # every conv, once
    written = {r.out_slot for r in spec.convs}
    assert written == set(range(len(spec.widths)))
    for ref in spec.convs:
        conv = mods[ref.conv]
        assert conv.out_channels == spec.widths[ref.out_slot]
        assert conv.in_channels == spec.slot_width(ref.in_slot)
        assert tuple(conv.kernel_size) == ref.kernel
        assert isinstance(mods[ref.bn], nn.BatchNorm2d)
    # the topology is width-independent: arch_spec reproduces it from the widths alone
    assert arch_spec(name, spec.widths, spec.in_channels) == spec


def test_resnet12_residual_sum_shares_one_slot() -> None:
    spec = create_model("resnet12", 5, width=0.25, generator=gen(0)).gene_spec()
    assert len(spec.convs) == 16 and spec.widths[2::3] == [16, 40, 80, 160]
    by_name = {r.conv: r for r in spec.convs}
    for b in range(4):
        conv3, short = by_name[f"blocks.{b}.conv3"], by_name[f"blocks.{b}.shortcut_conv"]
        assert conv3.out_slot == short.out_slot == 3 * b + 2
        assert short.in_slot == by_name[f"blocks.{b}.conv1"].in_slot == 3 * b - 1
        assert short.kernel == (1, 1)


@pytest.mark.parametrize("name", MODELS)
def test_reset_head_is_fresh_and_deterministic(name: str) -> None:
    model = create_model(name, 5, width=0.25, generator=gen(0))
    model.reset_head(9, generator=gen(5))
    w = model.head.weight.detach().clone()
    assert model.head.out_features == 9 and model(torch.zeros(1, 3, 32, 32)).shape == (1, 9)
    model.reset_head(9, generator=gen(5))
    assert torch.equal(w, model.head.weight)


@pytest.mark.parametrize("name", MODELS)
def test_functional_call(name: str) -> None:
    model = create_model(name, 5, width=0.25, generator=gen(0)).eval()
    x = torch.randn(2, 3, 32, 32, generator=gen(1))
    params = {k: v * 2 for k, v in model.named_parameters()}
    out = torch.func.functional_call(model, params, (x,))
    assert out.shape == (2, 5) and not torch.allclose(out, model(x))


def test_bad_sizes_are_value_errors() -> None:
    with pytest.raises(ValueError):
        create_model("conv4", 0)
    with pytest.raises(ValueError, match="too small"):
        create_model("resnet12", 5, image_size=8)


@pytest.mark.parametrize("name", available_models())
def test_model_from_state_holds_the_state_without_init(name: str) -> None:
    """The trained network around a state: its tensors are the state's (no copy), and it computes the same."""
    src = create_model(name, 5, width=0.25, generator=torch.Generator().manual_seed(3)).eval()
    state = {k: v.clone() for k, v in src.state_dict().items()}
    model = model_from_state(name, 5, state, width=0.25).eval()
    assert model.arch == name
    assert all(model.state_dict()[k].data_ptr() == v.data_ptr() for k, v in state.items())
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(model(x), src(x), rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="Missing key"):
        model_from_state(name, 5, {k: v for k, v in state.items() if not k.startswith("head")}, width=0.25)
