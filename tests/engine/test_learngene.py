"""Learngenes over every registered model: extract, inherit (birth), masks, fraction, files."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from engine.learngene import (
    Learngene,
    check_channels,
    extract,
    gene_fraction,
    gene_masks,
    inherit,
    load_learngene,
    random_channels,
    save_learngene,
)
from engine.models import GeneNet, available_models, create_model

MODELS = available_models()
WIDTH = 0.25


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def fresh(name: str, seed: int, width: float = WIDTH) -> GeneNet:
    return create_model(name, 5, width=width, generator=gen(seed))


def gene_of(name: str, seed: int = 0, ratio: float = 0.45) -> tuple[GeneNet, Learngene]:
    model = fresh(name, seed)
    return model, extract(model, random_channels(model.gene_spec().widths, ratio, gen(seed + 100)))


def in_idx(spec, slot: int, channels: list[list[int]]) -> list[int]:
    return list(range(spec.in_channels)) if slot == -1 else channels[slot]


def conv_activations(model: GeneNet, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Output of every conv (and its BN) in one forward pass, via forward hooks."""
    out: dict[str, torch.Tensor] = {}
    mods = dict(model.named_modules())
    hooks = []
    for ref in model.gene_spec().convs:
        for path in (ref.conv, ref.bn):
            hooks.append(mods[path].register_forward_hook(
                lambda _m, _i, o, path=path: out.__setitem__(path, o.detach().clone())))
    model(x)
    for h in hooks:
        h.remove()
    return out


# --- channel sets and fraction -------------------------------------------------------------------------------

def test_random_channels_sizes_and_determinism() -> None:
    widths = [16, 40, 3, 1]
    a = random_channels(widths, 0.45, gen(1))
    assert a == random_channels(widths, 0.45, gen(1))
    assert a != random_channels(widths, 0.45, gen(2))
    assert [len(c) for c in a] == [7, 18, 1, 1]
    for c, w in zip(a, widths, strict=True):
        assert c == sorted(set(c)) and 0 <= c[0] and c[-1] < w
    with pytest.raises(ValueError, match="ratio"):
        random_channels(widths, 0.0, gen(1))


def test_check_channels_rejects_bad_sets() -> None:
    spec = fresh("conv4", 0).gene_spec()  # 4 slots of 16
    ok = [[0, 1]] * 4
    assert check_channels(spec, [[1, 0]] + ok[1:])[0] == [0, 1]
    for bad, msg in ([ok[:3], "4 channel sets"], [[[]] + ok[1:], "empty"], [[[1, 1]] + ok[1:], "duplicate"],
                     [[[16]] + ok[1:], r"\[0, 16\)"]):
        with pytest.raises(ValueError, match=msg):
            check_channels(spec, bad)


@pytest.mark.parametrize("name", MODELS)
def test_fraction_matches_an_independent_count(name: str) -> None:
    model, gene = gene_of(name)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    total = sum(m.weight.numel() for m in convs)
    in_gene = sum(t.numel() for k, t in gene.tensors.items() if t.dim() == 4)
    assert gene.fraction == pytest.approx(in_gene / total, rel=1e-12)
    assert gene_fraction(model.gene_spec(), gene.channels) == gene.fraction
    full = [list(range(w)) for w in gene.widths]
    assert gene_fraction(model.gene_spec(), full) == 1.0


@pytest.mark.parametrize("name", MODELS)
def test_ratio_sqrt_fraction_gives_that_fraction(name: str) -> None:
    for seed in range(3):
        _, gene = gene_of(name, seed, ratio=math.sqrt(0.2))
        assert abs(gene.fraction - 0.2) <= 0.03, gene.fraction


# --- extract / inherit -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", MODELS)
def test_round_trip_keeps_gene_weights_exactly(name: str) -> None:
    _, gene = gene_of(name)
    child = inherit(fresh(name, 7), gene)
    again = extract(child, gene.channels)
    assert again.channels == gene.channels and again.widths == gene.widths
    assert gene.tensors.keys() == again.tensors.keys()
    assert all(torch.equal(gene.tensors[k], again.tensors[k]) for k in gene.tensors)
    assert all(t.device.type == "cpu" and t.dtype == torch.float32 for t in gene.tensors.values())


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("mode", ["random", "scaled", "zero"])
def test_inherit_closes_the_circuit_and_sets_the_rest(name: str, mode: str) -> None:
    _, gene = gene_of(name)
    base = fresh(name, 7)
    child = inherit(fresh(name, 7), gene, nongene_init=mode, nongene_scale=0.1)
    spec, mods, base_mods = child.gene_spec(), dict(child.named_modules()), dict(base.named_modules())
    for ref in spec.convs:
        w, w0 = mods[ref.conv].weight.detach(), base_mods[ref.conv].weight.detach()
        s_out, s_in = gene.channels[ref.out_slot], in_idx(spec, ref.in_slot, gene.channels)
        rows = w[s_out]
        assert torch.equal(rows[:, s_in], gene.tensors[f"{ref.conv}.weight"])
        others = [i for i in range(w.shape[1]) if i not in s_in]
        assert not rows[:, others].any(), f"non-gene -> gene weights in {ref.conv}"
        non_rows = [o for o in range(w.shape[0]) if o not in s_out]
        expected = {"random": w0[non_rows], "scaled": w0[non_rows] * 0.1, "zero": torch.zeros_like(w0[non_rows])}
        assert torch.equal(w[non_rows], expected[mode])
        bn = mods[ref.bn]
        for key in ("weight", "bias", "running_mean", "running_var"):
            assert torch.equal(getattr(bn, key)[s_out], gene.tensors[f"{ref.bn}.{key}"])
    assert torch.equal(child.head.weight, base.head.weight)  # the head stays fresh


