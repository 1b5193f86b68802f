"""Issue 17, item 7: sizes the machine cannot hold are refused before anything is built, and a stop request
(SIGTERM) is honoured while individuals are being born."""

from __future__ import annotations

import pytest
import torch
from fault_helpers import TINY

from engine.bounds import check_memory, estimate
from engine.config import ConfigError, load_config


@pytest.mark.parametrize("override,field", [
    ("evolution.population=1000000000", "evolution.population"),
    ("data.glyph_images_per_class=1000000000", "data.glyph_images_per_class"),
    ("lifetime.steps=100000000000", "lifetime.steps"),
])
def test_sizes_beyond_the_machine_are_refused_in_one_line(override, field):
    with pytest.raises(ConfigError, match=rf"^config error: {field}=\d+: the run would need about .* of memory"
                       ) as err:
        load_config(None, [*TINY, override])
    assert "\n" not in str(err.value)


def test_the_estimate_grows_with_the_population_and_fits_the_shipped_configs():
    small = load_config(None, TINY)
    assert sum(estimate(small).values()) < 200 * 1024 * 1024
    check_memory(small, available=1024 ** 3)
    with pytest.raises(ValueError, match="evolution.population"):
        check_memory(small.model_copy(update={"evolution": small.evolution.model_copy(
            update={"population": 10**6})}), available=1024 ** 3)


def test_a_stop_is_honoured_while_individuals_are_born(tmp_path):
    from engine import events as ev
    from engine.data import load_dataset
    from engine.evolution.loop import Evolution
    from engine.run.signals import RunSignals, StopRequested

    cfg = load_config(None, [*TINY, "evolution.population=5000"])
    signals = RunSignals()
    writer = ev.EventWriter(tmp_path / ev.EVENTS_FILE)
    evo = Evolution(cfg, tmp_path, dataset=load_dataset(cfg.data), device=torch.device("cpu"), writer=writer,
                    signals=signals)
    signals.request_stop()
    with pytest.raises(StopRequested):
        evo._first_generation()
    assert evo.next_id <= 1  # it stopped at the first birth, not after 5000
    writer.close()
