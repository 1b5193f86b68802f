"""A sweep's folder and its process: ``python -m gtl_tui.experiments.sweep SWEEP_DIR``.

``<runs dir>/<name>/`` holds ``sweep.json`` (the manifest: the points, their overrides, run directories and
states, rewritten atomically), ``sweep.toml`` (a copy of the sweep file), ``sweep.log`` and one ordinary run
directory per point, created when the point starts (so ``attach``, ``pause``, ``stop``, ``export`` and
``run --resume`` work on each).

The sweep process is detached like an engine (its own session, stdin /dev/null, output in ``sweep.log``): it
survives a closed terminal or an SSH drop. It holds an exclusive lock on ``sweep.pid``, starts background engines
(``python -m engine.run.daemon``) up to ``max_parallel`` at once (here, or on a Ray cluster: see below), evaluates each finished run's learngene when the
file has ``[evaluate]``, and exits when nothing is left to do. It never kills an engine: a killed sweep leaves its
engines running, and ``gtl-tui sweep --resume`` picks them up. On resume, finished runs stay finished, crashed,
stopped or failed ones continue from their checkpoints (the engine does that by itself), unstarted ones start.

SIGTERM stops the sweep process itself (no new runs; the engines go on; ``gtl-tui stop SWEEP`` stops them too).
While any of its runs is paused, it starts nothing new.

Ray: with ``run.backend = "ray"`` each engine is the driver of its own Ray job and its lifetimes run on Ray
workers with the resources they ask for (``run.ray_cpus_per_worker``, ``run.ray_gpus_per_worker``). Without a
cluster (no ``run.address``) each engine starts a private Ray on this machine, one engine at a time by default,
and the engines run here as above. With a cluster (``run.address``) the engines themselves are placed on the
cluster (:mod:`gtl_tui.experiments.placement`): the sweep process connects to it as a Ray driver and submits one
Ray task per point that claims ``run.ray_engine_cpus`` CPUs and ``run.ray_engine_gpus`` GPUs (default 1 and 0);
Ray queues the tasks it has no room for (``max_parallel`` defaults to every point; the sweep only caps it so
that the engines' CPUs leave the cluster room for one worker) and runs each on a node of its choice, where the
task checks that the run directory is visible (a one-line error otherwise, recorded as the point's failure),
writes ``placement.json`` (node, host, task id, resources granted), starts the ordinary background engine there
and returns when it exits. The point is ``queued`` until then. The run directories must be on storage every node
mounts at the same path. A killed or stopped sweep: Ray drops the queued tasks with their driver; engines already
started go on (nobody's child in Ray) and are found by their lock on ``engine.pid`` on resume. Evaluations run
on this machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

from engine.atomic import write_atomic
from engine.rundir import EVENTS_FILE, RunDirError, lock_pid_file, pid_file_holder
from gtl_tui.evaluations import file_protocol
from gtl_tui.experiments.placement import engine_resources, host_engine, is_placed, read_placement
from gtl_tui.experiments.sweepfile import Plan, SweepError
from gtl_tui.runs import LIVE_STATES, read_run

MANIFEST = "sweep.json"
SWEEP_TOML = "sweep.toml"
PID_FILE = "sweep.pid"
SWEEP_LOG = "sweep.log"
EVAL_LOG = "evaluate.log"
CONFIG_FILE = "config.toml"
EVAL_DIR = "evaluations"
EVAL_CACHE = "eval-cache"  # results shared by the runs' evaluations (engine/fewshot/cache.py): baselines run once
POLL_S = 0.5
START_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------------------------- the folder
def is_sweep_dir(p: str | Path) -> bool:
    return (Path(p).expanduser() / MANIFEST).is_file()


def read_manifest(sweep_dir: str | Path) -> dict[str, Any]:
    p = Path(sweep_dir).expanduser()
    try:
        data = json.loads((p / MANIFEST).read_text())
    except FileNotFoundError:
        raise SweepError(f"{p}: not a sweep folder (no {MANIFEST})") from None
    except (OSError, ValueError) as err:
        raise SweepError(f"{p / MANIFEST}: unreadable ({type(err).__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("points"), list):
        raise SweepError(f"{p / MANIFEST}: not a sweep manifest")
    return data


def write_manifest(sweep_dir: Path, manifest: dict[str, Any]) -> None:
    manifest["updated"] = round(time.time(), 3)
    write_atomic(sweep_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")


def sweep_runs(sweep_dir: str | Path) -> list[Path]:
    """The run directories of the sweep's points that have been created, in point order."""
    p = Path(sweep_dir).expanduser()
    return [p / pt["name"] for pt in read_manifest(p)["points"] if (p / pt["name"] / CONFIG_FILE).is_file()]


