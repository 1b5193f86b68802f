"""Client side of remote monitoring: the monitor runs locally and reaches the run through ``ssh``.

``RemoteRun`` spawns ``ssh [-p PORT] [USER@]HOST -- REMOTE_CMD stream PATH --from OFFSET`` (the user's own ssh
with its config, keys and agent) and is both the monitor's event source (``poll``) and its controller
(``request``). A dropped connection (EOF, or no message for ``timeout`` seconds although the server sends a
heartbeat every 2 s) is shown in ``status`` and re-established with back-off, resuming from the end of the last
event chunk received: no gaps, no duplicates.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.atomic import replacing
from engine.control.client import ControlError
from engine.events import Event, parse_line

REMOTE_CMD_ENV = "GTL_TUI_REMOTE_CMD"
_URL = re.compile(r"^ssh://(?:(?P<user>[^@/:]+)@)?(?P<host>\[[^\]]+\]|[^/:]+)(?::(?P<port>\d+))?(?P<path>/.*)$")


@dataclass(frozen=True)
class SSHTarget:
    host: str
    path: str
    user: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, url: str) -> SSHTarget:
        """``ssh://[user@]host[:port]/path/to/run`` (``/~/runs/x`` for a path under the remote home)."""
        m = _URL.match(url)
        if not m:
            raise ValueError(f"{url!r}: expected ssh://[user@]host[:port]/path/to/run")
        path = m["path"]
        if path.startswith("/~/"):
            path = path[1:]
        return cls(host=m["host"].strip("[]"), path=path, user=m["user"], port=int(m["port"]) if m["port"] else None)

    def argv(self, remote: list[str], ssh_options: list[str] | None = None) -> list[str]:
        dest = f"{self.user}@{self.host}" if self.user else self.host
        port = ["-p", str(self.port)] if self.port else []
        opts = ["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3", "-o", "BatchMode=yes"]
        # the remote shell joins the words again: quote each one
        return ["ssh", *port, *opts, *(ssh_options or []), dest, "--", " ".join(shlex.quote(w) for w in remote)]


def remote_command(explicit: str | None = None) -> list[str]:
    """The remote gtl-tui command: the option, else $GTL_TUI_REMOTE_CMD, else ``gtl-tui`` (may hold args)."""
    return shlex.split(explicit or os.environ.get(REMOTE_CMD_ENV) or "gtl-tui")


# Exits of the remote side that a retry cannot fix: 126/127 from the shell (the command is not executable / not
# found), 2 from `gtl-tui stream` itself (not a run directory, a bad offset).
UNFIXABLE_EXITS = (2, 126, 127)


def unfixable_reason(code: int, stderr_line: str) -> str:
    if code in (126, 127):
        return (f"{stderr_line} (is gtl-tui installed on the server? give its path with --remote-cmd, "
                f"e.g. --remote-cmd ~/venv/bin/gtl-tui, or set GTL_TUI_REMOTE_CMD)")
    return stderr_line.removeprefix("error: ")


