"""The Ray backend: the lifetimes of a generation run on Ray actors, here or across a cluster.

The driver (the engine process) keeps the evolution state, the event log and the checkpoints; it only sends
genomes out and gets :class:`LifeResult` back. The dataset goes into Ray's object store once per run and every
actor builds its :class:`LifeContext` from it once, so worker nodes need neither the data files nor a shared
filesystem. Each actor trains with the trainer ``run.trainer`` picks on its device (sequential on a CPU, the
population trainer on a GPU): a sequential actor gets one individual at a time, a population actor a chunk.

A lifetime is a pure function of (config, dataset, genome), so an individual whose worker died is simply run again
on another (restarted) worker, and the fitness history equals the local backend's for the same seed.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

import engine
from engine.config import Config
from engine.evolution.individual import Genome, LifeResult
from engine.evolution.lifetime import LifeContext
from engine.trainers.base import OnDone, OnStart

log = logging.getLogger(__name__)

#: Longest wait for a worker to start when none is running (a replacement the cluster has no room for).
START_TIMEOUT_S = 600.0
#: How often the driver passes a safe point while waiting for results (pause and stop latency).
POLL_S = 0.5


def import_ray(local: bool) -> Any:
    """Import Ray; ``local``: a Ray started here binds to loopback only (must be set before Ray is imported)."""
    if local:
        # Ray then takes 127.0.0.1 as the node address, and its servers listen on loopback only.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise ImportError("run.backend = 'ray' needs Ray: pip install 'gtl-tui[ray]'") from None
    if local:  # Ray was imported before (by a test or the user): the flag is read at import time
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False
    return ray


def start_local_ray(cpus: int, gpus: int | None = None) -> Any:
    """Start a Ray instance in this process: ``cpus`` CPUs, GPUs detected (or ``gpus``), loopback only, no
    dashboard, no usage reporting. Returns the ``ray`` module."""
    ray = import_ray(local=True)
    kwargs: dict[str, Any] = {"num_cpus": cpus, "include_dashboard": False, "logging_level": logging.WARNING,
                              "_node_ip_address": "127.0.0.1"}
    if gpus is not None:
        kwargs["num_gpus"] = gpus
    ray.init(**kwargs)
    return ray


class _LifeWorker:
    """A Ray actor: builds the run's context once, then trains the genomes it is sent."""

    def __init__(self, payload: tuple[Config, Any, Any], threads: int):
        cfg, dataset, partition = payload
        torch.set_num_threads(threads)
        import ray

        device = torch.device("cpu")
        if cfg.run.device != "cpu" and ray.get_gpu_ids() and torch.cuda.is_available():
            device = torch.device("cuda")  # Ray set CUDA_VISIBLE_DEVICES to this actor's GPU(s)
        cfg = cfg.model_copy(deep=True)  # a copy, not re-validated: data.root need not exist on this node
        cfg.run.backend = "local"
        cfg.run.device = str(device)
        from engine.trainers import make_trainer

        self.ctx = LifeContext(cfg=cfg, dataset=dataset, partition=partition, device=device)
        self.trainer = make_trainer(self.ctx)

    def ready(self) -> dict[str, Any]:
        import ray

        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()[:8],
                "device": str(self.ctx.device), "trainer": self.trainer.name, "version": engine.__version__}

    def train(self, genomes: list[Genome]) -> list[LifeResult]:
        return self.trainer.train_generation(genomes, on_start=_ignore, on_done=_ignore, safe_point=_nothing)


def _ignore(*_: object) -> None:
    pass


def _nothing() -> None:
    pass


@dataclass
class _Worker:
    actor: Any
    ready_ref: Any
    info: dict[str, Any] | None = None  # set once the actor has started

    def describe(self) -> str:
        i = self.info or {}
        return f"Ray worker {i.get('pid', '?')} on node {i.get('node', '?')}"


