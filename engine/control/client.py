"""Client side of a run's control channel: a Unix domain socket ``<run dir>/control.sock`` (mode 0600).

Protocol: line-delimited JSON, one request line, one reply line, any number of requests per connection.

Requests (``id`` is optional and echoed back)::

    {"cmd": "status"}
    {"cmd": "pause"}            {"cmd": "resume"}           {"cmd": "stop"}
    {"cmd": "export", "individual": 17, "out": "/path/gene"}   # both optional: default best learngene, learngenes/

Replies: ``{"ok": true, ...}`` or ``{"ok": false, "error": "one line"}``. ``status`` replies with ``state``
(running, pausing, paused, stopping), ``generation``, ``generations``, ``individual``, ``population``,
``best_id``, ``best_fitness``, ``pid``. ``export`` replies with ``path`` (the .safetensors), ``manifest`` (the
.json) and ``scp`` (a line to paste on a laptop). Requests longer than ``MAX_REQUEST_BYTES`` are refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.rundir import SOCKET_NAME

MAX_REQUEST_BYTES = 64 * 1024


@contextlib.contextmanager
def unix_address(path: Path) -> Iterator[str]:
    """An AF_UNIX address for ``path``: the path itself, or, when it is too long for a socket address (about
    107 bytes), the same file reached through an open fd of its folder (``/proc/self/fd/N/control.sock``)."""
    if len(os.fsencode(str(path))) < 100 or not os.path.isdir("/proc/self/fd"):
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


class ControlError(RuntimeError):
    """The engine could not be reached, or replied with an error."""


class ControlBusy(ControlError):
    """The engine serves as many control clients as it takes (idle monitors, say); a moment later it may not."""


#: How long :func:`send` keeps retrying while the engine is busy.
BUSY_WAIT_S = 3.0


class ControlClient:
    """A connection to a run's engine. Use as a context manager or call ``close``."""

    def __init__(self, run_dir: str | Path, timeout: float = 10.0):
        self.path = Path(run_dir) / SOCKET_NAME
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            with unix_address(self.path) as address:
                self._sock.connect(address)
        except (FileNotFoundError, ConnectionRefusedError, OSError) as err:
            self._sock.close()
            raise ControlError(f"no engine is listening at {self.path} ({err.strerror or err})") from None
        self._buf = b""

    def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        """Send one request and return the reply; raises ControlError when the reply is an error."""
        reply = self.raw({"cmd": cmd, **args})
        if not reply.get("ok"):
            error = str(reply.get("error", "unknown error"))
            if reply.get("busy") or error.startswith("too many clients"):
                raise ControlBusy(f"the engine is busy: {error} are connected to {self.path}; try again in a "
                                  "moment")
            raise ControlError(error)
        return reply

    def raw(self, request: dict[str, Any] | str | bytes) -> dict[str, Any]:
        """Send a request as given (a dict, or raw text/bytes for protocol tests) and return the reply dict."""
        if isinstance(request, dict):
            data = json.dumps(request).encode() + b"\n"
        elif isinstance(request, str):
            data = request.encode()
        else:
            data = request
        if not data.endswith(b"\n"):
            data += b"\n"
        sent_error: OSError | None = None
        try:
            self._sock.sendall(data)
        except (TimeoutError, OSError) as err:
            # a busy engine replies "too many clients" at once and closes: that reply may still be readable
            sent_error = err
        try:
            while b"\n" not in self._buf:
                chunk = self._sock.recv(65536)
                if not chunk:
                    raise ControlError(f"control channel error: {sent_error}" if sent_error else
                                       "the engine closed the connection")
                self._buf += chunk
        except (TimeoutError, OSError) as err:
            raise ControlError(f"control channel error: {sent_error or err}") from None
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            return json.loads(line)
        except (ValueError, RecursionError):
            raise ControlError(f"malformed reply from the engine: {line[:200]!r}") from None

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def send(run_dir: str | Path, cmd: str, timeout: float = 10.0, busy_wait: float = BUSY_WAIT_S,
         **args: Any) -> dict[str, Any]:
    """One request on a fresh connection; while the engine is busy (all its client slots taken), retried for up
    to ``busy_wait`` seconds before :class:`ControlBusy` is raised."""
    deadline = time.monotonic() + busy_wait
    delay = 0.05
    while True:
        try:
            with ControlClient(run_dir, timeout=timeout) as c:
                return c.request(cmd, **args)
        except ControlBusy:
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
