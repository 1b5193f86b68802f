"""Issue 17, item 4: checkpoints are verified on load, a damaged one is passed over for the newest valid one, and
no NaN or infinite number becomes a learngene (nor a config value)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from fault_helpers import TINY

from engine import events as ev
from engine.config import ConfigError, load_config
from engine.learngene import load_learngene, save_learngene
from engine.run.runner import create_run_dir, run_in_dir


def _events(run_dir: Path) -> list[ev.Event]:
    return ev.read_events(run_dir / ev.EVENTS_FILE)[0]


def _final_gene(run_dir: Path, after: int = 0):
    events = _events(run_dir)[after:]
    path = [e for e in events if isinstance(e, ev.LearngeneExported) and Path(e.path).name.startswith("best-")][-1]
    return load_learngene(path.path)


def _nan_data(path: Path) -> None:
    """Overwrite the tensor data of a safetensors file with NaN, keeping its header intact."""
    blob = bytearray(path.read_bytes())
    (n,) = struct.unpack("<Q", blob[:8])
    start = 8 + n
    nan = struct.pack("<f", float("nan"))
    blob[start:] = nan * ((len(blob) - start) // 4) + b"\0" * ((len(blob) - start) % 4)
    path.write_bytes(bytes(blob))


def _resume_final(run_dir: Path):
    before = len(_events(run_dir))
    finished = run_in_dir(run_dir)
    assert finished.status == "completed"
    new = _events(run_dir)[before:]
    return new, _final_gene(run_dir, before)


@pytest.mark.parametrize("damage", ["nan-data", "header", "flipped-byte"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_older_one(finished_run, run_copy, damage):
    newest = run_copy / "checkpoints" / "gen_00002.safetensors"
    if damage == "nan-data":
        _nan_data(newest)
    elif damage == "header":
        blob = bytearray(newest.read_bytes())
        blob[10:60] = b"#" * 50
        newest.write_bytes(bytes(blob))
    else:  # one bit of one weight: only the checksum can tell
        blob = bytearray(newest.read_bytes())
        blob[-7] ^= 0x01
        newest.write_bytes(bytes(blob))
    new, gene = _resume_final(run_copy)
    warnings = [e for e in new if isinstance(e, ev.Warning_)]
    assert warnings and "gen_00002" in warnings[0].message and "older checkpoint" in warnings[0].message
    started = next(e for e in new if isinstance(e, ev.RunStarted))
    assert started.resumed_from == 2  # generation 2 is computed again from checkpoint 1
    ref_gene, ref_manifest = _final_gene(finished_run)
    assert all(torch.isfinite(t).all() for t in gene[0].tensors.values())
    assert gene[0].channels == ref_gene.channels and gene[1]["fitness"] == ref_manifest["fitness"]
    assert all(torch.equal(gene[0].tensors[k], ref_gene.tensors[k]) for k in ref_gene.tensors)


def test_when_no_checkpoint_is_valid_the_run_fails_with_one_line(run_copy):
    for p in (run_copy / "checkpoints").glob("gen_*.safetensors"):
        _nan_data(p)
    with pytest.raises(ValueError, match="damaged checkpoint"):
        run_in_dir(run_copy)


def test_a_non_finite_learngene_is_never_written(finished_run, tmp_path):
    gene, manifest = _final_gene(finished_run)
    name = next(iter(gene.tensors))
    gene.tensors[name] = gene.tensors[name].clone()
    gene.tensors[name].view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        save_learngene(gene, tmp_path / "bad", manifest)
    assert not list(tmp_path.glob("bad*"))


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_non_finite_config_numbers_are_refused(value):
    with pytest.raises(ConfigError, match=r"^config error: lifetime\.lr: .*finite") as err:
        load_config(None, [f"lifetime.lr={value}"])
    assert "\n" not in str(err.value)


def test_an_individual_whose_weights_blow_up_scores_zero_and_passes_on_a_finite_gene(tmp_path):
    run_dir = create_run_dir(load_config(None, [*TINY, "lifetime.lr=1e30", "evolution.generations=2"]),
                             tmp_path, "blowup")
    assert run_in_dir(run_dir).status == "completed"
    events = _events(run_dir)
    evaluated = [e for e in events if isinstance(e, ev.IndividualEvaluated)]
    warned = [e for e in events if isinstance(e, ev.Warning_) and "NaN or infinite" in e.message]
    assert warned and len(warned) == sum(e.fitness == 0.0 for e in evaluated)
    gene, _ = _final_gene(run_dir)
    assert all(torch.isfinite(t).all() for t in gene.tensors.values())
    from engine.run.checkpoint import list_checkpoints, load_checkpoint

    for path in list_checkpoints(run_dir):
        _, genes = load_checkpoint(path)
        assert all(torch.isfinite(t).all() for g in genes.values() for t in g.tensors.values())
    text = (run_dir / ev.EVENTS_FILE).read_text()
    assert ":NaN" not in text and "Infinity," not in text and ":Infinity" not in text
    json.loads(text.splitlines()[0])


def test_a_failed_checkpoint_write_fails_the_run_in_the_generation_it_was_written_beside(tmp_path, monkeypatch):
    import engine.evolution.loop as loop

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(loop, "save_checkpoint", full_disk)
    run_dir = create_run_dir(load_config(None, TINY), tmp_path, "full")
    with pytest.raises(OSError, match="No space left"):
        run_in_dir(run_dir)
    events = _events(run_dir)
    assert events[-1].kind == "run_finished" and "No space left" in events[-1].error
    # checkpoint 0 failed while generation 1 trained: generation 1 never completes
    assert not any(isinstance(e, ev.GenerationCompleted) and e.generation == 1 for e in events)