@pytest.mark.parametrize("name", MODELS)
def test_gene_activations_at_birth_equal_the_source(name: str) -> None:
    # a source whose circuit is closed: it was itself born from a gene; then perturb its non-gene weights
    _, gene0 = gene_of(name)
    with torch.no_grad():  # give the source's gene BN non-trivial statistics
        for k, t in gene0.tensors.items():
            if k.endswith("running_var"):
                t.uniform_(0.5, 2.0, generator=gen(5))
            elif k.endswith(("running_mean", ".bias")) and t.dim() == 1:
                t.normal_(0, 0.3, generator=gen(6))
    source = inherit(fresh(name, 11), gene0)
    child = inherit(fresh(name, 12), extract(source, gene0.channels))
    spec, ch = source.gene_spec(), gene0.channels
    x = torch.randn(4, 3, 32, 32, generator=gen(9))
    for train in (False, True):
        source.train(train)
        child.train(train)
        a, b = conv_activations(source, x), conv_activations(child, x)
        for ref in (spec.convs[0], spec.convs[-1], *spec.convs[1:-1]):
            for path in (ref.conv, ref.bn):
                torch.testing.assert_close(b[path][:, ch[ref.out_slot]], a[path][:, ch[ref.out_slot]],
                                           rtol=1e-6, atol=1e-6, msg=f"{path} (train={train})")
        # negative control: the non-gene channels do differ, so the check above has teeth
        last = spec.convs[-1].conv
        non = [c for c in range(a[last].shape[1]) if c not in ch[spec.convs[-1].out_slot]]
        assert not torch.allclose(a[last][:, non], b[last][:, non])


@pytest.mark.parametrize("name", MODELS)
def test_an_open_source_circuit_is_not_reproduced(name: str) -> None:
    # control for the test above: a plain random source lets non-gene channels feed its gene channels
    source, gene = gene_of(name)
    child = inherit(fresh(name, 12), gene)
    source.eval(), child.eval()
    x = torch.randn(4, 3, 32, 32, generator=gen(9))
    a, b = conv_activations(source, x), conv_activations(child, x)
    first, last = source.gene_spec().convs[0], source.gene_spec().convs[-1]
    s_first, s_last = gene.channels[first.out_slot], gene.channels[last.out_slot]
    assert torch.equal(a[first.conv][:, s_first], b[first.conv][:, s_first])  # reads the image: same input
    assert not torch.allclose(a[last.conv][:, s_last], b[last.conv][:, s_last], atol=1e-4)


def test_inherit_rejects_a_mismatched_network() -> None:
    _, gene = gene_of("conv4")
    with pytest.raises(ValueError, match="vgg11"):
        inherit(fresh("vgg11", 1), gene)
    with pytest.raises(ValueError, match="widths"):
        inherit(fresh("conv4", 1, width=0.5), gene)
    with pytest.raises(ValueError, match="nongene_init"):
        inherit(fresh("conv4", 1), gene, nongene_init="ones")  # type: ignore[arg-type]
    broken = Learngene(gene.arch, gene.in_channels, gene.widths, gene.channels, dict(gene.tensors))
    broken.tensors.pop("blocks.2.conv.weight")
    with pytest.raises(ValueError, match="blocks.2.conv.weight"):
        inherit(fresh("conv4", 1), broken)


