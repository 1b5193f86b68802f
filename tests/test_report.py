"""``gtl-tui report``: the files exist and parse, the CSVs match the event logs, the page opens in a real browser.

The runs are real tiny runs (a few seconds each, in this process); their evaluation files are written as
``gtl-tui evaluate`` writes them. The browser check runs Debian's Chromium headless and skips where it is missing.
"""

from __future__ import annotations

import csv
import json
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine import events as ev
from engine.config import load_config
from gtl_tui.cli import app
from gtl_tui.evaluations import write_evaluation

pytest.importorskip("matplotlib")
runner = CliRunner()
TINY = ["evolution.generations=3", "evolution.population=4", "evolution.tournament_size=2", "lifetime.steps=6",
        "lifetime.batch_size=8", "data.glyph_classes=20", "data.glyph_images_per_class=20", "data.image_size=16",
        "model.width=0.25", "run.device='cpu'", "run.threads=1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from engine.run.runner import create_run_dir, run_in_dir

    root = tmp_path_factory.mktemp("runs")
    out = []
    for ways, seed in ((2, 0), (2, 1), (3, 0)):
        run = create_run_dir(load_config(None, [*TINY, f"task.ways={ways}", f"run.seed={seed}"]), root,
                             f"w{ways}-s{seed}")
        assert run_in_dir(run).status == "completed"
        results = [{"method": m, "shots": 5, "steps": 0, "mean": acc, "ci95": 0.05, "episodes": 10}
                   for m, acc in (("learngene", 0.6 + 0.1 * seed), ("scratch", 0.5))]
        write_evaluation(run, "best", {"results": results, "settings": {}})
        out.append(run)
    return out


@pytest.fixture(scope="module")
def report(runs: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    result = runner.invoke(app, ["report", *map(str, runs), "--out", str(out / "r"), "--tensorboard",
                                 str(out / "tb")])
    assert result.exit_code == 0, result.output
    return out


def test_files_exist_and_parse(report: Path) -> None:
    from PIL import Image

    r = report / "r"
    for name in ("fitness", "lineage", "channels", "evaluation"):
        with Image.open(r / f"{name}.png") as im:
            im.verify()
        assert ET.parse(r / f"{name}.svg").getroot().tag.endswith("svg")
    comparison = json.loads((r / "comparison.json").read_text())
    assert [s["overrides"] for s in comparison["settings"]] == [{"task.ways": 2}, {"task.ways": 3}]
    assert comparison["settings"][0]["evaluation"][0]["mean"] == pytest.approx(0.65)

    class Collect(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: list[str] = []
            self.refs: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.append(tag)
            self.refs += [v or "" for k, v in attrs if k in ("src", "href")]

    page = Collect()
    page.feed((r / "index.html").read_text())
    assert page.tags.count("svg") == 4 and "script" not in page.tags and "img" not in page.tags
    assert all(not ref.startswith(("http:", "https:", "//")) for ref in page.refs), page.refs
    assert sorted(page.refs) == ["comparison.csv", "generations.csv", "individuals.csv"]


def test_csvs_match_the_event_logs(runs: list[Path], report: Path) -> None:
    gens = list(csv.DictReader(open(report / "r" / "generations.csv")))
    inds = list(csv.DictReader(open(report / "r" / "individuals.csv")))
    for run in runs:
        events = ev.read_events(run / ev.EVENTS_FILE)[0]
        completed = [e for e in events if isinstance(e, ev.GenerationCompleted)]
        rows = [g for g in gens if g["run"] == run.name]
        assert [int(g["generation"]) for g in rows] == [e.generation for e in completed]
        for g, e in zip(rows, completed, strict=True):
            for key in ("best", "mean", "worst", "std", "diversity", "seconds"):
                assert float(g[key]) == getattr(e, key), key
        born = [e for e in events if isinstance(e, ev.IndividualBorn)]
        fitness = {e.id: e.fitness for e in events if isinstance(e, ev.IndividualEvaluated)}
        rows = [i for i in inds if i["run"] == run.name]
        assert [int(i["id"]) for i in rows] == [b.id for b in born]
        for i, b in zip(rows, born, strict=True):
            assert int(i["generation"]) == b.generation
            assert i["parent"] == ("" if b.parent is None else str(b.parent))
            assert i["task"].split() == [str(c) for c in b.task]
            assert float(i["fitness"]) == fitness[b.id] and int(i["gene_size"]) == sum(b.gene_sizes)
            assert len(i["mutations"].split()) == len(b.mutations)


def _tfrecords(path: Path) -> list[bytes]:
    data, out, pos = path.read_bytes(), [], 0
    while pos < len(data):
        (n,) = struct.unpack("<Q", data[pos:pos + 8])
        out.append(data[pos + 12:pos + 12 + n])
        pos += 12 + n + 4
    return out


def test_tensorboard_scalars(runs: list[Path], report: Path) -> None:
    from tensorboardX.proto.event_pb2 import Event

    run = runs[0]
    files = list((report / "tb" / run.name).glob("events.out.tfevents.*"))
    assert len(files) == 1
    scalars: dict[tuple[str, int], float] = {}
    for rec in _tfrecords(files[0]):
        e = Event.FromString(rec)
        for v in e.summary.value:
            scalars[(v.tag, e.step)] = v.simple_value
    completed = [e for e in ev.read_events(run / ev.EVENTS_FILE)[0] if isinstance(e, ev.GenerationCompleted)]
    for e in completed:
        assert scalars[("fitness/best", e.generation)] == pytest.approx(e.best, rel=1e-6)
        assert scalars[("population/diversity", e.generation)] == pytest.approx(e.diversity, rel=1e-6)


def _chromium() -> str | None:
    return next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser")) if p), None)


def test_index_opens_in_headless_chromium_without_errors_or_requests(report: Path, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium binary (apt-get install chromium)")
    netlog = tmp_path / "net.json"
    page = (report / "r" / "index.html").resolve()
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--enable-logging=stderr", "--v=0", f"--log-net-log={netlog}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("<svg") == 4 and "Settings (mean ± 95% CI over seeds)" in proc.stdout
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console
    # the page's own requests carry its file:// isolation key; the browser's background ones do not
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    requests = [e["params"]["url"] for e in log["events"] if e["type"] == start
                and str(e["params"].get("network_isolation_key", "")).startswith("file://")]
    assert requests == [], requests


def test_with_several_settings_the_baselines_are_one_bar_over_every_run() -> None:
    from gtl_tui.experiments.report import pooled_baselines

    def cell(method: str, means: list[float]) -> dict:
        return {"method": method, "protocol": "default", "shots": 5, "steps": 0,
                "per_run": [{"run": f"r{i}", "mean": m, "ci95": 0.01} for i, m in enumerate(means)]}

    comparison = {"settings": [{"overrides": {"variant": "a"}, "evaluation": [cell("learngene", [0.5, 0.6]),
                                                                             cell("scratch", [0.4, 0.4])]},
                               {"overrides": {"variant": "b"}, "evaluation": [cell("learngene", [0.7]),
                                                                             cell("scratch", [0.4])]}]}
    pooled = pooled_baselines(comparison)
    (scratch,) = pooled["evaluation"]  # the learngenes stay per setting; scratch is pooled over all 3 runs
    assert scratch["method"] == "scratch" and scratch["n"] == 3 and scratch["mean"] == pytest.approx(0.4)
