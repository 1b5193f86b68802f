"""`gtl-tui evaluate` and `gtl-tui pretrain` through typer's CliRunner: tiny glyph runs and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from gtl_tui.cli import app

runner = CliRunner()
GLYPHS = {"dataset": "glyphs", "glyph_classes": 20, "glyph_images_per_class": 24, "image_size": 32}


@pytest.fixture(scope="module")
def lg(tmp_path_factory) -> Path:
    from engine.learngene import extract, random_channels, save_learngene
    from engine.models import create_model

    d = tmp_path_factory.mktemp("lg")
    m = create_model("conv4", 5, width=0.125, generator=torch.Generator().manual_seed(0))
    gene = extract(m, random_channels(m.gene_spec().widths, 0.45, torch.Generator().manual_seed(1)))
    config = {"data": GLYPHS, "model": {"arch": "conv4", "width": 0.125},
              "evolution": {"population": 2, "generations": 1, "tournament_size": 2}, "lifetime": {"steps": 2, "batch_size": 8}}
    save_learngene(gene, d / "best-g0001-i3", {"config": config})
    save_learngene(gene, d / "gen0-best", {"config": config})
    return d / "best-g0001-i3.json"


def test_pretrain_then_evaluate_writes_json(lg: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["pretrain", "--learngene", str(lg), "--out", str(tmp_path / "pre")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "pre.safetensors").is_file()
    assert json.loads((tmp_path / "pre.json").read_text())["settings"]["steps"] == 2 * 1 * 2  # the evolution's
    out = tmp_path / "res.json"
    r = runner.invoke(app, ["evaluate", str(lg), "--episodes", "2", "--shots", "1", "--steps", "0,1", "--ways", "3",
                            "--queries", "2", "--pretrained", str(tmp_path / "pre"), "--json", str(out)])
    assert r.exit_code == 0, r.output
    report = json.loads(out.read_text())
    assert {x["method"] for x in report["results"]} == {"learngene", "scratch", "pretrained",
                                                        "pretrained_random20", "pretrained_top20", "gen0"}
    assert report["settings"]["gen0"].endswith("gen0-best.json")
    assert "learngene" in r.output and "±" in r.output


@pytest.mark.parametrize("args,msg", [
    (["evaluate", "nowhere/lg.json"], "no such learngene"),
    (["evaluate", "LG", "--shots", "one"], "--shots expects comma-separated integers"),
    (["evaluate", "LG", "--methods", "magic"], "unknown method 'magic'"),
    (["evaluate", "LG", "--bn", "sometimes"], "'sometimes' is not one of 'frozen', 'train'"),
    (["evaluate", "LG", "--arch", "resnet9000"], "--arch 'resnet9000' is unknown"),
    (["evaluate", "LG", "--pretrained", "nowhere/p"], "cannot read pretrained manifest"),
    (["evaluate", "LG", "--dataset", "cifar-fs"], "root is required"),
    (["evaluate", "LG", "--episodes", "0"], "episodes >= 1"),
    (["evaluate", "LG", "--batch-episodes", "-2"], "'--batch-episodes': Input should be greater than or equal to 0"),
    (["evaluate", "LG", "--precision", "fp8"], "'--precision': 'fp8' is not one of 'fp32', 'bf16'"),
    (["evaluate", "LG", "--device", "toaster"], "--device 'toaster' is not a device"),
    (["evaluate", "LG", "--device", "cuda:0"] if not torch.cuda.is_available() else ["evaluate", "LG", "--device",
                                                                                     "gpu"], "--device"),
    (["pretrain", "--learngene", "nowhere"], "no such learngene"),
])
def test_errors_are_one_line(lg: Path, args: list[str], msg: str) -> None:
    args = [str(lg) if a == "LG" else a for a in args]
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and msg in lines[0], r.output


def test_run_directory_without_export_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "learngenes").mkdir()
    r = runner.invoke(app, ["evaluate", str(tmp_path)])
    assert r.exit_code == 2 and "no exported learngene" in r.output


def test_evaluating_a_learngene_of_a_run_writes_it_into_the_run(lg: Path, tmp_path: Path) -> None:
    """The monitor reads ``<run>/evaluations/<learngene>.json``; a learngene outside a run writes nothing there."""
    import shutil

    genes = tmp_path / "run" / "learngenes"
    genes.mkdir(parents=True)
    (tmp_path / "run" / "config.toml").write_text("[run]\nseed = 0\n")
    for f in lg.parent.glob("*"):
        shutil.copy(f, genes / f.name)
    r = runner.invoke(app, ["evaluate", str(genes / "best-g0001-i3"), "--episodes", "2", "--shots", "1",
                            "--steps", "0", "--ways", "3", "--queries", "2", "--methods", "learngene,scratch"])
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "run" / "evaluations" / "best-g0001-i3.json").read_text())
    assert {x["method"] for x in report["results"]} == {"learngene", "scratch"}
    assert not (lg.parent.parent / "evaluations").exists() and not (lg.parent / "evaluations").exists()


def test_a_run_directory_means_its_last_generations_best_else_its_elite(tmp_path: Path) -> None:
    import os

    from gtl_tui.commands.evaluate import resolve_learngene

    genes = tmp_path / "run" / "learngenes"
    genes.mkdir(parents=True)
    for stem in ("gen0-best", "best-g0002-i23"):
        (genes / f"{stem}.json").write_text("{}")
    assert resolve_learngene(tmp_path / "run") == (genes / "best-g0002-i23.json", genes / "gen0-best.json")
    (genes / "last-best-g0003-i30.json").write_text("{}")  # exported after the elite at the same end
    assert resolve_learngene(tmp_path / "run")[0] == genes / "last-best-g0003-i30.json"
    (genes / "best-g0007-i61.json").write_text("{}")  # the run was continued: its new end's elite is newer
    t = (genes / "last-best-g0003-i30.json").stat().st_mtime
    os.utime(genes / "best-g0007-i61.json", (t + 10, t + 10))
    assert resolve_learngene(tmp_path / "run")[0] == genes / "best-g0007-i61.json"


def test_plain_protocol_and_several_budgets_in_one_call(lg: Path, tmp_path: Path) -> None:
    out = tmp_path / "plain.json"
    r = runner.invoke(app, ["evaluate", str(lg), "--episodes", "2", "--shots", "1,2", "--steps", "0,1,3", "--ways",
                            "3", "--queries", "2", "--methods", "learngene,scratch", "--protocol", "plain",
                            "--lr", "0.01", "--json", str(out), "--batch-episodes", "2", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    report = json.loads(out.read_text())
    ft = report["settings"]["finetune"]
    assert (ft["name"], ft["head_init"], ft["bn"], ft["body_lr_scale"], ft["lr"]) == ("plain", "random", "train",
                                                                                     1.0, 0.01)
    cells = {(x["method"], x["shots"], x["steps"]) for x in report["results"]}
    assert cells == {(m, k, n) for m in ("learngene", "scratch") for k in (1, 2) for n in (0, 1, 3)}
    assert "plain fine-tuning" in r.output and "3 steps" in r.output


def test_unknown_protocol_is_one_line(lg: Path) -> None:
    r = runner.invoke(app, ["evaluate", str(lg), "--protocol", "fancy"])
    assert r.exit_code == 2 and r.output.strip() == "error: Invalid value for '--protocol': 'fancy' is not one of 'default', 'plain'."
