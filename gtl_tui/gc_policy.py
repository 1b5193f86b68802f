"""When the monitor's cyclic garbage collector runs: the one place that decides it.

Parsing and folding events make no reference cycles but allocate ~10 objects per event, so the collector is paused
while they run (attaching to a 100,000-event run parses several times faster). What lives as long as the app (its
widgets, styles and a folded long log) is frozen out of the collector's way. The full collections that free the
cycles drawing leaves (Textual's caches are linked lists: 0.1 s or more to free after a few minutes of keys) run
while the user is not typing, not whenever Python decides, often in the middle of a key.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterator

#: Events in one batch after which what was folded is frozen (millions of long-lived objects otherwise rescanned,
#: ~0.4 s per collection, while drawing).
BIG_BATCH = 10_000
#: How often the idle full collection is tried, and how long since the last key or click counts as idle.
IDLE_GC_S = 5.0
IDLE_AFTER_S = 1.0


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside the block (nothing there makes cycles; refcounting still frees)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def freeze() -> None:
    """Move everything alive now out of the collector's view (it lives as long as the app)."""
    gc.freeze()


def after_batch(n_events: int) -> None:
    """Freeze what a big batch of events left, so that later collections do not scan it again."""
    if n_events >= BIG_BATCH:
        gc.freeze()


def defer_full_collections() -> Callable[[], None]:
    """Let only :func:`collect_if_idle` run full collections; returns the function that restores the default."""
    threshold = gc.get_threshold()
    gc.set_threshold(threshold[0], threshold[1], 1_000_000)
    return lambda: gc.set_threshold(*threshold)


def collect_if_idle(last_input: float) -> bool:
    """The full collection, unless a key or click came in the last second (``last_input``: monotonic time);
    True if it ran."""
    if time.monotonic() - last_input < IDLE_AFTER_S:
        return False
    gc.collect()
    return True
