"""The evaluation cache keys each method by exactly the inputs its result depends on."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch

from engine.fewshot.cache import ResultCache


def gene(seed: int, channels: list[list[int]]) -> SimpleNamespace:
    g = torch.Generator().manual_seed(seed)
    return SimpleNamespace(arch="conv4", in_channels=3, widths=[8, 8], channels=channels,
                           tensors={"0.weight": torch.randn(len(channels[0]), 3, 3, 3, generator=g)})


def cache(tmp: Path, g: SimpleNamespace, pre: torch.nn.Module | None = None, episodes: int = 10) -> ResultCache:
    return ResultCache(tmp, settings={"episodes": episodes}, data={"dataset": "glyphs"}, version="1", gene=g,
                       gen0=g, pretrained=pre)


def test_keys_follow_the_inputs_of_each_method(tmp_path: Path) -> None:
    pre = torch.nn.Linear(2, 2)
    a, b = gene(0, [[0, 1], [2, 3]]), gene(1, [[4, 5], [6, 7]])  # other weights, other channels, same counts
    ca, cb = cache(tmp_path, a, pre), cache(tmp_path, b, pre)
    assert ca.key("scratch") == cb.key("scratch")  # the learngene's architecture only
    assert ca.key("pretrained_top20") == cb.key("pretrained_top20")  # its channel counts only
    assert ca.key("learngene") != cb.key("learngene") and ca.key("gen0") != cb.key("gen0")
    wider = gene(0, [[0, 1, 2], [2, 3]])
    assert cache(tmp_path, wider, pre).key("pretrained_random20") != ca.key("pretrained_random20")
    other_pre = torch.nn.Linear(2, 2)
    assert cache(tmp_path, a, other_pre).key("pretrained") != ca.key("pretrained")
    assert cache(tmp_path, a, pre, episodes=11).key("scratch") != ca.key("scratch")  # settings are in every key
    assert len({ca.key(m) for m in ("scratch", "learngene", "gen0", "pretrained")}) == 4


def test_put_then_get_and_a_damaged_entry_is_a_miss(tmp_path: Path) -> None:
    c = cache(tmp_path, gene(0, [[0], [1]]))
    rows = [{"method": "scratch", "shots": 5, "steps": 0, "mean": 0.4, "ci95": 0.02, "episodes": 10}]
    assert c.get("scratch") is None
    path = c.put("scratch", rows)
    assert c.get("scratch") == rows
    path.write_text("{not json")
    assert c.get("scratch") is None
    path.write_text('{"results": [{"method": "learngene"}]}')  # another method's rows under this key
    assert c.get("scratch") is None


def test_the_monitor_knows_every_fine_tuning_protocol() -> None:
    """gtl_tui.evaluations names evaluation files by protocol without importing torch: its list is the engine's."""
    from engine.fewshot.evaluate import PROTOCOLS
    from gtl_tui.evaluations import PROTOCOLS as NAMED

    assert NAMED[0] == "default" and set(NAMED) == set(PROTOCOLS)
