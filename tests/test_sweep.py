"""``gtl-tui sweep``: the sweep file's validation, the points' configs, and a real 2 x 3 sweep killed and resumed.

The engines and the sweep process are real subprocesses; sweep folders live in short ``/tmp`` folders (AF_UNIX
socket paths must stay under 108 bytes).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine import events as ev
from engine.config import load_config
from engine.run.daemon import live_engine_pid
from gtl_tui.cli import app
from gtl_tui.experiments.sweep import MANIFEST, live_sweep_pid, read_manifest
from gtl_tui.experiments.sweepfile import SweepError, plan
from gtl_tui.runs import read_run

REPO = Path(__file__).resolve().parent.parent
BASE = REPO / "configs" / "quickstart.toml"
# a tiny run: a few seconds on one CPU core
TINY = {"evolution.generations": 4, "evolution.population": 4, "evolution.tournament_size": 2,
        "lifetime.steps": 8, "lifetime.batch_size": 8, "data.glyph_classes": 20, "data.glyph_images_per_class": 20,
        "data.image_size": 16, "model.width": 0.25, "run.device": "cpu", "run.threads": 1}
runner = CliRunner()


def sweep_toml(name: str = "ways", grid: str = '"task.ways" = [2, 3]', extra: str = "", sets: dict | None = None,
               max_parallel: int = 2) -> str:
    lines = [f'name = "{name}"', f'base = "{BASE}"', "seeds = [0, 1, 2]", f"max_parallel = {max_parallel}", extra,
             "[set]"]
    lines += [f'"{k}" = {json.dumps(v)}' for k, v in {**TINY, **(sets or {})}.items()]
    lines += ["[grid]", grid]
    return "\n".join(lines) + "\n"


def cli(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def wait_for(pred: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def history(run: Path) -> dict[int, tuple[float, ...]]:
    """Fitness per generation (the last record of each: a resumed generation is re-run)."""
    return {e.generation: (e.best, e.mean, e.worst, e.elite_fitness)
            for e in ev.read_events(run / ev.EVENTS_FILE)[0] if isinstance(e, ev.GenerationCompleted)}


@pytest.fixture
def tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the engines inherit it: no oversubscription on small machines
    d = Path(tempfile.mkdtemp(prefix="gs", dir="/tmp"))
    yield d
    for sweep in [p for p in d.rglob(MANIFEST)]:  # never leave a process behind
        pid = live_sweep_pid(sweep.parent)
        if pid:
            os.kill(pid, signal.SIGKILL)
        for run in sweep.parent.iterdir():
            pid = live_engine_pid(run) if run.is_dir() else None
            if pid:
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ fast
def test_experiment_modules_import_no_torch_nor_matplotlib() -> None:
    import subprocess
    import sys

    mods = ", ".join(f"gtl_tui.experiments.{m}" for m in ("sweepfile", "sweep", "compare", "report", "commands"))
    code = (f"import sys, {mods}; bad = [m for m in ('torch', 'matplotlib', 'textual') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


@pytest.mark.parametrize("grid,extra,sets,needle", [
    ('"task.ways" = [2, 300]', "", [], "point 3-ways300-seed0 (task.ways=300, run.seed=0): task.ways (300) exceeds"),
    ('"lifetime.lr" = [0.1, -1]', "", [], "point 3-lr-1-seed0 (lifetime.lr=-1, run.seed=0): lifetime.lr:"),
    ('"nosuch.key" = [1, 2]', "", [], "point 0-key1-seed0 (nosuch.key=1, run.seed=0): nosuch: unknown section"),
    ('"task.ways" = [2, 3]', "", ["--set", "task.ways=4"], "--set 'task.ways=4': task.ways is set by the sweep's grid"),
    ('"task.ways" = [2, 3]', "", ["--set", "model.nope=1"], "point 0-ways2-seed0 (task.ways=2, run.seed=0): model.nope: unknown key"),
    ('"task.ways" = []', "", [], "grid: Value error, task.ways: needs at least one value"),
    ('"run.seed" = [1, 2]', "", [], "run.seed comes from seeds"),
    ('"task.ways" = [2, 3]', "colour = 1", [], "colour: unknown"),
    ('"task.ways" = [2, 3]', "[evaluate]\nepisodes = 0", [], "evaluate.episodes:"),
])
def test_bad_sweep_is_one_line_exit_2_and_creates_nothing(tmp: Path, grid: str, extra: str, sets: list[str],
                                                          needle: str) -> None:
    text = sweep_toml(grid=grid)
    if extra.startswith("["):
        text += extra + "\n"
    elif extra:
        text = extra + "\n" + text
    (tmp / "s.toml").write_text(text)
    code, out = cli("sweep", tmp / "s.toml", "--runs-dir", tmp / "runs", *sets)
    assert code == 2, out
    assert out.startswith("error: ") and out.strip().count("\n") == 0, out
    assert needle.replace("Value error, ", "") in out, out
    assert not (tmp / "runs").exists()


def test_points_are_the_runs_launched_alone(tmp: Path) -> None:
    (tmp / "s.toml").write_text(sweep_toml(grid='"task.ways" = [2, 3]\n"lifetime.lr" = [0.05, 0.1]'))
    p = plan(tmp / "s.toml", ["lifetime.steps=5"])
    assert [pt.name for pt in p.points][:4] == ["00-ways2-lr0.05-seed0", "01-ways2-lr0.05-seed1",
                                                "02-ways2-lr0.05-seed2", "03-ways2-lr0.1-seed0"]
    assert len(p.points) == 12 and len({pt.name for pt in p.points}) == 12
    for pt in p.points:
        sets = [f"{k}={json.dumps(v)}" for k, v in {**TINY, "lifetime.steps": 5, **pt.overrides}.items()]
        alone = load_config(BASE, sets)
        assert pt.config == alone.to_dict(), pt.name  # same name, same hash: the same run
    with pytest.raises(SweepError, match="no such sweep file"):
        plan(tmp / "nope.toml")


def test_resume_of_a_missing_sweep_and_an_existing_name(tmp: Path) -> None:
    code, out = cli("sweep", "--resume", tmp / "nope")
    assert code == 2 and "not a sweep folder" in out
    (tmp / "runs" / "ways").mkdir(parents=True)
    (tmp / "s.toml").write_text(sweep_toml())
    code, out = cli("sweep", tmp / "s.toml", "--runs-dir", tmp / "runs")
    assert code == 2 and "exists already" in out and list((tmp / "runs" / "ways").iterdir()) == []


# ------------------------------------------------------------------------------------------------ slow
@pytest.mark.slow
def test_sweep_killed_midway_and_resumed_equals_the_runs_launched_alone(tmp: Path) -> None:
    """2 x 3 points, two at a time; SIGKILL the sweep and one engine mid-run, resume: every run's fitness
    history equals the same run launched alone."""
    (tmp / "s.toml").write_text(sweep_toml())
    code, out = cli("sweep", tmp / "s.toml", "--runs-dir", tmp / "runs", "--detach")
    assert code == 0, out
    sweep = tmp / "runs" / "ways"
    assert out.splitlines()[0] == str(sweep)
    pid = live_sweep_pid(sweep)
    assert pid and os.getsid(pid) == pid != os.getsid(0)  # detached: its own session

    def engines() -> list[Path]:
        return [r for r in sweep.iterdir() if r.is_dir() and live_engine_pid(r)]

    assert len(engines()) <= 2

    def log(run: Path) -> str:
        return (run / ev.EVENTS_FILE).read_text() if (run / ev.EVENTS_FILE).is_file() else ""

    def mid_run() -> Path | None:  # a live engine with a checkpoint, once one run has finished
        done = [r for r in sweep.iterdir() if r.is_dir() and "run_finished" in log(r)]
        live = [r for r in engines() if "checkpoint_saved" in log(r) and "run_finished" not in log(r)]
        assert len(engines()) <= 2, "more than max_parallel engines"
        return live[0] if done and live else None

    victim = wait_for(mid_run, 240, "a finished run and a checkpointed live one")
    os.kill(pid, signal.SIGKILL)
    os.kill(live_engine_pid(victim), signal.SIGKILL)
    wait_for(lambda: live_sweep_pid(sweep) is None and live_engine_pid(victim) is None, 10, "the kills")
    code, out = cli("status", sweep)
    assert code == 0 and "crashed" in out and "pending" in out, out
    code, out = cli("ls", sweep)
    assert code == 0 and "sweep ways" in out

    code, out = cli("sweep", "--resume", sweep, "--detach")
    assert code == 0, out
    code, out = cli("sweep", "--resume", sweep, "--detach")  # one sweep process per folder
    assert code == 2 and "running already" in out

    # the run verbs on the sweep folder: pause, resume and stop all its runs (stop ends the sweep process first)
    running = wait_for(lambda: [r for r in engines() if "generation_completed" in log(r)], 120, "a training run")
    code, out = cli("pause", sweep)
    assert code == 0 and "paused" in out, out
    assert all(read_run(r).state == "paused" for r in running if live_engine_pid(r))
    code, out = cli("resume", sweep)
    assert code == 0 and "resume requested" in out, out
    code, out = cli("stop", sweep)
    assert code == 0 and "sweep process" in out and "stopped" in out, out
    assert live_sweep_pid(sweep) is None and engines() == [] and read_manifest(sweep)["state"] == "stopped"
    code, out = cli("sweep", "--resume", sweep, "--detach")
    assert code == 0, out
    wait_for(lambda: live_sweep_pid(sweep) is None, 300, "the resumed sweep to end")
    manifest = read_manifest(sweep)
    assert manifest["state"] == "finished", manifest
    code, out = cli("status", sweep, "--json")
    points = json.loads(out)["points"]
    assert [p["run"]["state"] for p in points] == ["finished"] * 6
    starts = [e for e in ev.read_events(victim / ev.EVENTS_FILE)[0] if isinstance(e, ev.RunStarted)]
    assert len(starts) >= 2 and all(s.resumed_from is not None for s in starts[1:])  # killed (and maybe stopped)

    from engine.run.runner import create_run_dir, run_in_dir

    for p in manifest["points"]:
        run = sweep / p["name"]
        alone_cfg = load_config(BASE, [f"{k}={json.dumps(v)}" for k, v in {**TINY, **p["overrides"]}.items()])
        assert load_config(run / "config.toml").hash() == alone_cfg.hash()
        alone = create_run_dir(alone_cfg, tmp / "alone", p["name"])
        assert run_in_dir(alone).status == "completed"
        assert history(run) == history(alone) and len(history(run)) == 4, p["name"]


@pytest.mark.slow
def test_sweep_evaluates_each_finished_run(tmp: Path) -> None:
    """[evaluate]: each finished run's learngene is evaluated into its evaluations/, and compare reads it."""
    text = sweep_toml(name="ev", grid="", sets={"evolution.generations": 2}, max_parallel=1).replace(
        "seeds = [0, 1, 2]", "seeds = [0]")
    text += "[evaluate]\nepisodes = 2\nshots = [1]\nsteps = [0]\nways = 2\nqueries = 2\nmethods = [\"learngene\", \"scratch\"]\n"
    (tmp / "s.toml").write_text(text)
    code, out = cli("sweep", tmp / "s.toml", "--runs-dir", tmp / "runs")  # follows it to the end
    assert code == 0 and "0-seed0: evaluated" in out, out
    sweep = tmp / "runs" / "ev"
    assert read_manifest(sweep)["state"] == "finished"
    assert list((sweep / "0-seed0" / "evaluations").glob("*.json"))
    code, out = cli("compare", sweep, "--json")
    evaluation = json.loads(out)["settings"][0]["evaluation"]
    assert {e["method"] for e in evaluation} == {"learngene", "scratch"} and all(e["n"] == 1 for e in evaluation)


