"""The GPU campaign's dry run: every phase on tiny sizes on the CPU, from a CIFAR-FS subset made by the script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from engine.data.splits import CIFAR100_CLASSES

REPO = Path(__file__).resolve().parent.parent


def fake_cifar(path: Path, per_class: int = 8) -> None:
    """CIFAR-100's layout (x, y, class_names; random pixels), small enough for a test."""
    rng = np.random.default_rng(0)
    n = 100 * per_class
    np.savez(path, x=rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
             y=np.repeat(np.arange(100), per_class).astype(np.int16), class_names=np.array(CIFAR100_CLASSES))


def test_subset_script_keeps_the_split_and_refuses_to_grow(tmp_path):
    src, out = tmp_path / "full.npz", tmp_path / "subset.npz"
    fake_cifar(src)
    py = [sys.executable, str(REPO / "scripts" / "make_cifar_fs_subset.py")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([*py, str(src), str(out), "--train", "6", "--test", "5", "--val", "2"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    from engine.data.sources import load_cifar_fs

    ds = load_cifar_fs(out)
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 64, "val": 16, "test": 20}
    assert [len(ds.class_indices(c)) for c in ds.splits["train"]] == [6] * 64
    assert [len(ds.class_indices(c)) for c in ds.splits["test"]] == [5] * 20
    too_big = subprocess.run([*py, str(src), str(tmp_path / "big.npz"), "--max-mib", "0.01"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert too_big.returncode == 2 and "MiB" in too_big.stderr and not (tmp_path / "big.npz").exists()


def test_campaign_dry_run_runs_every_phase(tmp_path):
    src, subset, out = tmp_path / "full.npz", tmp_path / "subset.npz", tmp_path / "out"
    fake_cifar(src)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHON": sys.executable, "OUT": str(out)}
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_cifar_fs_subset.py"), str(src), str(subset),
                    "--train", "6", "--test", "6", "--val", "2"], env=env, check=True, timeout=60)
    done = subprocess.run(["bash", str(REPO / "scripts" / "gpu_campaign.sh"), "--cpu-dry-run", "--data", str(subset)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    campaign = json.loads((out / "campaign.json").read_text())
    for phase in ("data", "evolve", "pretrain", "eval", "descendants", "bench"):
        assert campaign[phase] and "error" not in campaign[phase] and not campaign[phase].get("partial"), phase
    gens = campaign["evolve"]["generations"]
    assert len(gens) == 2 and all(set(g["timing"]) >= {"wall", "train", "host", "wait"} for g in gens)
    methods = {r["method"] for r in campaign["eval"]["results"]}
    assert methods == {"learngene", "scratch", "gen0", "pretrained", "pretrained_random20", "pretrained_top20"}
    assert {r["descendant"] for r in campaign["descendants"]["results"]} == {"wider x1.5", "deeper +2", "resnet12"}
    assert {(r["model"], r["population"]) for r in campaign["bench"]["rows"]} == {("vgg11", 2), ("conv4", 2)}
    text = (out / "summary.md").read_text()
    assert "Few-shot accuracy" in text and "timing after generation 0" in text and "Not measured" not in text
    assert text in done.stdout


def test_summary_names_a_fewshot_phase_cut_by_its_time_limit(tmp_path, monkeypatch):
    """A few-shot phase writes its JSON after each method: killed by its limit, the finished rows stay and the
    summary says what is missing."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_campaign", REPO / "scripts" / "gpu_campaign.py")
    campaign = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_campaign", campaign)  # its dataclasses look their module up
    spec.loader.exec_module(campaign)
    row = {"method": "learngene", "shots": 5, "steps": 100, "mean": 0.5, "ci95": 0.01, "episodes": 200}
    (tmp_path / "eval.json").write_text(json.dumps({
        "partial": True, "settings": {"episodes": 200}, "results": [row],
        "timing": [{"run": "learngene", "seconds": 10.0, "episodes": 400, "episodes_per_s": 40.0}]}))
    text, everything = campaign.summary(tmp_path)
    assert "| 5 | 100 | 50.0 ± 1.0 |" in text
    assert "eval: cut by its time limit; only learngene finished" in text
    assert "eval: 400 fine-tuned episodes in 10.0 s (40.0 episodes/s)" in text
    assert everything["eval"]["results"] == [row]