@pytest.mark.parametrize("name", MODELS)
def test_gene_masks_cover_exactly_the_gene_parameters(name: str) -> None:
    _, gene = gene_of(name)
    child = inherit(fresh(name, 3), gene)
    masks = gene_masks(child, gene.channels)
    params = dict(child.named_parameters())
    assert masks.keys() == params.keys()
    assert all(m.dtype == torch.bool and m.shape == params[n].shape for n, m in masks.items())
    assert sum(int(m.sum()) for m in masks.values()) == gene.num_parameters
    assert not masks["head.weight"].any() and not masks["head.bias"].any()
    for ref in child.gene_spec().convs:
        w, m = params[f"{ref.conv}.weight"].detach(), masks[f"{ref.conv}.weight"]
        assert torch.equal(w[m], gene.tensors[f"{ref.conv}.weight"].flatten())
        rows = torch.zeros(w.shape[0], dtype=torch.bool)
        rows[gene.channels[ref.out_slot]] = True
        assert not w[rows][~m[rows]].any()  # in gene rows, everything outside the mask is 0
    assert all(torch.equal(masks[k], v) for k, v in gene_masks(child, gene).items())  # a Learngene works too


# --- files -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip(name: str, tmp_path: Path) -> None:
    _, gene = gene_of(name)
    manifest = {"fitness": 0.75, "lineage": ["g0-i3", "g1-i0"], "config_hash": "abc", "version": "0.1.0"}
    st, js = save_learngene(gene, tmp_path / "best", manifest)
    assert (st.name, js.name) == ("best.safetensors", "best.json") and st.exists() and js.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.json", "best.safetensors"]  # no temp files left
    header_len = struct.unpack("<Q", st.read_bytes()[:8])[0]  # safetensors: u64 header length, JSON header
    assert json.loads(st.read_bytes()[8:8 + header_len])["__metadata__"]["format"] == "gtl-learngene"
    loaded, meta = load_learngene(tmp_path / "best.safetensors")
    assert loaded.arch == name and loaded.channels == gene.channels and loaded.widths == gene.widths
    assert loaded.tensors.keys() == gene.tensors.keys()
    assert all(torch.equal(loaded.tensors[k], gene.tensors[k]) for k in gene.tensors)
    for key in ("fitness", "lineage", "config_hash", "version", "arch", "in_channels", "widths", "channels",
                "fraction", "format_version"):
        assert key in meta
    assert meta["fraction"] == pytest.approx(gene.fraction) and meta["fitness"] == 0.75
    assert json.loads(js.read_text()) == meta
    assert load_learngene(tmp_path / "best.json")[1] == meta


def test_dotted_names_and_overwrite(tmp_path: Path) -> None:
    _, gene = gene_of("conv4")
    st, js = save_learngene(gene, tmp_path / "sub" / "gen3.best", {"fitness": 0.1})
    assert (st.name, js.name) == ("gen3.best.safetensors", "gen3.best.json")
    save_learngene(gene, tmp_path / "sub" / "gen3.best", {"fitness": 0.2})
    assert load_learngene(tmp_path / "sub" / "gen3.best")[1]["fitness"] == 0.2
    with pytest.raises(ValueError, match="JSON"):
        save_learngene(gene, tmp_path / "x", {"bad": object()})


def test_bad_files_are_value_errors(tmp_path: Path) -> None:
    _, gene = gene_of("conv4")
    _, other = gene_of("conv4", seed=1)
    with pytest.raises(ValueError, match="cannot read"):
        load_learngene(tmp_path / "missing")
    st, js = save_learngene(gene, tmp_path / "a", {})

    blob, text = st.read_bytes(), js.read_text()
    st.write_bytes(blob[: len(blob) // 2])  # truncated weights
    with pytest.raises(ValueError, match="checksum"):
        load_learngene(tmp_path / "a")
    meta = json.loads(text)
    meta.pop("weights_sha256")
    js.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="corrupt safetensors"):
        load_learngene(tmp_path / "a")

    st.write_bytes(blob)
    js.write_text(text[: len(text) // 2])  # truncated manifest
    with pytest.raises(ValueError, match="JSON"):
        load_learngene(tmp_path / "a")
    js.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="not a learngene"):
        load_learngene(tmp_path / "a")
    js.write_text(text)
    st.unlink()
    with pytest.raises(ValueError, match="cannot read"):
        load_learngene(tmp_path / "a")

    # weights that do not fit the channel sets (checksum removed so only the shape check can catch it)
    save_file(other.tensors | {"blocks.0.conv.weight": torch.zeros(2, 3, 3, 3)}, str(st))
    js.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="blocks.0.conv.weight"):
        load_learngene(tmp_path / "a")
    meta["arch"] = "nonet"
    js.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="unknown architecture"):
        load_learngene(tmp_path / "a")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_inherit_and_masks_on_cuda() -> None:
    _, gene = gene_of("resnet12")
    child = inherit(fresh("resnet12", 3).cuda(), gene)
    again = extract(child, gene.channels)
    assert all(torch.equal(gene.tensors[k], again.tensors[k]) for k in gene.tensors)
    masks = gene_masks(child, gene)
    assert all(m.device.type == "cuda" for m in masks.values())
