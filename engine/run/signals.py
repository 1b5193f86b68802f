"""Pause, resume and stop requests reaching a running evolution, honoured at safe points.

The control server (another thread) calls ``request_*``; the training loops call :meth:`RunSignals.safe_point`
between steps. A pause blocks the training thread there, so nothing trains while paused; a stop raises
:class:`StopRequested`, which the evolution turns into a graceful stop (checkpoint, ``run_finished`` stopped).
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class StopRequested(Exception):
    """Raised at a safe point after a stop was requested."""


class RunSignals:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pause = False
        self._stop = False
        self.paused = False  # True while the training thread is blocked in a safe point
        self.on_paused: Callable[[], None] | None = None
        self.on_resumed: Callable[[], None] | None = None

    @property
    def pause_requested(self) -> bool:
        return self._pause

    @property
    def stop_requested(self) -> bool:
        return self._stop

    def request_pause(self) -> None:
        with self._cond:
            self._pause = True
            self._cond.notify_all()

    def request_resume(self) -> None:
        with self._cond:
            self._pause = False
            self._cond.notify_all()

    def request_stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()

    def safe_point(self) -> None:
        """Block while paused; raise StopRequested when a stop was requested."""
        if not (self._pause or self._stop):
            return
        with self._cond:
            if self._pause and not self._stop:
                self.paused = True
                if self.on_paused:
                    self.on_paused()
                while self._pause and not self._stop:
                    self._cond.wait(timeout=0.5)
                self.paused = False
                if self.on_resumed and not self._stop:
                    self.on_resumed()
            if self._stop:
                raise StopRequested
