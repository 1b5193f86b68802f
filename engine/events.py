"""THE event schema shared by the engine and every reader (monitor, CLI, replay).

Each event is a frozen dataclass of primitives. On disk an event is one JSON object per line of
``<run dir>/events.jsonl`` with ``kind`` (snake_case), ``v`` (schema version), ``seq`` (0, 1, 2, ... over the whole
run, resumes included) and ``t`` (unix seconds), plus the event's own fields. The log is append-only. A reader
consumes complete lines only, so a torn last line (a writer killed mid-write) is skipped until it is complete,
and a line that is not a valid event is skipped and counted.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from engine.rundir import EVENTS_FILE  # noqa: F401 (re-exported beside the schema it names)

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Event:
    """Base class; ``seq`` and ``t`` are set by the writer."""

    kind: ClassVar[str] = ""
    seq: int = field(default=-1, kw_only=True)
    t: float = field(default=0.0, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        body = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("seq", "t")}
        return {"kind": self.kind, "v": SCHEMA_VERSION, "seq": self.seq, "t": self.t, **body}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


EVENT_TYPES: dict[str, type[Event]] = {}


def _event(cls: type[Event]) -> type[Event]:
    EVENT_TYPES[cls.kind] = cls
    return cls


@_event
@dataclass(frozen=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    name: str
    config: dict[str, Any]
    config_hash: str
    device: str
    trainer: str
    backend: str
    arch: str
    population: int
    generations: int
    version: str
    pid: int = 0
    resumed_from: int | None = None  # the generation a resumed run continues with; None on a fresh start


@_event
@dataclass(frozen=True)
class GenerationStarted(Event):
    kind: ClassVar[str] = "generation_started"
    generation: int


@_event
@dataclass(frozen=True)
class IndividualBorn(Event):
    kind: ClassVar[str] = "individual_born"
    id: int
    generation: int
    parent: int | None
    task: list[int]  # class indices of its k-way task
    task_names: list[str]
    mutations: list[dict[str, Any]]  # {"layer", "op", "added", "removed"}
    gene_sizes: list[int]  # channels in the learngene, per gene layer
    layer_widths: list[int]  # channels of each gene layer in the network
    channels: list[list[int]]  # the learngene's channel set, per gene layer
    fraction: float  # share of the conv parameters in the learngene
    parent2: int | None = None  # the second parent of a crossover child (mutation.crossover); None: one parent
    from_parent2: list[int] | None = None  # gene layers whose channels and weights came from it (with parent2)


@_event
@dataclass(frozen=True)
class IndividualStarted(Event):
    kind: ClassVar[str] = "individual_started"
    id: int
    generation: int


@_event
@dataclass(frozen=True)
class IndividualEvaluated(Event):
    kind: ClassVar[str] = "individual_evaluated"
    id: int
    generation: int
    fitness: float
    seconds: float
    lifetime_fitness: float | None = None
    critic_fitness: float | None = None
    train_loss: float | None = None
    images: int = 0  # training images processed in its lifetime
    loss_curve: list[float] | None = None  # mean training loss of equal stretches of its lifetime (16 at most)


@_event
@dataclass(frozen=True)
class Tournament(Event):
    kind: ClassVar[str] = "tournament"
    generation: int
    group: list[int]
    fitness: list[float]
    winner: int
    scores: list[float] | None = None  # the lineage scores the winner was chosen on (evolution.lineage_decay)


@_event
@dataclass(frozen=True)
class GenerationCompleted(Event):
    kind: ClassVar[str] = "generation_completed"
    generation: int
    best: float
    mean: float
    worst: float
    std: float
    diversity: float  # mean pairwise Jaccard distance of the population's channel sets
    best_id: int
    elite_id: int
    elite_fitness: float
    seconds: float
    images_per_s: float
    # Where the wall time went (``engine.timing``): wall, train, host, wait in seconds; on CUDA also peak_mem
    # (bytes) and, with pynvml, gpu_util (percent). None in logs written before it existed.
    timing: dict[str, float] | None = None


@_event
@dataclass(frozen=True)
class CheckpointSaved(Event):
    kind: ClassVar[str] = "checkpoint_saved"
    generation: int  # the last completed generation
    path: str


@_event
@dataclass(frozen=True)
class LearngeneExported(Event):
    kind: ClassVar[str] = "learngene_exported"
    path: str
    individual: int
    fitness: float
    fraction: float
    reason: str = "final"  # "final" at the end of a run, "request" when asked for


@_event
@dataclass(frozen=True)
class Paused(Event):
    kind: ClassVar[str] = "paused"
    generation: int


@_event
@dataclass(frozen=True)
class Resumed(Event):
    kind: ClassVar[str] = "resumed"
    generation: int


@_event
@dataclass(frozen=True)
class Warning_(Event):
    kind: ClassVar[str] = "warning"
    message: str


@_event
@dataclass(frozen=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    status: str  # "completed", "stopped" or "failed"
    error: str | None = None
    best_id: int | None = None
    best_fitness: float | None = None
    generations_done: int = 0


def _fields_of(cls: type[Event]) -> tuple[frozenset[str], frozenset[str]]:
    fields = dataclasses.fields(cls)
    if hasattr(cls, "__post_init__") or hasattr(cls, "__slots__") or any(
            f.default_factory is not dataclasses.MISSING for f in fields):
        raise TypeError(f"{cls.__name__}: decode_event needs plain defaults, no __post_init__ and a __dict__")
    return (frozenset(f.name for f in fields),
            frozenset(f.name for f in fields if f.default is dataclasses.MISSING))


#: Per event class: (all field names, required field names). Built at import, so an event class that the
#: decoder cannot build fails at once, not on some log line.
_FIELDS: dict[type[Event], tuple[frozenset[str], frozenset[str]]] = {c: _fields_of(c) for c in EVENT_TYPES.values()}


def decode_event(d: dict[str, Any]) -> Event | None:
    """THE event decoder: the event of a JSON object, or None for an unknown kind or missing fields. ``d`` is
    consumed. Unknown extra fields are ignored (a newer writer may add fields within one schema version).

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``: for a 100,000-event log that
    is most of the parse. The events have no ``__post_init__`` and every default is a plain value (a class
    attribute), so an instance whose ``__dict__`` is the JSON object itself (less ``kind``, ``v`` and unknown
    fields) is equal to the one ``__init__`` builds.
    """
    kind = d.pop("kind", None)
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return None
    d.pop("v", None)
    names, required = _FIELDS[cls]
    keys = d.keys()
    if not keys <= names:
        d = {k: v for k, v in d.items() if k in names}
        keys = d.keys()
    if not required <= keys:
        return None
    ev = object.__new__(cls)
    object.__setattr__(ev, "__dict__", d)
    return ev


def event_from_dict(d: dict[str, Any]) -> Event:
    """:func:`decode_event` of a copy of ``d``; raises ``ValueError`` on an unknown kind or missing fields."""
    ev = decode_event(dict(d))
    if ev is None:
        kind = d.get("kind")
        if not isinstance(kind, str) or kind not in EVENT_TYPES:
            raise ValueError(f"unknown event kind {kind!r}")
        missing = sorted(_FIELDS[EVENT_TYPES[kind]][1] - d.keys())
        raise ValueError(f"bad {kind} event: missing {', '.join(missing)}")
    return ev


def parse_line(line: str | bytes) -> Event | None:
    """One log line to an event, or None when it is not a valid event."""
    try:
        d = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: a line of 5,000 '[' (too deep)
        return None
    return decode_event(d) if isinstance(d, dict) else None


class EventWriter:
    """Appends events to ``events.jsonl``; ``seq`` continues from the events already in the file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_torn_tail()
        self.seq = _last_seq(self.path) + 1
        # owner-only (0600) like the run directory: another user of the server must not read the run
        self._f = open(self.path, "a", encoding="utf-8", opener=_private)  # noqa: SIM115 (kept open for the run)
        self._listeners: list[Any] = []
        self._lock = threading.RLock()  # the control server emits (exports) from its own threads

    def _repair_torn_tail(self) -> None:
        """A writer killed mid-line leaves a line without newline: end it so the next event starts clean."""
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, "rb+") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")

    def add_listener(self, fn: Any) -> None:
        """``fn(event)`` is called after each event is written (the control server and tests use it)."""
        self._listeners.append(fn)

    def emit(self, event: Event) -> Event:
        with self._lock:
            event = dataclasses.replace(event, seq=self.seq, t=round(time.time(), 3))
            self._f.write(event.to_json() + "\n")
            self._f.flush()
            self.seq += 1
            for fn in self._listeners:
                fn(event)
        return event

    def sync(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        if not self._f.closed:
            self.sync()
            self._f.close()


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def _last_seq(path: Path) -> int:
    if not path.exists():
        return -1
    last = -1
    for ev in read_events(path)[0]:
        last = max(last, ev.seq)
    return last


def read_events(path: str | Path, offset: int = 0) -> tuple[list[Event], int]:
    """Read complete event lines from byte ``offset``; returns the events and the offset after the last
    complete line. Invalid lines are skipped; an unterminated last line is left for the next read."""
    events: list[Event] = []
    p = Path(path)
    if not p.exists():
        return events, offset
    with open(p, "rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n")
    if end < 0:
        return events, offset
    for line in data[: end + 1].splitlines():
        if line.strip():
            ev = parse_line(line)
            if ev is not None:
                events.append(ev)
    return events, offset + end + 1


class EventFollower:
    """Incremental reader of a growing event log (``poll`` returns what is new since the last call)."""

    def __init__(self, path: str | Path, offset: int = 0):
        self.path = Path(path)
        self.offset = offset

    def poll(self) -> list[Event]:
        events, self.offset = read_events(self.path, self.offset)
        return events
