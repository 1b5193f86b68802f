"""The ``[notify]`` command: a user's program told of chosen events (a finished run, a warning) as they happen.

A long GPU run ends at 3 a.m.; nobody watches the monitor. ``[notify] command = "notify-send gtl-tui"`` (or an
``ntfy`` / ``curl`` script) is run once per chosen event, with the event's JSON object on its standard input.
It runs in the engine, so it fires with no monitor attached. The command is split like a shell line (``shlex``)
but no shell runs it. A slow or failing command never slows or stops the run: commands run one after another on a
thread of their own, each bounded by ``timeout_s``, and failures are only logged (``engine.log``).
"""

from __future__ import annotations

import json
import queue
import shlex
import subprocess
import sys
import threading
import time
from typing import Any

_STOP = object()


class Notifier:
    """An event-writer listener: ``notifier(event)`` queues the event when its kind is one of ``kinds``."""

    def __init__(self, command: str, kinds: list[str] | tuple[str, ...], timeout_s: float = 10.0):
        self.argv = shlex.split(command)
        self.kinds = frozenset(kinds)
        self.timeout_s = timeout_s
        self.sent = 0
        self.failed = 0
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="notify", daemon=True)
        self._thread.start()

    def __call__(self, event: Any) -> None:
        if event.kind in self.kinds:
            self._queue.put(event.to_dict())

    def close(self, wait_s: float | None = None) -> None:
        """Send what is queued (the final ``run_finished`` above all), waiting at most ``wait_s`` seconds."""
        self._queue.put(_STOP)
        self._thread.join(self.timeout_s * 2 if wait_s is None else wait_s)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            self._send(item)

    def _send(self, event: dict[str, Any]) -> None:
        try:
            proc = subprocess.run(self.argv, input=json.dumps(event).encode(), capture_output=True,
                                  timeout=self.timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired) as err:
            self._log(f"notify command failed on {event.get('kind')}: {err}")
            self.failed += 1
            return
        if proc.returncode != 0:
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            self._log(f"notify command exited {proc.returncode} on {event.get('kind')}: {tail[0]}")
            self.failed += 1
        else:
            self.sent += 1

    @staticmethod
    def _log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
