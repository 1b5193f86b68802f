"""Issue 17, item 6: temporary files of writes killed midway are removed when the run is resumed."""

from __future__ import annotations

from engine.run.runner import run_in_dir


def test_orphaned_temporary_files_are_removed_on_resume(run_copy):
    orphans = [run_copy / "checkpoints" / ".gen_00001.safetensors.tmp4242",
               run_copy / "learngenes" / ".best-g0002-i9.safetensors.k2j3h4.tmp",
               run_copy / ".error.txt.abc123.tmp",
               run_copy / "genes" / ".gen_00000.safetensors.tmp4372"]  # the gene archive (seen in a CI kill)
    (run_copy / "genes").mkdir(exist_ok=True)
    for p in orphans:
        p.write_bytes(b"half a write")
    kept = [run_copy / "learngenes" / "notes.tmp", run_copy / "checkpoints" / "gen_00002.safetensors"]
    kept[0].write_text("the user's own file")
    (run_copy / "checkpoints" / "gen_00002.safetensors").unlink()  # so that the resume has work to do
    kept.pop()
    assert run_in_dir(run_copy).status == "completed"
    assert not any(p.exists() for p in orphans)
    assert all(p.exists() for p in kept)
