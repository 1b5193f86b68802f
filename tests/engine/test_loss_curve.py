"""Each lifetime's training-loss curve: in the log, the same from either trainer, shown in the monitor."""

from __future__ import annotations

import torch

from engine.evolution.lifetime import LOSS_CURVE_POINTS, curve_means, curve_segments


def test_curve_stretches_cover_every_step_once_in_order():
    for steps in (1, 5, 16, 40, 101):
        seg = curve_segments(steps).tolist()
        n = min(steps, LOSS_CURVE_POINTS)
        assert seg == sorted(seg) and set(seg) == set(range(n)) and len(seg) == steps
    sums = torch.zeros(LOSS_CURVE_POINTS, 2)  # 40 steps, two individuals: losses 0..39 and all ones
    for step, s in enumerate(curve_segments(40).tolist()):
        sums[s] += torch.tensor([float(step), 1.0])
    first, second = curve_means(sums, 40)
    assert first[:3] == [1.0, 3.5, 6.0] and second == [1.0] * LOSS_CURVE_POINTS


def test_a_run_logs_each_lifetime_curve(tmp_path, tiny):
    from engine.config import load_config
    from engine.events import EVENTS_FILE, IndividualEvaluated, read_events
    from engine.run.runner import create_run_dir, run_in_dir

    run = create_run_dir(load_config(None, tiny + ["lifetime.steps=20"]), tmp_path, "r")
    run_in_dir(run)
    evaluated = [e for e in read_events(run / EVENTS_FILE)[0] if isinstance(e, IndividualEvaluated)]
    assert evaluated and all(e.loss_curve is not None and len(e.loss_curve) == 16 for e in evaluated)
    assert all(all(x > 0 for x in e.loss_curve) for e in evaluated)


def test_the_learngene_view_shows_the_curve():
    from gtl_tui.scripted import scripted_run
    from gtl_tui.state import RunState
    from gtl_tui.widgets.learngene import render_learngene, sparkline

    st = RunState()
    st.apply_all(scripted_run(population=3, generations=1))
    ind = next(i for i, r in st.individuals.items() if r.loss_curve)
    text = render_learngene(st, ind, 100).plain
    curve = st.individuals[ind].loss_curve
    assert f"training loss {curve[0]:.3f} → {curve[-1]:.3f} {sparkline(curve)}" in text
    assert sparkline([3.0, 2.0, 1.0]) == "█▅▁" and sparkline([1.0, 1.0]) == "▁▁"