def test_variants_cross_the_grid_and_name_the_setting(tmp: Path) -> None:
    """[variants]: named sets of overrides, crossed with the grid and the seeds; each point is the run launched
    alone with the variant's keys set."""
    text = sweep_toml(grid='"task.ways" = [2, 3]') + (
        '[variants]\nplain = {}\nlineage = { "evolution.lineage_decay" = 0.5 }\n'
        'both = { "mutation.crossover" = 0.5, "lifetime.lr" = 0.1 }\n')
    (tmp / "s.toml").write_text(text)
    p = plan(tmp / "s.toml")
    assert len(p.points) == 3 * 2 * 3
    assert [pt.name for pt in p.points][:4] == ["00-plain-ways2-seed0", "01-plain-ways2-seed1", "02-plain-ways2-seed2",
                                                "03-plain-ways3-seed0"]
    both = next(pt for pt in p.points if pt.variant == "both")
    assert both.label() == "variant=both, task.ways=2, run.seed=0"
    for pt in p.points:
        sets = [f"{k}={json.dumps(v)}" for k, v in {**TINY, **pt.overrides}.items()]
        assert pt.config == load_config(BASE, sets).to_dict(), pt.name
    assert both.config["mutation"]["crossover"] == 0.5 and both.config["lifetime"]["lr"] == 0.1