class RemoteRun:
    """Event source + controller over a ``gtl-tui stream`` process (through ssh, or any command in tests).

    Args:
        argv_for: builds the command line for a given start offset.
        timeout: seconds without any message before the connection counts as dropped.
        fetch_dir: where exported learngenes are copied on this machine (None: leave them on the server).
    """

    def __init__(self, argv_for: Callable[[int], list[str]], *, timeout: float = 8.0,
                 fetch_dir: Path | None = None, request_timeout: float = 30.0):
        self.argv_for, self.timeout, self.fetch_dir = argv_for, timeout, fetch_dir
        self.request_timeout = request_timeout
        self.offset = 0  # end of the last complete event chunk received
        self.status = "connecting"
        self.host: str | None = None
        self.reconnects = 0
        self.fatal: str | None = None
        """Why the connection cannot work (no gtl-tui on the server, not a run directory): no retry is made."""
        self._lines: list[bytes] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._waiters: dict[int, tuple[threading.Event, list[Any]]] = {}
        self._files: dict[int, Any] = {}
        self._proc: subprocess.Popen | None = None
        self._closed = False
        self._last_msg = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="remote-stream", daemon=True)
        self._thread.start()

    @classmethod
    def over_ssh(cls, target: SSHTarget, *, remote_cmd: str | None = None, **kw: Any) -> RemoteRun:
        cmd = remote_command(remote_cmd)
        return cls(lambda off: target.argv([*cmd, "stream", target.path, "--from", str(off)]), **kw)

    # ---------------------------------------------------------------------------- event source
    def poll(self) -> list[Event]:
        with self._lock:
            lines, self._lines = self._lines, []
        return [e for e in (parse_line(x) for x in lines) if e is not None]

    # ---------------------------------------------------------------------------- controller
    def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        reply = self._call({"type": "control", "request": {"cmd": cmd, **args}})
        if reply.get("type") == "error":
            raise ControlError(reply["error"])
        body = reply["reply"]
        if not body.get("ok"):
            raise ControlError(str(body.get("error", "unknown error")))
        if cmd == "export" and self.fetch_dir is not None:
            local = [str(self.fetch(body[k], self.fetch_dir / Path(body[k]).name)) for k in ("path", "manifest")
                     if body.get(k)]
            body = {**body, "local": local, "scp": f"copied to {local[0]}" if local else body.get("scp", "")}
        return body

    def fetch(self, remote_path: str, local_path: Path) -> Path:
        """Copy a file of the run (e.g. an exported learngene) to this machine through the stream."""
        local_path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(local_path) as tmp:
            with open(tmp, "wb") as f:
                reply = self._call({"type": "fetch", "path": remote_path}, sink=f)
            if reply.get("type") == "error":
                raise ControlError(reply["error"])  # the partial file is removed, local_path is untouched
        return local_path

    def _call(self, msg: dict[str, Any], sink: Any = None) -> dict[str, Any]:
        mid = next(self._ids)
        done: tuple[threading.Event, list[Any]] = (threading.Event(), [])
        self._waiters[mid] = done
        if sink is not None:
            self._files[mid] = sink
        try:
            proc = self._proc
            if proc is None or proc.poll() is not None or self.status != "connected":
                raise ControlError(f"not connected to the server ({self.status})")
            try:
                proc.stdin.write(json.dumps({**msg, "id": mid}).encode() + b"\n")
                proc.stdin.flush()
            except OSError as err:
                raise ControlError(f"connection lost: {err}") from None
            if not done[0].wait(self.request_timeout):
                raise ControlError("no reply from the server")
            return done[1][0]
        finally:
            self._waiters.pop(mid, None)
            self._files.pop(mid, None)

    # ---------------------------------------------------------------------------- connection
    def _run(self) -> None:
        backoff = 1.0
        while not self._closed:
            try:
                self._proc = subprocess.Popen(self.argv_for(self.offset), stdin=subprocess.PIPE,
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            except OSError as err:
                self.status = f"cannot start ssh: {err}"
                time.sleep(backoff)
                continue
            self._last_msg = time.monotonic()
            watchdog = threading.Thread(target=self._watch, args=(self._proc,), daemon=True)
            watchdog.start()
            got_hello = self._read(self._proc)
            self._proc.kill()
            self._proc.wait()
            err = (self._proc.stderr.read() or b"").decode(errors="replace").strip().splitlines()
            self._fail_waiters()
            if self._closed:
                return
            why = err[-1] if err else "connection lost"
            if not got_hello and self._proc.returncode in UNFIXABLE_EXITS:
                self.fatal = unfixable_reason(self._proc.returncode, why)
                self.status = f"failed: {self.fatal}"
                return
            backoff = 1.0 if got_hello else min(backoff * 2, 10.0)
            self.reconnects += 1
            self.status = f"disconnected ({why}); reconnecting in {backoff:.0f}s"
            time.sleep(backoff)

    def _watch(self, proc: subprocess.Popen) -> None:
        """Kill a connection that has gone silent (the server sends a heartbeat every 2 s)."""
        while proc.poll() is None and not self._closed:
            if time.monotonic() - self._last_msg > self.timeout:
                self.status = "connection silent; reconnecting"
                proc.kill()
                return
            time.sleep(0.2)

    def _read(self, proc: subprocess.Popen) -> bool:
        got_hello = False
        for raw in proc.stdout:
            self._last_msg = time.monotonic()
            try:
                msg = json.loads(raw)
            except (ValueError, RecursionError):
                continue  # e.g. a login banner on stdout
            if not isinstance(msg, dict):
                continue
            kind = msg.get("type")
            if kind == "hello":
                got_hello = True
                self.host = msg.get("host")
                self.status = "connected"
            elif kind == "events":
                if msg["start"] != self.offset:  # never happens with a well-behaved server: resync
                    self.status = f"offset mismatch ({msg['start']} != {self.offset}); reconnecting"
                    return got_hello
                lines = msg["data"].encode().splitlines()
                with self._lock:
                    self._lines.extend(x for x in lines if x.strip())
                    self.offset = msg["end"]
            elif kind == "file":
                sink = self._files.get(msg.get("id"))
                if sink is not None:
                    sink.write(base64.b64decode(msg["data"]))
                if msg.get("eof"):
                    self._resolve(msg)
            elif kind in ("reply", "error"):
                if msg.get("id") is not None:
                    self._resolve(msg)
                elif kind == "error":
                    self.status = f"server error: {msg.get('error')}"
        return got_hello

    def _resolve(self, msg: dict[str, Any]) -> None:
        waiter = self._waiters.get(msg.get("id"))
        if waiter is not None:
            waiter[1].append(msg)
            waiter[0].set()

    def _fail_waiters(self) -> None:
        for event, box in list(self._waiters.values()):
            box.append({"type": "error", "error": "connection lost"})
            event.set()

    def wait_connected(self, timeout: float) -> bool:
        """Wait for the first connection; False once it is known it cannot work (``fatal``) or on time-out."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.fatal is None:
            if self.status == "connected":
                return True
            time.sleep(0.05)
        return self.status == "connected"

    def close(self) -> None:
        self._closed = True
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