def default_parallel(plan: Plan) -> int:
    """One run per GPU where the runs use GPUs; on the CPU, cores / run.threads; every point on a Ray cluster."""
    cfgs = [p.config for p in plan.points]
    run0 = cfgs[0]["run"]
    if run0.get("backend") == "ray":
        return len(cfgs) if run0.get("address") else 1  # without a cluster each engine would start its own Ray
    gpus = gpu_count()
    if gpus and any(c["run"].get("device", "auto") != "cpu" for c in cfgs):
        return gpus
    cores = os.cpu_count() or 1
    threads = max((c["run"].get("threads") or cores) for c in cfgs)
    return max(1, cores // threads)


def gpu_count() -> int:
    """GPUs visible to the engines, without importing torch (CUDA_VISIBLE_DEVICES, else nvidia-smi)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def create_sweep(plan: Plan, runs_dir: str | Path) -> Path:
    """Create ``<runs_dir>/<name>/`` with its manifest and a copy of the sweep file; no run starts yet.

    Raises:
        SweepError: the folder exists already (continue it with ``gtl-tui sweep --resume``).
    """
    sweep_dir = Path(runs_dir).expanduser() / plan.spec.name
    if sweep_dir.exists():
        hint = f"continue it with: gtl-tui sweep --resume {sweep_dir}" if is_sweep_dir(sweep_dir) else \
            "choose another name"
        raise SweepError(f"{sweep_dir} exists already; {hint}")
    sweep_dir.mkdir(parents=True)
    shutil.copyfile(plan.source, sweep_dir / SWEEP_TOML)
    spec = plan.spec
    manifest = {
        "version": 1, "name": spec.name, "source": str(plan.source.absolute()), "base": str(plan.base.absolute()),
        "set": plan.fixed, "grid": spec.grid, "variants": spec.variants, "seeds": spec.seeds,
        "max_parallel": spec.max_parallel or default_parallel(plan),
        "evaluate": [e.model_dump(exclude_none=True) for e in spec.evaluate] or None,
        "evaluate_args": [e.cli_args() for e in spec.evaluate] or None,
        "state": "created", "pid": None, "created": round(time.time(), 3),
        "points": [{**asdict(p), "overrides": p.overrides, "state": "pending"} for p in plan.points],
    }
    write_manifest(sweep_dir, manifest)
    return sweep_dir


# --------------------------------------------------------------------------------------------- the lock
def _acquire(sweep_dir: Path) -> int | None:
    return lock_pid_file(sweep_dir / PID_FILE)


def live_sweep_pid(sweep_dir: str | Path) -> int | None:
    """The pid of the sweep process holding the folder's lock (0: held, pid not written yet), or None."""
    return pid_file_holder(Path(sweep_dir) / PID_FILE)


def launch(sweep_dir: str | Path, timeout: float = START_TIMEOUT_S) -> int:
    """Start the detached sweep process on ``sweep_dir``; returns its pid once it holds the folder's lock.

    Raises:
        SweepError: it is running already, or it exited or did not start in time (message with its log's tail).
    """
    from gtl_tui.background import _engine_env

    sweep_dir = Path(sweep_dir).expanduser().resolve()
    other = live_sweep_pid(sweep_dir)
    if other is not None:
        raise SweepError(f"the sweep process of {sweep_dir} is running already (pid {other})")
    with open(sweep_dir / SWEEP_LOG, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gtl_tui.experiments.sweep", str(sweep_dir)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=sweep_dir, env=_engine_env(), close_fds=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if live_sweep_pid(sweep_dir) == proc.pid:
            return proc.pid
        if proc.poll() is not None:
            tail = "\n".join((sweep_dir / SWEEP_LOG).read_text(errors="replace").splitlines()[-10:])
            raise SweepError(f"the sweep process exited with code {proc.returncode} (log: {sweep_dir / SWEEP_LOG})"
                             + (f"\n{tail}" if tail else ""))
        time.sleep(0.05)
    raise SweepError(f"the sweep process (pid {proc.pid}) did not start within {timeout:.0f}s")


# --------------------------------------------------------------------------------------------- states
def has_evaluation(run_dir: Path, protocol: str = "default") -> bool:
    """Whether the run has an evaluation file of ``protocol`` (``<learngene>[.<protocol>].json``)."""
    d = run_dir / EVAL_DIR
    return d.is_dir() and any(not p.name.startswith(".") and file_protocol(p.name) == protocol for p in d.iterdir())


def eval_protocol(args: list[str]) -> str:
    """The ``--protocol`` of one evaluation's arguments (``default`` when absent)."""
    return args[args.index("--protocol") + 1] if "--protocol" in args[:-1] else "default"


def eval_arg_lists(manifest: dict[str, Any]) -> list[list[str]]:
    """The evaluations of a manifest, one argument list each (a version-1 manifest holds a single list)."""
    args = manifest.get("evaluate_args") or []
    return [args] if args and all(isinstance(a, str) for a in args) else list(args)


def point_state(sweep_dir: Path, point: dict[str, Any], query: bool = True) -> str:
    """pending (no run directory yet, or no engine started in it), or the run's state: a live state, finished, stopped, failed, crashed."""
    run = sweep_dir / point["name"]
    if not (run / CONFIG_FILE).is_file():
        return "pending"
    try:
        state = read_run(run, query=query).state
    except RunDirError:
        return "pending"
    if state in ("crashed", "created") and not (run / EVENTS_FILE).exists():
        return "pending"  # created, never started: a placed point whose Ray task is queued, or a cut-short start
    return state


def _eval_alive(pid: int | None, run: Path) -> bool:
    """Whether ``pid`` is an evaluation of ``run`` that a previous sweep process started and that still runs."""
    if not pid:
        return False
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"evaluate" in cmd and str(run).encode() in cmd


def _log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}", flush=True)


class SweepProcess:
    """The loop of the sweep process: start, watch and evaluate the runs of one sweep folder."""

    def __init__(self, sweep_dir: Path):
        self.dir = sweep_dir
        self.manifest = read_manifest(sweep_dir)
        self.points: list[dict[str, Any]] = self.manifest["points"]
        self.max_parallel = int(self.manifest.get("max_parallel") or 1)
        self.eval_args = eval_arg_lists(self.manifest)  # one argument list per evaluation, run in this order
        self.stopping = False
        self.started: set[str] = set()  # points this process started (never restarted by it)
        self.evals: dict[str, subprocess.Popen[bytes]] = {}
        self.eval_tried: set[str] = set()
        self.gpus = list(range(gpu_count()))
        # Ray placement: the points whose engines run on a Ray cluster, one Ray task each (see placement.py)
        self.ray: Any = None
        self.owns_ray = False
        self.host_task: Any = None
        self.tasks: dict[str, Any] = {}  # point name -> the ObjectRef of its task, while it is queued or running
        self.place_failed: set[str] = set()  # points whose task returned an error (this process retries none)
        addresses = {p["config"]["run"]["address"] for p in self.points if is_placed(p["config"])}
        if len(addresses) > 1:
            raise SweepError(f"the points name {len(addresses)} Ray clusters (run.address): a sweep uses one")
        self.ray_address: str | None = addresses.pop() if addresses else None

    # -- actions
    def start_run(self, point: dict[str, Any]) -> None:
        from engine.config import config_from_dict
        from gtl_tui.background import EngineStartError, start_engine

        run = self.dir / point["name"]
        if not (run / CONFIG_FILE).is_file():  # first start (or a start cut short before its config was written)
            (run / "checkpoints").mkdir(parents=True, exist_ok=True)
            (run / "learngenes").mkdir(exist_ok=True)
            write_atomic(run / CONFIG_FILE, config_from_dict(point["config"]).to_toml())
        if self.ray is not None and is_placed(point["config"]):
            self.place_run(point, run)
            return
        env = None
        if self.gpus and point["config"]["run"].get("device", "auto") != "cpu":
            busy = {p.get("gpu") for p in self.points if p.get("state") in LIVE_STATES}
            free = [g for g in self.gpus if g not in busy]
            point["gpu"] = free[0] if free else self.gpus[0]
            env = {"CUDA_VISIBLE_DEVICES": str(point["gpu"])}
        self.started.add(point["name"])
        _log(f"{point['name']}: starting ({point['state']})")
        try:
            pid = start_engine(run, env=env)
        except EngineStartError as err:
            _log(f"{point['name']}: {str(err).splitlines()[0]}")
            point["error"] = str(err).splitlines()[0]
            return
        point["state"], point["pid"] = "starting", pid

    def evals_left(self, run: Path) -> list[list[str]]:
        """The evaluations whose result file the run lacks, in the sweep file's order."""
        return [a for a in self.eval_args if not has_evaluation(run, eval_protocol(a))]

    def place_run(self, point: dict[str, Any], run: Path) -> None:
        """Submit the point's engine to the Ray cluster as one task with its resources; Ray queues it until a node
        has room, and the task runs the engine there until it exits."""
        res = engine_resources(point["config"])
        token = f"{os.getpid()}-{time.time_ns()}"
        self.started.add(point["name"])
        ref = self.host_task.options(name=f"gtl-engine {self.dir.name}/{point['name']}", **res).remote(
            str(run), token)
        self.tasks[point["name"]] = ref
        point.pop("error", None)
        point.pop("placement", None)
        point["ray"] = {"task": ref.task_id().hex(), "token": token, "num_cpus": res["num_cpus"],
                        "num_gpus": res["num_gpus"]}
        point["state"], point["pid"] = "queued", None
        _log(f"{point['name']}: submitted to Ray ({res['num_cpus']:g} CPU, {res['num_gpus']:g} GPU), "
             f"task {point['ray']['task']}")

    def connect_ray(self) -> None:
        """Connect to the points' Ray cluster; cap the engines at once so that their CPUs leave room for one worker
        (else every engine would hold a CPU and wait for workers that never start)."""
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        try:
            import ray
        except ImportError:
            raise SweepError("run.backend = 'ray' needs Ray: pip install 'gtl-tui[ray]'") from None
        import logging

        try:
            if not ray.is_initialized():  # (a test's process may be connected already)
                ray.init(address=self.ray_address, logging_level=logging.WARNING, log_to_driver=False)
                self.owns_ray = True
        except Exception as err:  # noqa: BLE001 (ConnectionError, RuntimeError, ValueError: one line either way)
            raise SweepError(f"cannot connect to the Ray cluster at {self.ray_address}: "
                             f"{str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__}"
                             ) from None
        self.ray = ray
        self.host_task = ray.remote(max_retries=0)(host_engine)
        total = ray.cluster_resources()
        _log(f"Ray cluster {self.ray_address}: " + ", ".join(f"{total.get(k, 0):g} {k}" for k in ("CPU", "GPU"))
             + f", {len([n for n in ray.nodes() if n.get('Alive')])} node(s); each engine runs as a Ray task there")
        runs = [p["config"]["run"] for p in self.points if is_placed(p["config"])]
        cap = self.max_parallel
        engine_cpus = max(r.get("ray_engine_cpus", 1.0) for r in runs)
        if engine_cpus > 0:
            worker = max(r.get("ray_cpus_per_worker", 1.0) for r in runs)
            cap = min(cap, max(1, int((total.get("CPU", 0) - worker) // engine_cpus + 1e-9)))
        engine_gpus = max(r.get("ray_engine_gpus", 0.0) for r in runs)
        if engine_gpus > 0 and total.get("GPU", 0):
            cap = min(cap, max(1, int(total["GPU"] // engine_gpus + 1e-9)))
        if cap < self.max_parallel:
            _log(f"{cap} engines at once (not {self.max_parallel}): the cluster's "
                 f"{total.get('CPU', 0):g} CPUs must leave room for the engines' Ray workers")
            self.max_parallel = cap

    def collect_tasks(self) -> None:
        """Take the results of the Ray tasks that ended: a placement error fails the point; record where it ran."""
        if not self.tasks:
            return
        names = {ref: name for name, ref in self.tasks.items()}
        done, _ = self.ray.wait(list(names), num_returns=len(names), timeout=0)
        for ref in done:
            name = names[ref]
            del self.tasks[name]
            point = next(p for p in self.points if p["name"] == name)
            try:
                result = self.ray.get(ref)
            except Exception as err:  # noqa: BLE001 (the task's worker or node died: the engine may live on)
                result = {"error": f"its Ray task failed: {type(err).__name__}: "
                                   f"{str(err).strip().splitlines()[-1] if str(err).strip() else ''}"}
            where = {k: result[k] for k in ("node", "host", "task", "resources", "pid") if k in result}
            if where:
                point["placement"] = where
            if result.get("error"):
                point["error"] = result["error"]
                self.place_failed.add(name)
                _log(f"{name}: failed: {result['error']}")
            else:
                _log(f"{name}: its engine on node {str(result.get('node'))[:8]} ({result.get('host')}) exited: "
                     f"{result.get('state')}")

    def placed_state(self, point: dict[str, Any], state: str) -> str:
        """The state of a placed point: queued while its task waits for room, failed when the task failed."""
        name = point["name"]
        if name in self.tasks and state not in LIVE_STATES:
            rec = read_placement(self.dir / name)
            mine = rec is not None and rec.get("token") == point.get("ray", {}).get("token")
            if mine and "placement" not in point:
                point["placement"] = {k: rec[k] for k in ("node", "host", "task", "resources") if k in rec}
            if mine and rec.get("pid") and state != "pending":
                return state  # its engine ran and ended; the task returns in a moment
            return "starting" if mine else "queued"
        if name in self.place_failed and state not in LIVE_STATES:
            return "failed"
        return state

    def wait_for_cache(self, point: dict[str, Any]) -> bool:
        """Whether the point's next evaluation should wait: while no run has been evaluated under its protocol
        yet and one such evaluation is under way, that one fills the cache with the baselines this one would
        otherwise compute again."""
        left = self.evals_left(self.dir / point["name"])
        if not left:
            return False
        protocol = eval_protocol(left[0])
        # an evaluation under way (this process's or one a previous sweep process left running) is the first
        # its run still lacks
        running = {eval_protocol(theirs[0]) for p in self.points if p["state"] == "evaluating"
                   and (theirs := self.evals_left(self.dir / p["name"]))}
        if protocol not in running:
            return False
        return not any(has_evaluation(self.dir / p["name"], protocol) for p in self.points)

    def start_eval(self, point: dict[str, Any]) -> None:
        from gtl_tui.background import _engine_env

        run = self.dir / point["name"]
        args = self.evals_left(run)[0]
        self.eval_tried.add(point["name"])
        _log(f"{point['name']}: evaluating ({eval_protocol(args)} protocol)")
        with open(run / EVAL_LOG, "ab") as log:
            cache = [] if "--cache-dir" in args else ["--cache-dir", str(self.dir / EVAL_CACHE)]
            proc = subprocess.Popen([sys.executable, "-m", "gtl_tui.cli", "evaluate", str(run), *args, *cache],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, cwd=run, env=_engine_env(), close_fds=True)
        self.evals[point["name"]] = proc
        point["eval_pid"] = proc.pid

    # -- the loop
    def step(self) -> bool:
        """One pass: observe, then start what fits. Returns False when nothing is left to do."""
        for name, proc in list(self.evals.items()):
            if proc.poll() is not None:
                del self.evals[name]
                point = next(p for p in self.points if p["name"] == name)
                point.pop("eval_pid", None)
                if proc.returncode != 0:
                    point["eval_error"] = f"evaluate exited with code {proc.returncode} (see {EVAL_LOG})"
                    _log(f"{name}: {point['eval_error']}")
                elif self.evals_left(self.dir / name):
                    self.eval_tried.discard(name)  # the next evaluation of this run
        if self.ray is not None:
            self.collect_tasks()
        states = {p["name"]: point_state(self.dir, p) for p in self.points}
        for p in self.points:
            state = states[p["name"]]
            if self.ray is not None:
                state = self.placed_state(p, state)
            if state == "finished" and self.eval_args:
                run = self.dir / p["name"]
                if p["name"] in self.evals or _eval_alive(p.get("eval_pid"), run):
                    state = "evaluating"
                elif not self.evals_left(run):
                    state = "evaluated"
            if state != p["state"]:
                _log(f"{p['name']}: {state}")
            p["state"] = state
        busy = sum(1 for p in self.points if p["state"] in (*LIVE_STATES, "evaluating", "queued"))
        todo_eval = [p for p in self.points if self.eval_args and p["state"] == "finished"
                     and p["name"] not in self.eval_tried]
        todo_run = [p for p in self.points if p["name"] not in self.started
                    and p["state"] in ("pending", "crashed", "stopped", "failed")]
        paused = any(p["state"] in ("paused", "pausing") for p in self.points)
        if not self.stopping and not paused:
            for p in todo_eval:
                if busy >= self.max_parallel:
                    break
                if self.wait_for_cache(p):
                    continue
                self.start_eval(p)
                p["state"] = "evaluating"
                busy += 1
            for p in todo_run:
                if busy >= self.max_parallel or self.stopping:
                    break
                self.start_run(p)
                busy += 1
        self.manifest["state"] = "running"
        if self.stopping:
            return False
        waiting = busy or self.tasks or any(p["name"] not in self.started and p["state"] in ("pending", "crashed", "stopped",
                                                                                "failed") for p in self.points)
        waiting = waiting or any(self.eval_args and p["state"] == "finished" and p["name"] not in self.eval_tried
                                 for p in self.points)
        return bool(waiting)

    def run(self) -> int:
        if self.ray_address is not None:
            self.connect_ray()
        self.manifest["pid"] = os.getpid()
        self.manifest["state"] = "running"
        write_manifest(self.dir, self.manifest)
        last = ""
        while True:
            going = self.step()
            snapshot = json.dumps(self.manifest, sort_keys=True, default=str)
            if snapshot != last:
                write_manifest(self.dir, self.manifest)
                last = snapshot
            if not going:
                break
            time.sleep(POLL_S)
        done = {"finished", "evaluated"}
        if self.stopping:
            self.manifest["state"] = "stopped"
        else:
            self.manifest["state"] = "finished" if all(p["state"] in done for p in self.points) else "incomplete"
        if self.tasks:  # only on a stop: Ray cancels the queued tasks when this driver leaves; engines go on
            queued = [p for p in self.points if p["name"] in self.tasks and p["state"] == "queued"]
            for p in queued:
                p["state"] = point_state(self.dir, p)
            _log(f"{len(queued)} queued Ray task(s) cancelled; {len(self.tasks) - len(queued)} placed engine(s) "
                 "go on without their Ray task (Ray no longer counts their resources)")
        self.manifest["pid"] = None
        write_manifest(self.dir, self.manifest)
        _log(f"sweep {self.manifest['state']}: " + ", ".join(
            f"{s} {n}" for s, n in Counter(p["state"] for p in self.points).items()))
        if self.owns_ray:
            self.ray.shutdown()
        return 0



def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m gtl_tui.experiments.sweep SWEEP_DIR", file=sys.stderr)
        return 2
    sweep_dir = Path(args[0]).expanduser().resolve()
    try:
        proc = SweepProcess(sweep_dir)
    except SweepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    lock = _acquire(sweep_dir)
    if lock is None:
        print(f"error: another sweep process (pid {live_sweep_pid(sweep_dir)}) runs {sweep_dir}", file=sys.stderr)
        return 3

    def on_signal(signum: int, frame: FrameType | None) -> None:
        _log(f"{signal.Signals(signum).name}: the sweep stops starting runs; its engines go on")
        proc.stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _log(f"sweep started: pid {os.getpid()}, {len(proc.points)} points, {proc.max_parallel} at once, {sweep_dir}")
    try:
        return proc.run()
    except SweepError as err:  # the Ray cluster is unreachable: one line in sweep.log, which launch() shows
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    finally:
        with contextlib.suppress(OSError):
            os.close(lock)


if __name__ == "__main__":
    sys.exit(main())
