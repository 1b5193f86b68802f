"""Issue 17, items 8 and 10: deep JSON and tampered learngene or baseline files give one line (or a skipped log
line), never a RecursionError, a traceback, or a read without end."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from engine import events as ev
from engine.run.runner import run_in_dir

DEEP = b"[" * 5000


def _with_deep_line(run_dir: Path) -> Path:
    log = run_dir / ev.EVENTS_FILE
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:3]) + DEEP + b"\n" + b"".join(lines[3:]))
    return log


def test_a_deep_event_line_is_skipped_by_every_reader(run_copy):
    from gtl_tui.runs import read_run
    from gtl_tui.sources import read_log

    n = len(ev.read_events(run_copy / ev.EVENTS_FILE)[0])
    log = _with_deep_line(run_copy)
    assert ev.parse_line(DEEP) is None
    assert len(ev.read_events(log)[0]) == n
    assert len(read_log(log)[0]) == n
    assert read_run(run_copy).state == "finished"
    log.write_bytes(log.read_bytes() + DEEP + b"\n")  # also as the newest line
    assert read_run(run_copy).state == "finished"


def test_a_run_whose_log_has_a_deep_line_resumes(run_copy):
    _with_deep_line(run_copy)
    (run_copy / "checkpoints" / "gen_00002.safetensors").unlink()
    assert run_in_dir(run_copy).status == "completed"
    seqs = [e.seq for e in ev.read_events(run_copy / ev.EVENTS_FILE)[0]]
    assert seqs == list(range(len(seqs)))


def _exported(run_dir: Path, tmp_path: Path) -> Path:
    src = sorted((run_dir / "learngenes").glob("best-*.json"))[-1]
    for suffix in (".json", ".safetensors"):
        shutil.copy(src.with_suffix(suffix), tmp_path / f"gene{suffix}")
    return tmp_path / "gene"


def _one_line_value_error(fn, *args, match: str) -> None:
    with pytest.raises(ValueError, match=match) as err:
        fn(*args)
    assert "\n" not in str(err.value)


def test_a_deep_learngene_manifest_is_refused(finished_run, tmp_path):
    from engine.learngene import load_learngene

    stem = _exported(finished_run, tmp_path)
    (tmp_path / "gene.json").write_bytes(b"[" * 100_000)
    _one_line_value_error(load_learngene, stem, match="nested too deeply")


def test_a_manifest_with_absurd_widths_is_refused(finished_run, tmp_path):
    from engine.learngene import load_learngene

    stem = _exported(finished_run, tmp_path)
    m = json.loads((tmp_path / "gene.json").read_text())
    m["widths"] = [10**9] * len(m["widths"])
    m.pop("weights_sha256")
    (tmp_path / "gene.json").write_text(json.dumps(m))
    _one_line_value_error(load_learngene, stem, match="out of range")


def test_weights_symlinked_to_a_device_are_refused_before_reading(finished_run, tmp_path):
    from engine.learngene import load_learngene

    stem = _exported(finished_run, tmp_path)
    (tmp_path / "gene.safetensors").unlink()
    os.symlink("/dev/zero", tmp_path / "gene.safetensors")
    _one_line_value_error(load_learngene, stem, match="not a regular file")
    (tmp_path / "gene.safetensors").unlink()
    os.mkfifo(tmp_path / "gene.safetensors")  # a FIFO without writer would block a plain open
    _one_line_value_error(load_learngene, stem, match="not a regular file")


def _pretrained(tmp_path: Path) -> Path:
    from engine.fewshot.baselines import PretrainSettings, save_pretrained
    from engine.models import create_model

    model = create_model("conv4", 5, width=0.25)
    save_pretrained(model, tmp_path / "pre", PretrainSettings(width=0.25), dataset="glyphs", image_size=32)
    return tmp_path / "pre"


@pytest.mark.parametrize("tamper", ["no-settings", "huge-width", "huge-classes", "not-a-dict", "deep",
                                    "weights-dev-zero", "bad-arch"])
def test_a_tampered_pretrained_baseline_gives_one_line(tmp_path, tamper):
    from engine.fewshot.baselines import load_pretrained

    stem = _pretrained(tmp_path)
    js, st = tmp_path / "pre.json", tmp_path / "pre.safetensors"
    m = json.loads(js.read_text())
    if tamper == "no-settings":
        del m["settings"]
    elif tamper == "huge-width":
        m["settings"]["width"] = 1e9
    elif tamper == "huge-classes":
        m["num_classes"] = 10**9
    elif tamper == "not-a-dict":
        m["settings"] = [1, 2]
    elif tamper == "bad-arch":
        m["settings"]["arch"] = {"x": 1}
    elif tamper == "weights-dev-zero":
        st.unlink()
        os.symlink("/dev/zero", st)
    js.write_text(json.dumps(m) if tamper != "deep" else "[" * 100_000)
    _one_line_value_error(load_pretrained, stem, match=".")
    load = load_pretrained  # the loader itself still works on a good pair
    if tamper == "no-settings":
        _pretrained(tmp_path)
        assert load(stem)[1]["num_classes"] == 5