@pytest.mark.parametrize("extra,needle", [
    ('[variants]\nx = { "run.seed" = 1 }', "variants.x: run.seed comes from seeds"),
    ('[variants]\nx = { "task.ways" = 4 }', "variants.x: task.ways is also in grid"),
    ('[variants]\n"a b" = {}', "a variant's name may hold"),
    ('[variants]\nx = { "lifetime.lr" = -1 }', "point 0-x-ways2-seed0 (variant=x, task.ways=2, run.seed=0): lifetime.lr:"),
    ('[[evaluate]]\nepisodes = 2\n[[evaluate]]\nepisodes = 3', "two evaluations with the same protocol"),
    ('[[evaluate]]\nprotocol = "fancy"', "evaluate.0.protocol"),
])
def test_bad_variants_and_evaluations_are_one_line(tmp: Path, extra: str, needle: str) -> None:
    (tmp / "s.toml").write_text(sweep_toml(grid='"task.ways" = [2, 3]') + extra + "\n")
    code, out = cli("sweep", tmp / "s.toml", "--runs-dir", tmp / "runs")
    assert code == 2 and out.startswith("error: ") and out.strip().count("\n") == 0, out
    assert needle in out, out
    assert not (tmp / "runs").exists()


@pytest.mark.slow
def test_sweep_evaluates_each_protocol_and_computes_baselines_once(tmp: Path) -> None:
    """[[evaluate]] twice (default and plain protocol) on a sweep with two variants, two at a time: every run gets
    both files; scratch, the same network in every run, is computed by the first evaluation of each protocol (the
    other waits for it) and taken from the sweep's cache by the other, with the same numbers."""
    text = sweep_toml(name="pv", grid="", sets={"evolution.generations": 1}, max_parallel=2).replace(
        "seeds = [0, 1, 2]", "seeds = [0]")
    text += '[variants]\na = {}\nb = { "lifetime.lr" = 0.1 }\n'
    common = 'episodes = 2\nshots = [1]\nways = 2\nqueries = 2\nmethods = ["learngene", "scratch"]\n'
    text += f"[[evaluate]]\n{common}steps = [0, 2]\n[[evaluate]]\nprotocol = \"plain\"\n{common}steps = [2]\n"
    (tmp / "s.toml").write_text(text)
    code, out = cli("sweep", tmp / "s.toml", "--runs-dir", tmp / "runs")
    sweep = tmp / "runs" / "pv"
    assert code == 0 and read_manifest(sweep)["state"] == "finished", out
    cached = {}
    for run in ("0-a-seed0", "1-b-seed0"):
        files = sorted(p.name for p in (sweep / run / "evaluations").glob("*.json"))
        assert len(files) == 2 and sum(f.endswith(".plain.json") for f in files) == 1, files
        for f in files:
            data = json.loads((sweep / run / "evaluations" / f).read_text())
            cached[(run, f.endswith(".plain.json"))] = data["settings"].get("cached", [])
            scratch = [(r["shots"], r["steps"], r["mean"]) for r in data["results"] if r["method"] == "scratch"]
            cached[(run, f.endswith(".plain.json"), "scratch")] = scratch
    for plain in (False, True):
        assert sorted([cached[("0-a-seed0", plain)], cached[("1-b-seed0", plain)]]) == [[], ["scratch"]], cached
    assert cached[("0-a-seed0", False, "scratch")] == cached[("1-b-seed0", False, "scratch")]
    result = json.loads(cli("compare", sweep, "--json")[1])
    assert [s["overrides"] for s in result["settings"]] == [{"variant": "a"}, {"variant": "b"}]
    protocols = {(c["method"], c["protocol"], c["steps"]) for c in result["settings"][0]["evaluation"]}
    assert ("learngene", "plain", 2) in protocols and ("scratch", "default", 0) in protocols


