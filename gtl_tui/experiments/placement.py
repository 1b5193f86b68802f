"""A sweep's engines placed on a Ray cluster: one Ray task per run, which runs that run's engine on its node.

Where a sweep's runs use ``run.backend = "ray"`` with a cluster (``run.address``), the sweep process connects to
the cluster and submits one task per point, claiming ``run.ray_engine_cpus`` CPUs and ``run.ray_engine_gpus``
GPUs. Ray queues the tasks the cluster has no room for and starts each on whichever node it picks; the task
(:func:`host_engine`, in a Ray worker process there):

1. checks that the run directory is visible on its node (the runs dir must be on storage every node shares), and
   returns a one-line error otherwise, which the sweep records as the point's failure;
2. writes ``placement.json`` into the run directory (node, host, task id, resources granted) and a line to
   ``engine.log``;
3. starts the ordinary background engine (``python -m engine.run.daemon RUN_DIR``, through
   ``python -m gtl_tui.experiments.placement RUN_DIR``, which waits until its control socket answers and exits,
   so the engine is nobody's child in Ray: when Ray ends the task's worker, the engine goes on);
4. waits for the engine to exit and returns the run's final state.

The engine owns its run directory as any background engine does (its lock on ``engine.pid``, its control socket,
its ``engine.log``): the sweep's control verbs and a second engine's refusal to start work through the run
directory, as on one machine. No torch here.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from engine.atomic import write_atomic
from engine.rundir import CONFIG_FILE, LOG_FILE, PID_FILE, pid_file_holder

#: The placement record a task writes into the run directory.
PLACEMENT_FILE = "placement.json"
#: Variables of a Ray worker process that describe that worker, not the cluster: the engine (a new driver) must
#: not inherit them.
WORKER_ONLY_ENV = ("RAY_JOB_ID", "RAY_RAYLET_PID", "RAY_CLIENT_MODE", "RAY_LD_PRELOAD_ON_WORKERS")
LAUNCH_TIMEOUT_S = 300.0


def is_placed(config: dict[str, Any]) -> bool:
    """Whether a sweep places this run's engine on a Ray cluster (backend ``ray`` with an address)."""
    run = config.get("run", {})
    return run.get("backend") == "ray" and bool(run.get("address"))


def engine_resources(config: dict[str, Any]) -> dict[str, float]:
    """The Ray resources the engine of a placed run claims: ``num_cpus``, ``num_gpus``."""
    run = config.get("run", {})
    return {"num_cpus": float(run.get("ray_engine_cpus", 1.0)), "num_gpus": float(run.get("ray_engine_gpus", 0.0))}


def read_placement(run_dir: str | Path) -> dict[str, Any] | None:
    try:
        data = json.loads((Path(run_dir) / PLACEMENT_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _engine_log(run: Path, message: str) -> None:
    try:
        fd = os.open(run / LOG_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with open(fd, "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
    except OSError:
        pass


def _wait_exit(pid: int, run: Path) -> None:
    """Wait until process ``pid`` (not our child) has exited; by its pidfd, else by the run directory's lock."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # gone already, or no pidfd on this system
        fd = None
    if fd is not None:
        try:
            select.select([fd], [], [])
        finally:
            os.close(fd)
        return
    while pid_file_holder(run / PID_FILE) is not None:
        time.sleep(1.0)


def host_engine(run_dir: str, token: str) -> dict[str, Any]:
    """The body of a run's Ray task: run its engine on this node until it exits (see the module's docstring).

    Returns ``{"error": one line}`` when the engine cannot start here, else where it ran (``node``, ``host``,
    ``task``, ``resources``, ``pid``) and the run's final ``state``.
    """
    import ray

    ctx = ray.get_runtime_context()
    where: dict[str, Any] = {
        "token": token, "node": ctx.get_node_id(), "host": socket.gethostname(), "task": ctx.get_task_id(),
        "resources": ctx.get_assigned_resources(), "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
        "started": round(time.time(), 3)}
    run = Path(run_dir)
    if not (run / CONFIG_FILE).is_file():
        return {**where, "error": f"{run} is not visible on Ray node {where['node'][:8]} ({where['host']}): a sweep "
                                  f"on a cluster needs its runs dir on storage that every node mounts at the same path"}
    try:
        write_atomic(run / PLACEMENT_FILE, json.dumps(where, indent=2) + "\n")
    except OSError as err:
        return {**where, "error": f"{run} is not writable on Ray node {where['node'][:8]} ({where['host']}): {err}"}
    res = ", ".join(f"{v:g} {k}" for k, v in sorted(where["resources"].items())) or "no resources"
    _engine_log(run, f"placed by Ray: task {where['task']} on node {where['node']} ({where['host']}), {res}")
    env = {k: v for k, v in os.environ.items() if k not in WORKER_ONLY_ENV}
    try:
        out = subprocess.run([sys.executable, "-m", "gtl_tui.experiments.placement", str(run)], env=env, cwd=run,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as err:
        return {**where, "error": f"cannot start the engine on {where['host']}: {err}"}
    if out.returncode != 0 or not out.stdout.strip().isdigit():
        lines = (out.stderr or out.stdout).strip().splitlines()
        return {**where, "error": lines[0] if lines else f"the engine launcher exited with code {out.returncode}"}
    pid = int(out.stdout.strip())
    where["pid"] = pid
    write_atomic(run / PLACEMENT_FILE, json.dumps(where, indent=2) + "\n")
    _wait_exit(pid, run)
    from gtl_tui.runs import read_run

    try:
        state = read_run(run, query=False).state
    except ValueError:
        state = "crashed"
    return {**where, "state": state}


def main(argv: list[str] | None = None) -> int:
    """``python -m gtl_tui.experiments.placement RUN_DIR``: start the background engine of ``RUN_DIR``, print its
    pid once its control socket answers, exit (the engine, in its own session, is then nobody's child)."""
    from gtl_tui.background import EngineStartError, start_engine

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m gtl_tui.experiments.placement RUN_DIR", file=sys.stderr)
        return 2
    try:
        pid = start_engine(args[0])
    except EngineStartError as err:
        print(str(err), file=sys.stderr)
        return 1
    print(pid, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
