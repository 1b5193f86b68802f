"""Selection and mutation operators."""

from __future__ import annotations

import numpy as np
import pytest

from engine.evolution.mutation import jaccard_diversity, mutate_channels, size_band
from engine.evolution.selection import select_parents, tournament_round


def test_tournament_winner_is_fittest_of_its_group():
    rng = np.random.default_rng(0)
    fitness = rng.random(17).tolist()
    for t in tournament_round(fitness, 3, rng):
        assert fitness[t.winner] == max(fitness[i] for i in t.group)
    groups = [i for t in tournament_round(fitness, 3, rng) for i in t.group]
    assert sorted(groups) == list(range(17))  # each individual in exactly one group per round


def test_select_parents_count_and_best_always_wins_its_group():
    fitness = [0.1, 0.9, 0.5, 0.3, 0.7, 0.2]
    res = select_parents(fitness, n=10, size=3, rng=np.random.default_rng(1))
    assert len(res) == 10
    assert all(t.winner == 1 for t in res if 1 in t.group)
    # the worst never wins a group of more than one
    assert all(t.winner != 0 for t in res if len(t.group) > 1)


def test_tournament_size_one_selects_everyone():
    res = select_parents([0.3, 0.2, 0.1], n=3, size=1, rng=np.random.default_rng(0))
    assert sorted(t.winner for t in res) == [0, 1, 2]


@pytest.mark.parametrize("seed", range(5))
def test_mutations_stay_in_band_and_are_recorded(seed):
    rng = np.random.default_rng(seed)
    widths = [16, 32, 64, 64]
    band = (0.35, 0.55)
    chans = [sorted(rng.choice(w, size=int(0.45 * w), replace=False).tolist()) for w in widths]
    for _ in range(200):
        new, records = mutate_channels(chans, widths, rate=0.8, max_channels=3,
                                       op_weights={"swap": 1, "add": 1, "drop": 1}, ratio_band=band, rng=rng)
        for layer, (c, w) in enumerate(zip(new, widths, strict=True)):
            lo, hi = size_band(w, band)
            assert lo <= len(c) <= hi, (layer, len(c), lo, hi)
            assert c == sorted(set(c)) and all(0 <= x < w for x in c)
        for r in records:  # replaying the records turns the old sets into the new ones
            old = set(chans[r["layer"]])
            assert set(r["removed"]) <= old and not (set(r["added"]) & old)
            assert (old - set(r["removed"])) | set(r["added"]) == set(new[r["layer"]])
            assert r["op"] in ("swap", "add", "drop")
            if r["op"] == "swap":
                assert len(r["added"]) == len(r["removed"]) > 0
        chans = new


def test_rate_zero_changes_nothing():
    chans = [[0, 1, 2], [3, 4]]
    new, rec = mutate_channels(chans, [8, 8], rate=0.0, max_channels=2, op_weights={"swap": 1, "add": 1, "drop": 1},
                               ratio_band=(0.2, 0.6), rng=np.random.default_rng(0))
    assert new == chans and rec == []


def test_diversity():
    a = [[0, 1], [2, 3]]
    assert jaccard_diversity([a, a]) == 0.0
    assert jaccard_diversity([a, [[4, 5], [6, 7]]]) == 1.0