# ------------------------------------------------------------------------------------------------ on a Ray cluster
@pytest.fixture
def ray_cluster() -> Iterator[str]:
    """A real local Ray cluster started in this process (5 CPUs, no GPU, no dashboard); yields its address, which
    the sweep process and the engines connect to as their ``run.address``."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=5, num_gpus=0, include_dashboard=False, logging_level="WARNING",
             _node_ip_address="127.0.0.1")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_sweep_places_each_engine_on_the_ray_cluster(tmp: Path, ray_cluster: str) -> None:
    """run.backend = "ray" with run.address: each point's engine runs in a Ray task that claims the configured
    resources (run.ray_engine_cpus), and the runs' fitness histories equal the same runs launched alone."""
    import ray

    from gtl_tui.experiments.placement import PLACEMENT_FILE

    sets = {"evolution.generations": 2, "evolution.population": 2, "run.backend": "ray",
            "run.address": ray_cluster, "run.ray_engine_cpus": 0.5}
    text = sweep_toml(name="rayed", grid="", sets=sets).replace("seeds = [0, 1, 2]", "seeds = [0, 1]")
    text = text.replace("max_parallel = 2\n", "")  # the default on a cluster: every point, Ray queues them
    (tmp / "s.toml").write_text(text)
    t0 = time.monotonic()
    code, out = cli("sweep", tmp / "s.toml", "--runs-dir", tmp / "runs")  # follows it to the end
    took = time.monotonic() - t0
    sweep = tmp / "runs" / "rayed"
    log = (sweep / "sweep.log").read_text()
    assert code == 0 and "sweep finished" in log, out + log
    manifest = read_manifest(sweep)
    assert manifest["state"] == "finished" and manifest["max_parallel"] == 2, manifest
    node = ray.get_runtime_context().get_node_id()
    for p in manifest["points"]:
        run = sweep / p["name"]
        # the Ray task the sweep submitted is the one that ran the engine, with the resources asked for
        assert p["ray"]["num_cpus"] == 0.5 and p["ray"]["num_gpus"] == 0.0, p
        placed = json.loads((run / PLACEMENT_FILE).read_text())
        assert placed["task"] == p["ray"]["task"] == p["placement"]["task"], (placed, p)
        assert placed["node"] == node and placed["resources"] == {"CPU": 0.5}, placed
        assert placed["token"] == p["ray"]["token"]
        started = [e for e in ev.read_events(run / ev.EVENTS_FILE)[0] if isinstance(e, ev.RunStarted)]
        assert len(started) == 1 and started[0].pid == placed["pid"] and started[0].backend == "ray"
        assert f"placed by Ray: task {placed['task']} on node {node}" in (run / "engine.log").read_text()
        assert f"{p['name']}: submitted to Ray (0.5 CPU, 0 GPU), task {placed['task']}" in log
        assert f"{p['name']}: its engine on node {node[:8]}" in log and "exited: finished" in log
    print(f"sweep of 2 placed runs: {took:.1f}s")

    from engine.run.runner import create_run_dir, run_in_dir

    for p in manifest["points"]:
        run = sweep / p["name"]
        alone_cfg = load_config(BASE, [f"{k}={json.dumps(v)}" for k, v in {**TINY, **sets, **p["overrides"]}.items()])
        assert load_config(run / "config.toml").hash() == alone_cfg.hash()
        # the same run launched alone, here with the local backend (1 torch thread, as each Ray worker): the same
        # history (tests/engine/test_distributed.py), without starting more Ray workers on a small machine
        alone_cfg.run.backend, alone_cfg.run.address = "local", None
        alone = create_run_dir(alone_cfg, tmp / "alone", p["name"])
        assert run_in_dir(alone).status == "completed"
        assert history(run) == history(alone) and len(history(run)) == 2, p["name"]