class RayTrainer:
    """Trains each generation on Ray actors; results in genome order, callbacks on the driver thread."""

    name = "ray"

    def __init__(self, ctx: LifeContext):
        run = ctx.cfg.run
        self.ctx = ctx
        self.on_warning: Callable[[str], None] | None = None  # the loop sets it: warnings become events
        self.max_retries = run.ray_max_retries
        self.ray = import_ray(local=run.address is None)
        self._owns_ray = False
        if not self.ray.is_initialized():
            if run.address is None:
                start_local_ray(run.ray_workers)
            else:
                self.ray.init(address=run.address, logging_level=logging.WARNING)
            self._owns_ray = True
        resources = self.ray.cluster_resources()
        self.gpus_per_worker = run.ray_gpus_per_worker if run.device != "cpu" and resources.get("GPU", 0) else 0.0
        self.cpus_per_worker = run.ray_cpus_per_worker
        n = math.floor(resources.get("CPU", 0) / self.cpus_per_worker + 1e-9)
        if self.gpus_per_worker:
            n = min(n, math.floor(resources["GPU"] / self.gpus_per_worker + 1e-9))
        n = min(n, ctx.cfg.evolution.population)
        if n < 1:
            raise ValueError(f"the Ray cluster ({_fmt(resources)}) has no room for one worker of "
                             f"{self.cpus_per_worker:g} CPU and {self.gpus_per_worker:g} GPU")
        self._actor_cls = self.ray.remote(_LifeWorker)
        self._payload = self.ray.put((ctx.cfg, ctx.dataset, ctx.partition))  # the data travels once per run
        self.workers: list[_Worker] = [self._spawn() for _ in range(n)]
        self._running: dict[Any, tuple[_Worker, list[Genome]]] = {}
        self._start_failures = 0
        log.info("Ray backend: %d workers (%g CPU, %g GPU each) on %s", n, self.cpus_per_worker,
                 self.gpus_per_worker, _fmt(resources))

    # ----------------------------------------------------------------------------------------- protocol
    def train_generation(self, genomes: list[Genome], *, on_start: OnStart, on_done: OnDone,
                         safe_point: Callable[[], None]) -> list[LifeResult]:
        results: dict[int, LifeResult] = {}
        failures: dict[int, int] = {}
        started: set[int] = set()
        queue: deque[list[Genome]] | None = None  # chunked once the first worker says which trainer it runs
        waited_since = time.monotonic()
        try:
            while queue is None or queue or self._running:
                paused_from = time.monotonic()
                safe_point()  # while paused nothing new is sent out; a stop cancels what runs
                waited_since += time.monotonic() - paused_from  # a pause is no start timeout
                idle = [w for w in self.workers if w.info is not None and not self._busy(w)]
                if queue is None and idle:
                    queue = deque(self._chunks(genomes))
                while queue and idle:
                    worker, chunk = idle.pop(0), queue.popleft()
                    self._running[worker.actor.train.remote(chunk)] = (worker, chunk)
                    for gm in chunk:
                        if gm.id not in started:
                            started.add(gm.id)
                            on_start(gm)
                starting = {w.ready_ref: w for w in self.workers if w.info is None}
                if not self._running and time.monotonic() - waited_since > START_TIMEOUT_S:
                    raise RuntimeError(f"no Ray worker started in {START_TIMEOUT_S:g} s "
                                       f"(cluster: {_fmt(self.ray.cluster_resources())})")
                done, _ = self.ray.wait([*self._running, *starting], num_returns=1, timeout=POLL_S)
                for ref in done:
                    if ref in starting:
                        self._started(starting[ref], ref)
                        waited_since = time.monotonic()
                        continue
                    worker, chunk = self._running.pop(ref)
                    try:
                        out = self.ray.get(ref)
                    except self._lost_errors as err:
                        self._replace(worker, chunk, err, failures, queue)
                        continue
                    except self.ray.exceptions.RayTaskError as err:
                        ids = ", ".join(str(gm.id) for gm in chunk)
                        raise RuntimeError(f"individual {ids} failed on {worker.describe()}: "
                                           f"{type(err.cause).__name__}: {err.cause}") from err
                    for gm, r in zip(chunk, out, strict=True):
                        results[gm.id] = r
                        on_done(gm, r)
        except BaseException:
            self._cancel()
            raise
        return [results[gm.id] for gm in genomes]

    def close(self) -> None:
        """Kill the actors and, when this trainer started Ray, shut it down."""
        self._cancel()
        for w in self.workers:
            self._kill(w)
        self.workers = []
        if self._owns_ray and self.ray.is_initialized():
            self.ray.shutdown()
            self._owns_ray = False

    # ----------------------------------------------------------------------------------------- queries
    def running(self) -> dict[int, int]:
        """Genome id -> pid of the worker process training it, for what is in flight now."""
        return {gm.id: (w.info or {}).get("pid", 0) for w, chunk in self._running.values() for gm in chunk}

    # ----------------------------------------------------------------------------------------- internals
    @property
    def _lost_errors(self) -> tuple[type[BaseException], ...]:
        """Errors meaning the worker (process or node) is gone, not that the lifetime itself failed."""
        exc = self.ray.exceptions
        names = ("RayActorError", "WorkerCrashedError", "NodeDiedError", "LocalRayletDiedError", "ObjectLostError",
                 "OutOfMemoryError")
        return tuple(getattr(exc, n) for n in names if hasattr(exc, n))

    def _spawn(self) -> _Worker:
        actor = self._actor_cls.options(num_cpus=self.cpus_per_worker, num_gpus=self.gpus_per_worker,
                                        max_restarts=0).remote(self._payload, max(1, int(self.cpus_per_worker)))
        return _Worker(actor=actor, ready_ref=actor.ready.remote())

    def _started(self, worker: _Worker, ref: Any) -> None:
        try:
            worker.info = self.ray.get(ref)
        except self._lost_errors as err:
            if getattr(err, "_actor_init_failed", False):  # its constructor raised: a setup problem, not bad luck
                raise RuntimeError(f"a Ray worker failed to start: {_last_line(err)}") from err
            self._start_failures += 1
            if self._start_failures > max(3, self.max_retries):
                raise RuntimeError(f"Ray workers keep dying while starting ({self._start_failures} times); "
                                   f"last: {_last_line(err)}") from err
            self._warn(f"a Ray worker died while starting ({type(err).__name__}); starting another")
            self.workers[self.workers.index(worker)] = self._spawn()
            return
        if worker.info["version"] != engine.__version__:
            raise RuntimeError(f"{worker.describe()} runs gtl-tui {worker.info['version']}, the driver "
                               f"{engine.__version__}: install the same version on every node")

    def _replace(self, worker: _Worker, chunk: list[Genome], err: BaseException, failures: dict[int, int],
                 queue: deque[list[Genome]] | None) -> None:
        """A worker died with ``chunk`` in flight: start a replacement and queue the chunk again (first)."""
        ids = ", ".join(str(gm.id) for gm in chunk)
        for gm in chunk:
            failures[gm.id] = failures.get(gm.id, 0) + 1
            if failures[gm.id] > self.max_retries:
                raise RuntimeError(f"individual {gm.id} lost its Ray worker {failures[gm.id]} times "
                                   f"(run.ray_max_retries = {self.max_retries}); last: {type(err).__name__}")
        self._warn(f"{worker.describe()} died ({type(err).__name__}); re-running individual {ids} on another worker")
        self._kill(worker)
        self.workers[self.workers.index(worker)] = self._spawn()
        assert queue is not None
        queue.appendleft(chunk)

    def _chunks(self, genomes: list[Genome]) -> list[list[Genome]]:
        """One genome per task for sequential workers; for population workers one balanced chunk per worker."""
        if all(w.info is None or w.info["trainer"] == "sequential" for w in self.workers):
            return [[gm] for gm in genomes]
        size = math.ceil(len(genomes) / len(self.workers))
        return [genomes[i:i + size] for i in range(0, len(genomes), size)]

    def _busy(self, worker: _Worker) -> bool:
        return any(w is worker for w, _ in self._running.values())

    def _cancel(self) -> None:
        for ref in list(self._running):
            try:
                self.ray.cancel(ref)
            except Exception as err:  # noqa: BLE001 (best effort: the actors are killed on close anyway)
                log.debug("cancel failed: %s", err)
        self._running.clear()

    def _kill(self, worker: _Worker) -> None:
        try:
            self.ray.kill(worker.actor, no_restart=True)
        except Exception as err:  # noqa: BLE001 (already dead)
            log.debug("kill failed: %s", err)

    def _warn(self, message: str) -> None:
        log.warning(message)
        if self.on_warning is not None:
            self.on_warning(message)


def _fmt(resources: dict[str, float]) -> str:
    return ", ".join(f"{resources.get(k, 0):g} {k}" for k in ("CPU", "GPU"))


def _last_line(err: BaseException) -> str:
    """The last line of a (multi-line, colored) Ray error: usually the remote exception itself."""
    lines = [ln.strip() for ln in re.sub(r"\x1b\[[0-9;]*m", "", str(err)).splitlines() if ln.strip()]
    return lines[-1] if lines else type(err).__name__
