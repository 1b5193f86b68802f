"""Folds a run's events into the state the monitor shows. Plain Python: no Textual, no torch.

One :class:`RunState` per run. ``apply`` takes events in log order; views read the attributes and ask
``take_changes`` what moved since they last looked, so a burst of events costs one redraw. Memory is bounded
except for one :class:`Individual` per individual (and its mutations): the feed is a bounded deque and no
event object is kept beyond it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from engine.events import (
    CheckpointSaved,
    Event,
    GenerationCompleted,
    GenerationStarted,
    IndividualBorn,
    IndividualEvaluated,
    IndividualStarted,
    LearngeneExported,
    Paused,
    Resumed,
    RunFinished,
    RunStarted,
    Tournament,
    Warning_,
)
from engine.rundir import FINISHED_STATES
from gtl_tui import gc_policy

#: Individual states shown in the population table.
WAITING, TRAINING, DONE = "waiting", "training", "done"
#: How a finished run's ``RunFinished.status`` reads in the header.


@dataclass(slots=True)
class Individual:
    """One network of the population and its learngene."""

    id: int
    generation: int
    parent: int | None
    task_names: list[str]
    channels: list[list[int]]
    layer_widths: list[int]
    gene_sizes: list[int]
    fraction: float
    mutations: list[dict[str, Any]]
    fitness: float | None = None
    rank: int | None = None
    state: str = WAITING
    seconds: float | None = None
    images: int = 0
    won: bool = False
    loss_curve: list[float] | None = None  # its lifetime's training loss, stretch by stretch (newer engines)
    stale: bool = False  # from before a resume, not (yet) born again


@dataclass(slots=True)
class GenerationStats:
    generation: int
    best: float
    mean: float
    worst: float
    std: float
    diversity: float
    best_id: int
    elite_id: int
    elite_fitness: float
    seconds: float
    images_per_s: float
    timing: dict[str, float] | None = None  # wall/train/host/wait seconds (peak_mem, gpu_util on CUDA), if logged


class Mutation(NamedTuple):
    """One mutation an individual received at birth (a tuple: 40,000 of them are built on attach)."""

    generation: int
    individual: int
    layer: int
    op: str
    added: tuple[int, ...]
    removed: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Export:
    path: str
    individual: int
    fitness: float
    fraction: float
    reason: str
    t: float


@dataclass
class Changes:
    """What moved since the last ``take_changes`` (views redraw only what they need)."""

    individuals: set[int] = field(default_factory=set)
    generation: bool = False  # a new current generation: the population table starts over
    stats: bool = False
    mutations: bool = False
    exports: bool = False
    feed: int = 0  # events appended to the feed
    reset: bool = False  # a resume replaced data: redraw everything
    status: bool = False

    def any(self) -> bool:
        return bool(self.individuals or self.generation or self.stats or self.mutations or self.exports
                    or self.feed or self.reset or self.status)


class RunState:
    """The monitor's model of one run.

    Args:
        feed_size: events kept for the event feed.
        clock: returns "now" in unix seconds (elapsed time and ETA); a replay passes the log's clock and
            snapshot tests a fixed one.
    """

    def __init__(self, *, feed_size: int = 500, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.run: RunStarted | None = None
        self.started_t: float | None = None
        self.finished: RunFinished | None = None
        self.stops: list[list[float | None]] = []
        """[start, end] of each time the run was not running: a pause, or the gap between a stop (or crash) and
        its resume; end is None while it lasts. Elapsed time, ETA and throughput leave these out."""
        self._busy_t: float | None = None  # time of the last result: where a crashed run's stop begins
        self.population = 0
        self.generations = 0
        self.current_generation = -1
        self.generation_started_t: dict[int, float] = {}
        self.stats: dict[int, GenerationStats] = {}
        self.individuals: dict[int, Individual] = {}
        self.by_generation: dict[int, list[int]] = {}
        self.children: dict[int, list[int]] = {}
        self.mutations: list[Mutation] = []
        self.exports: list[Export] = []
        self.checkpoints: dict[int, str] = {}
        self.warnings = 0
        self.tournaments: dict[int, int] = {}
        self.evaluated: dict[int, int] = {}
        self.images: dict[int, int] = {}
        self.feed: deque[Event] = deque(maxlen=feed_size)
        self.last_t: float | None = None
        self.events_seen = 0
        self.paused = False
        self.pause_requested = False
        self.resume_requested = False
        self.stop_requested = False
        self.engine_alive: bool | None = None
        """Set by the event source: False when the engine's pid is gone (a run without RunFinished crashed)."""
        self._stale_generations: set[int] = set()
        self._changes = Changes()
        self._handlers: dict[type[Event], Callable[[Any], None]] = {
            RunStarted: self._run_started,
            GenerationStarted: self._generation_started,
            IndividualBorn: self._born,
            IndividualStarted: self._started,
            IndividualEvaluated: self._evaluated,
            Tournament: self._tournament,
            GenerationCompleted: self._generation_completed,
            CheckpointSaved: self._checkpoint,
            LearngeneExported: self._exported,
            Paused: self._paused,
            Resumed: self._resumed,
            Warning_: self._warning,
            RunFinished: self._run_finished,
        }

    # ---- folding -------------------------------------------------------------------------------------
    def apply(self, event: Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)
        self.feed.append(event)
        self._changes.feed += 1
        self.events_seen += 1
        self.last_t = event.t

    def apply_all(self, events: Iterable[Event]) -> None:
        """``apply`` each event in turn (the feed only receives the last ``feed_size``: the rest would drop out)."""
        events = events if isinstance(events, list) else list(events)
        if not events:
            return
        handlers = self._handlers
        with gc_policy.paused():  # a big batch allocates many small objects and makes no cycles
            for ev in events:
                handler = handlers.get(type(ev))
                if handler is not None:
                    handler(ev)
        keep = self.feed.maxlen
        self.feed.extend(events if keep is None or len(events) <= keep else events[-keep:])
        self._changes.feed += len(events)
        self.events_seen += len(events)
        self.last_t = events[-1].t

    def take_changes(self) -> Changes:
        changes, self._changes = self._changes, Changes()
        return changes

    def _run_started(self, ev: RunStarted) -> None:
        self.run = ev
        if self.started_t is None:
            self.started_t = ev.t
        elif ev.resumed_from is not None:  # a resumed run: the time it lay stopped (or crashed) is no run time
            last = self.finished.t if self.finished is not None else self._busy_t
            if last is not None and last < ev.t:
                self.stops.append([last, ev.t])
        self._close_stop(ev.t)
        self.population, self.generations = ev.population, ev.generations
        self.finished = None
        self.paused = self.pause_requested = self.resume_requested = self.stop_requested = False
        if ev.resumed_from is not None:
            self._truncate(ev.resumed_from)
        self._changes.status = True

    def _truncate(self, generation: int) -> None:
        """A resume continues with ``generation``: what was logged of it and later is replaced.

        Later generations are dropped; the individuals of ``generation`` go back to waiting and are marked
        stale until the engine logs them again (a re-born id replaces its record; stale records of a
        generation that is born again are dropped then).
        """
        for g in [g for g in self.by_generation if g > generation]:
            for i in self.by_generation.pop(g):
                self._drop(i)
        for i in self.by_generation.get(generation, []):
            rec = self.individuals[i]
            rec.fitness = rec.rank = rec.seconds = None
            rec.state, rec.images, rec.won, rec.stale = WAITING, 0, False, True
        if self.by_generation.get(generation):
            self._stale_generations.add(generation)
        for d in (self.stats, self.tournaments, self.evaluated, self.images, self.generation_started_t,
                  self.checkpoints):
            for g in [g for g in d if g >= generation]:
                del d[g]
        self.current_generation = min(self.current_generation, generation)
        self.mutations = [m for m in self.mutations if m.individual in self.individuals]
        self._changes.reset = True

    def _drop(self, i: int) -> None:
        rec = self.individuals.pop(i, None)
        if rec is None:
            return
        if rec.parent is not None and rec.parent in self.children:
            kids = self.children[rec.parent]
            if i in kids:
                kids.remove(i)
        self._changes.mutations = True

    def _generation_started(self, ev: GenerationStarted) -> None:
        g = ev.generation
        self.generation_started_t[g] = ev.t
        if g != self.current_generation:
            self.current_generation = g
            self._changes.generation = True
        self.evaluated.setdefault(g, 0)

    def _born(self, ev: IndividualBorn) -> None:
        g = ev.generation
        ids = self.by_generation.setdefault(g, [])
        if g in self._stale_generations:  # the generation is logged again after a resume: its old records go
            self._stale_generations.discard(g)
            for i in [i for i in ids if self.individuals[i].stale]:
                self._drop(i)
            ids[:] = [i for i in ids if i in self.individuals]
            self.mutations = [m for m in self.mutations if m.individual in self.individuals]
            self._changes.reset = True
        if ev.id in self.individuals:
            self._drop(ev.id)
            if ev.id in ids:
                ids.remove(ev.id)
            self.mutations = [m for m in self.mutations if m.individual != ev.id]
        self.individuals[ev.id] = Individual(
            id=ev.id, generation=g, parent=ev.parent, task_names=ev.task_names, channels=ev.channels,
            layer_widths=ev.layer_widths, gene_sizes=ev.gene_sizes, fraction=ev.fraction, mutations=ev.mutations,
        )
        ids.append(ev.id)
        if ev.parent is not None:
            self.children.setdefault(ev.parent, []).append(ev.id)
        for m in ev.mutations:
            self.mutations.append(Mutation(g, ev.id, int(m.get("layer", -1)), str(m.get("op", "?")),
                                           tuple(m.get("added") or ()), tuple(m.get("removed") or ())))
        if ev.mutations:
            self._changes.mutations = True
        if g > self.current_generation:
            self.current_generation = g
            self._changes.generation = True
        self._changes.individuals.add(ev.id)

    def _started(self, ev: IndividualStarted) -> None:
        rec = self.individuals.get(ev.id)
        if rec is not None:
            rec.state, rec.stale = TRAINING, False
            self._changes.individuals.add(ev.id)

    def _evaluated(self, ev: IndividualEvaluated) -> None:
        rec = self.individuals.get(ev.id)
        if rec is None:
            return
        self._busy_t = ev.t
        if rec.state != DONE:
            self.evaluated[ev.generation] = self.evaluated.get(ev.generation, 0) + 1
        rec.state, rec.fitness, rec.seconds, rec.images = DONE, ev.fitness, ev.seconds, ev.images
        rec.loss_curve = ev.loss_curve
        self.images[ev.generation] = self.images.get(ev.generation, 0) + ev.images
        self._changes.individuals.add(ev.id)

    def _tournament(self, ev: Tournament) -> None:
        self.tournaments[ev.generation] = self.tournaments.get(ev.generation, 0) + 1
        rec = self.individuals.get(ev.winner)
        if rec is not None:
            rec.won = True
            self._changes.individuals.add(ev.winner)

    def _generation_completed(self, ev: GenerationCompleted) -> None:
        self.stats[ev.generation] = GenerationStats(
            ev.generation, ev.best, ev.mean, ev.worst, ev.std, ev.diversity, ev.best_id, ev.elite_id,
            ev.elite_fitness, ev.seconds, ev.images_per_s, ev.timing)
        self._changes.individuals.update(self.rank_generation(ev.generation))
        self._changes.stats = True

    def _checkpoint(self, ev: CheckpointSaved) -> None:
        self.checkpoints[ev.generation] = ev.path

    def _exported(self, ev: LearngeneExported) -> None:
        self.exports.append(Export(ev.path, ev.individual, ev.fitness, ev.fraction, ev.reason, ev.t))
        self._changes.exports = True

    def _paused(self, ev: Paused) -> None:
        self.paused, self.pause_requested = True, False
        if not (self.stops and self.stops[-1][1] is None):
            self.stops.append([ev.t, None])
        self._changes.status = True

    def _resumed(self, ev: Resumed) -> None:
        self.paused = self.resume_requested = False
        self._close_stop(ev.t)
        self._changes.status = True

    def _close_stop(self, t: float) -> None:
        if self.stops and self.stops[-1][1] is None:
            self.stops[-1][1] = t

    def stopped_between(self, a: float, b: float) -> float:
        """Seconds of [a, b] during which the run was paused or stopped."""
        total = 0.0
        for start, end in self.stops:
            total += max(0.0, min(b if end is None else end, b) - max(start, a))  # type: ignore[type-var]
        return total

    def run_time(self, since: float) -> float:
        """Seconds the run has been running from ``since`` until now, pauses and stops left out."""
        now = self.now()
        return max(0.0, now - since - self.stopped_between(since, now))

    def _warning(self, ev: Warning_) -> None:
        self.warnings += 1

    def _run_finished(self, ev: RunFinished) -> None:
        self.finished = ev
        self._close_stop(ev.t)
        self.paused = self.pause_requested = self.resume_requested = self.stop_requested = False
        self._changes.status = True

    # ---- queries -------------------------------------------------------------------------------------
    def rank_generation(self, generation: int) -> list[int]:
        """Rank the evaluated individuals of a generation by fitness (1 = best); returns the ids ranked."""
        done = [self.individuals[i] for i in self.by_generation.get(generation, ()) if i in self.individuals]
        scored = sorted((r for r in done if r.fitness is not None), key=lambda r: (-r.fitness, r.id))
        for n, rec in enumerate(scored, 1):
            rec.rank = n
        return [r.id for r in scored]

    @property
    def status(self) -> str:
        """waiting, running, pausing, paused, resuming, stopping, stopped, finished, failed or crashed."""
        if self.finished is not None:
            return FINISHED_STATES.get(self.finished.status, self.finished.status)
        if self.run is None:
            return "waiting"
        if self.engine_alive is False:
            return "crashed"
        if self.stop_requested:
            return "stopping"
        if self.paused:
            return "resuming" if self.resume_requested else "paused"
        if self.pause_requested:
            return "pausing"
        return "running"

    def set_engine_alive(self, alive: bool | None) -> None:
        if alive != self.engine_alive:
            self.engine_alive = alive
            self._changes.status = True

    def request(self, cmd: str) -> None:
        """Note a control request the engine accepted (pause shows "pausing" until ``paused`` is logged)."""
        if cmd == "pause" and not self.paused:
            self.pause_requested = True
        elif cmd == "resume":
            if self.paused:
                self.resume_requested = True
            self.pause_requested = False
        elif cmd == "stop":
            self.stop_requested = True
        self._changes.status = True

    @property
    def generations_done(self) -> int:
        return len(self.stats)

    @property
    def evaluated_now(self) -> int:
        """Individuals evaluated in the current generation."""
        return self.evaluated.get(self.current_generation, 0)

    def now(self) -> float:
        if self.finished is not None:
            return self.finished.t
        return self.clock()

    @property
    def elapsed(self) -> float:
        if self.started_t is None:
            return 0.0
        return self.run_time(self.started_t)

    @property
    def eta(self) -> float | None:
        """Seconds left, from the mean generation time (or the current generation's pace); None if unknown."""
        if self.finished is not None or self.run is None or self.generations <= 0:
            return None
        g = self.current_generation
        in_gen = self.run_time(self.generation_started_t[g]) if g in self.generation_started_t else 0.0
        if self.stats:
            per_gen = sum(s.seconds for s in self.stats.values()) / len(self.stats)
        elif self.evaluated_now > 0 and self.population > 0:
            per_gen = in_gen / self.evaluated_now * self.population
        else:
            return None
        left_gens = self.generations - self.generations_done
        return max(0.0, left_gens * per_gen - (in_gen if g not in self.stats else 0.0))

    @property
    def images_per_s(self) -> float | None:
        """The current generation's training throughput so far, else the last completed generation's."""
        g = self.current_generation
        if g not in self.stats and self.images.get(g) and g in self.generation_started_t:
            dt = self.run_time(self.generation_started_t[g])
            if dt > 0:
                return self.images[g] / dt
        if self.stats:
            return self.stats[max(self.stats)].images_per_s
        return None

    @property
    def last_timing(self) -> dict[str, float] | None:
        """The wall-time split of the last completed generation (None in logs without one)."""
        return self.stats[max(self.stats)].timing if self.stats else None

    def best(self) -> Individual | None:
        """The fittest individual evaluated so far (the elite of the last completed generation if known)."""
        if self.stats:
            rec = self.individuals.get(self.stats[max(self.stats)].elite_id)
            if rec is not None:
                return rec
        best: Individual | None = None
        for rec in self.individuals.values():
            if rec.fitness is not None and (best is None or rec.fitness > best.fitness):
                best = rec
        return best

    def best_of(self, generation: int) -> Individual | None:
        """The fittest evaluated individual of ``generation`` (lowest id on a tie), None before any result."""
        best: Individual | None = None
        for i in self.by_generation.get(generation, ()):
            rec = self.individuals.get(i)
            if rec is not None and rec.fitness is not None and (best is None or rec.fitness > best.fitness):
                best = rec
        return best

    def lineage(self, i: int) -> list[int]:
        """Ids from generation 0 down to ``i`` (missing ancestors end the walk)."""
        path: list[int] = []
        seen: set[int] = set()
        cur: int | None = i
        while cur is not None and cur in self.individuals and cur not in seen:
            seen.add(cur)
            path.append(cur)
            cur = self.individuals[cur].parent
        return path[::-1]

    def descendants(self, i: int) -> set[int]:
        out: set[int] = set()
        stack = list(self.children.get(i, ()))
        while stack:
            c = stack.pop()
            if c not in out:
                out.add(c)
                stack.extend(self.children.get(c, ()))
        return out

    def is_extinct(self, i: int) -> bool:
        """No descendant (nor itself) lives in the current generation, and it is not current itself."""
        rec = self.individuals.get(i)
        if rec is None:
            return True
        if rec.generation >= self.current_generation:
            return False
        stack = list(self.children.get(i, ()))
        seen: set[int] = set()
        while stack:
            c = stack.pop()
            if c in seen:
                continue
            seen.add(c)
            crec = self.individuals.get(c)
            if crec is not None and crec.generation >= self.current_generation:
                return False
            stack.extend(self.children.get(c, ()))
        return True

    def gene_diff(self, i: int) -> list[tuple[set[int], set[int], set[int]]]:
        """Per gene layer: (inherited, added, dropped) channels against the parent's learngene."""
        rec = self.individuals[i]
        parent = self.individuals.get(rec.parent) if rec.parent is not None else None
        out = []
        for layer, chans in enumerate(rec.channels):
            mine = set(chans)
            if parent is None or layer >= len(parent.channels):
                out.append((mine, set(), set()) if parent is None else (set(), mine, set()))
                continue
            theirs = set(parent.channels[layer])
            out.append((mine & theirs, mine - theirs, theirs - mine))
        return out