@pytest.mark.slow
def test_a_run_dir_the_ray_node_cannot_see_fails_the_point(tmp: Path, ray_cluster: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The Ray task checks that the run directory is visible on its node; the sweep records its one-line error
    as the point's failure, in sweep.json and in sweep.log (stdout of the sweep process), and retries nothing."""
    from gtl_tui.experiments.sweep import SweepProcess, create_sweep, write_manifest

    sets = {"run.backend": "ray", "run.address": ray_cluster}
    (tmp / "s.toml").write_text(sweep_toml(name="unseen", grid="", sets=sets).replace("seeds = [0, 1, 2]",
                                                                                      "seeds = [0]"))
    sweep = create_sweep(plan(tmp / "s.toml"), tmp / "runs")
    proc = SweepProcess(sweep)
    proc.connect_ray()
    point = proc.points[0]
    # what a node without the shared runs dir sees: no such directory
    ref = proc.host_task.options(num_cpus=0).remote(str(tmp / "elsewhere" / point["name"]), "t")
    proc.started.add(point["name"])
    proc.tasks[point["name"]] = ref
    point["ray"] = {"token": "t"}
    deadline = time.monotonic() + 30
    while proc.tasks and time.monotonic() < deadline:
        going = proc.step()
        time.sleep(0.1)
    write_manifest(sweep, proc.manifest)
    point = read_manifest(sweep)["points"][0]
    assert point["state"] == "failed" and not going, point
    assert point["error"].startswith(f"{tmp / 'elsewhere' / point['name']} is not visible on Ray node "), point
    assert "storage that every node mounts at the same path" in point["error"]
    assert f"{point['name']}: failed: " in capsys.readouterr().out
