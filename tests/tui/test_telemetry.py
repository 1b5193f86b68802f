"""The overview's timing line: where each generation's wall time went, with the training share's history."""

from __future__ import annotations

import dataclasses

from engine.events import GenerationCompleted
from gtl_tui.scripted import scripted_run
from gtl_tui.state import RunState
from gtl_tui.widgets.elite import EliteView


def test_timing_line_gives_the_split_and_the_history():
    events = scripted_run(population=4, generations=3)
    assert EliteView.timing_line(RunState()) is None
    st = RunState()
    st.apply_all(events)
    assert EliteView.timing_line(st) is None  # a log without timing (an older engine): nothing shown
    timed = [dataclasses.replace(e, timing={"wall": 10.0, "train": 2.0 + 3 * e.generation, "host": 1.0,
                                            "wait": 0.5, "peak_mem": 3 * 2**30})
             if isinstance(e, GenerationCompleted) else e for e in events]
    st = RunState()
    st.apply_all(timed)
    line = EliteView.timing_line(st).plain
    assert "train 80%  host 10%  wait 5% of" in line and "peak 3.0 GiB" in line
    assert line.endswith("g0-g2 ▂▅▇")
