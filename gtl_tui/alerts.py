"""When the monitor rings the terminal bell: the run finished, failed or crashed, or it has gone quiet (a stall).

Only what is seen to happen while the monitor watches rings: attaching to a run that ended yesterday rings nothing.
A stall is no event for several times the usual gap between events (at least ``MIN_STALL_S``), while the run is
neither paused nor ended; it rings once, and again only after events have flowed and stopped anew.
"""

from __future__ import annotations

from collections import deque

ENDINGS = {"finished": "finished", "failed": "failed", "crashed": "crashed", "stopped": "stopped"}
STALL_FACTOR = 6.0  # a stall: no event for this many times the usual (90th percentile) gap ...
MIN_STALL_S = 60.0  # ... and never less than this
QUIET_STATES = ("paused", "pausing", "waiting")


class Alerts:
    """Feed it each poll (``update``); it returns what deserves the user's attention now, once each."""

    def __init__(self) -> None:
        self._status: str | None = None
        self._last_event: float | None = None
        self._gaps: deque[float] = deque(maxlen=64)
        self._stalled = False

    def stall_after(self) -> float:
        if not self._gaps:
            return MIN_STALL_S
        gaps = sorted(self._gaps)
        p90 = gaps[min(len(gaps) - 1, int(0.9 * len(gaps)))]
        return max(MIN_STALL_S, STALL_FACTOR * p90)

    def update(self, status: str, had_events: bool, now: float) -> list[str]:
        """Messages to ring for, given the run's ``status`` after this poll and whether new events came in."""
        out: list[str] = []
        previous, self._status = self._status, status
        if had_events:
            if self._last_event is not None:
                self._gaps.append(now - self._last_event)
            self._last_event = now
            self._stalled = False
        if previous is not None and status != previous and status in ENDINGS:
            out.append(f"the run {ENDINGS[status]}")
        if (status not in ENDINGS and status not in QUIET_STATES and self._last_event is not None
                and not self._stalled and now - self._last_event > self.stall_after()):
            self._stalled = True
            out.append(f"no event for {now - self._last_event:.0f} s: the engine may be stalled")
        if status in QUIET_STATES:
            self._last_event = now if self._last_event is not None else None  # a pause is no stall
        return out
