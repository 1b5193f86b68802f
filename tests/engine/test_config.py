from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.config import ConfigError, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_defaults_have_descriptions():
    from engine.config import Config

    for section_name, section in Config.model_fields.items():
        if section_name == "name":
            continue
        model = next(a for a in (section.annotation, *getattr(section.annotation, "__args__", ()))
                     if hasattr(a, "model_fields"))  # an optional section: NotifyConfig | None
        for fname, field in model.model_fields.items():
            assert field.description, f"{section_name}.{fname} has no description"


def test_quickstart_loads():
    cfg = load_config(CONFIGS / "quickstart.toml")
    assert cfg.name == "quickstart" and cfg.data.dataset == "glyphs"


@pytest.mark.parametrize("name", ["cifar-fs-vgg11.toml", "miniimagenet-resnet12.toml", "cifar-fs-conv4-cpu.toml"])
def test_shipped_configs_parse(name, tmp_path):
    cfg = load_config(CONFIGS / name, [f"data.root={str(tmp_path)!r}"])
    assert cfg.name == name.removesuffix(".toml") and cfg.data.dataset in ("cifar-fs", "miniimagenet")


def test_override_types():
    cfg = load_config(None, ["evolution.population=5", "run.device=cpu", "data.augment=false", "lifetime.lr=0.1"])
    assert cfg.evolution.population == 5 and cfg.run.device == "cpu" and cfg.data.augment is False
    assert cfg.lifetime.lr == 0.1


def test_config_round_trip(tmp_path):
    cfg = load_config(CONFIGS / "quickstart.toml", ["evolution.population=4"])
    p = write(tmp_path, cfg.to_toml())
    again = load_config(p)
    assert again.hash() == cfg.hash()


@pytest.mark.parametrize(
    "text,overrides,needle",
    [
        ("[nope]\nx = 1\n", [], "nope: unknown section"),
        ("[run]\nfoo = 1\n", [], "run.foo: unknown key"),
        ("[run\nseed = 1", [], "broken TOML"),
        ("", ["evolution.population=1"], "evolution: population must be >= 2"),
        ("", ["evolution.tournament_size=0"], "tournament_size must be between 1 and population"),
        ("", ["evolution.population=4", "evolution.tournament_size=5"], "tournament_size must be between"),
        ("", ["task.ways=65"], "task.ways (65) exceeds the 64 meta-train classes"),
        ("", ["learngene.fraction=1.5"], "fraction must be in (0, 1)"),
        ("", ["learngene.fraction=0"], "fraction must be in (0, 1)"),
        ("", ["data.dataset='cifar-fs'", "data.root='/does/not/exist'"], "does not exist"),
        ("", ["model.arch='alexnet'"], "arch 'alexnet' is unknown"),
        ("", ["run.device='tpu'"], "device must be"),
        ("", ["lifetime.steps='many'"], "lifetime.steps"),
        ("", ["evolution"], "expected section.key=value"),
    ],
)
def test_bad_values_give_one_line(tmp_path, text, overrides, needle):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), overrides)
    msg = str(err.value)
    assert needle in msg, msg
    assert "\n" not in msg


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/nope/missing.toml")


def test_relative_data_root_is_made_absolute(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, ["data.dataset='cifar-fs'", "data.root='data'"])
    assert cfg.data.root == str(tmp_path / "data")


def test_a_misspelt_key_or_section_gets_a_suggestion():
    from engine.config import ConfigError, load_config

    for override, hint in (("evolution.populaton=8", "did you mean evolution.population?"),
                           ("evolutoin.population=8", "did you mean evolution?"),
                           ("lifetime.stesp=5", "did you mean lifetime.steps?")):
        with pytest.raises(ConfigError, match=re.escape(hint)):
            load_config(None, [override])
    with pytest.raises(ConfigError) as err:
        load_config(None, ["evolution.zzzzzz=1"])
    assert "did you mean" not in str(err.value)


def test_fields_added_later_keep_the_hashes_of_older_runs():
    """A field in LATER_FIELDS counts in the hash only away from its default (the one older runs computed with):
    the engine's placement on a Ray cluster (run.ray_engine_cpus/gpus) leaves an existing run's hash as it was."""
    from engine.config import LATER_FIELDS

    cfg = load_config(None, [])
    for (section, key), default in LATER_FIELDS.items():
        assert getattr(getattr(cfg, section), key) == default, (section, key)
    data = cfg.to_dict()
    for section, key in LATER_FIELDS:
        del data[section][key]  # a config written before the field existed
    import hashlib
    import json

    data = {k: v for k, v in data.items() if k != "notify"}
    data["run"] = {k: v for k, v in data["run"].items() if k != "gene_history"}
    assert cfg.hash() == hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    assert load_config(None, ["run.ray_engine_cpus=2"]).hash() != cfg.hash()
    assert load_config(None, ["run.ray_engine_gpus=1"]).hash() != cfg.hash()
