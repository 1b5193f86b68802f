"""Server side of remote monitoring: ``gtl-tui stream RUN --from OFFSET`` on the machine that runs the engine.

It relays the run over its own stdin/stdout (so it rides on the user's ``ssh``; no port is opened):

stdout, one JSON object per line:
    {"type": "hello", "protocol": 1, "run": NAME, "host": HOST, "offset": OFFSET}
    {"type": "events", "start": A, "end": B, "data": "<complete event lines, bytes A..B of events.jsonl>"}
    {"type": "heartbeat", "offset": B, "engine_alive": true|false|null}
    {"type": "reply", "id": ID, "reply": {...control reply...}}
    {"type": "file", "id": ID, "data": "<base64 chunk>", "eof": false|true, "size": N}
    {"type": "error", "id": ID|null, "error": "one line"}
stdin, one JSON object per line:
    {"type": "control", "id": ID, "request": {"cmd": ...}}   forwarded to control.sock
    {"type": "fetch", "id": ID, "path": "learngenes/x.safetensors"}   a file inside the run directory

Every request gets a reply or an error, and the relay keeps serving: a malformed, too deep or wrongly typed
line, a fetch path with a NUL byte or longer than a path can be, or a control request with keys the engine
does not know. Fetches and ``export``'s ``out`` stay inside the run directory.

Offsets are byte offsets into ``events.jsonl`` at line boundaries, so a client that reconnects with the ``end``
of the last ``events`` message it received gets every later event exactly once.
"""

from __future__ import annotations

import base64
import json
import os
import selectors
import socket
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

from engine.control.client import ControlClient, ControlError, unix_address
from engine.events import EVENTS_FILE

PROTOCOL = 1
MAX_CHUNK = 256 * 1024
MAX_INPUT_LINE = 64 * 1024
MAX_PATH_CHARS = 4096


class StreamError(ValueError):
    """A bad stream request (one line)."""


def check_offset(log: Path, offset: int) -> None:
    size = log.stat().st_size if log.exists() else 0
    if offset < 0 or offset > size:
        raise StreamError(f"offset {offset} is outside the event log (0..{size})")
    if offset > 0:
        with open(log, "rb") as f:
            f.seek(offset - 1)
            if f.read(1) != b"\n":
                raise StreamError(f"offset {offset} is not at the start of an event line")


class StreamServer:
    def __init__(self, run_dir: Path, offset: int, out: BinaryIO, *, poll_interval: float = 0.25,
                 heartbeat: float = 2.0):
        self.run_dir, self.offset, self.out = Path(run_dir), offset, out
        self.log = self.run_dir / EVENTS_FILE
        self.poll_interval, self.heartbeat = poll_interval, heartbeat
        self._last_sent = 0.0
        check_offset(self.log, offset)

    def send(self, msg: dict[str, Any]) -> None:
        self.out.write(json.dumps(msg, separators=(",", ":")).encode() + b"\n")
        self.out.flush()
        self._last_sent = time.monotonic()

    def pump_events(self) -> None:
        """Send the complete event lines written since ``offset``."""
        if not self.log.exists():
            return
        with open(self.log, "rb") as f:
            f.seek(self.offset)
            while True:
                data = f.read(MAX_CHUNK)
                end = data.rfind(b"\n")
                if end < 0:
                    # no complete line in this chunk: either the log is quiet or one line is longer than a chunk
                    if len(data) == MAX_CHUNK:
                        more = data + f.readline()
                        if more.endswith(b"\n"):
                            self._send_events(more)
                            continue
                    return
                self._send_events(data[: end + 1])
                f.seek(self.offset)

    def _send_events(self, data: bytes) -> None:
        start = self.offset
        self.offset += len(data)
        self.send({"type": "events", "start": start, "end": self.offset, "data": data.decode("utf-8", "replace")})

    def engine_alive(self) -> bool | None:
        sock = self.run_dir / "control.sock"
        if not sock.exists():
            return None
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with unix_address(sock) as address:  # a run path of 108 bytes or more is too long for AF_UNIX
                s.connect(address)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def handle(self, line: bytes) -> None:
        """Answer one request line; whatever it holds, the reply is a message and the relay goes on."""
        try:
            msg = json.loads(line)
            if not isinstance(msg, dict):
                raise ValueError("not an object")
        except (ValueError, RecursionError):
            self.send({"type": "error", "id": None, "error": "malformed request line"})
            return
        mid = msg.get("id")
        if mid is not None and (isinstance(mid, bool) or not isinstance(mid, (str, int, float))):
            mid = None
        try:
            self._handle(msg, mid)
        except BrokenPipeError:
            raise
        except Exception as err:  # never let one request end the relay
            self.send({"type": "error", "id": mid, "error": f"{type(err).__name__}: {str(err)[:200]}"})

    def _handle(self, msg: dict[str, Any], mid: Any) -> None:
        kind = msg.get("type")
        if kind == "control":
            req = msg.get("request")
            if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
                self.send({"type": "error", "id": mid, "error": "control needs a request with a cmd"})
                return
            try:
                req = self._confine_export(req)
            except StreamError as err:
                self.send({"type": "error", "id": mid, "error": str(err)})
                return
            try:  # forwarded as it is: the engine validates the keys (an unknown one gets its error reply)
                with ControlClient(self.run_dir, timeout=30.0) as c:
                    reply = c.raw(req)
            except ControlError as err:
                reply = {"ok": False, "error": str(err)}
            self.send({"type": "reply", "id": mid, "reply": reply})
        elif kind == "fetch":
            self.send_file(mid, msg.get("path"))
        elif kind == "ping":
            self.send({"type": "heartbeat", "offset": self.offset, "engine_alive": self.engine_alive()})
        else:
            self.send({"type": "error", "id": mid, "error": f"unknown message type {kind!r}"})

    def _inside(self, path: Any, what: str) -> Path:
        """``path`` (relative to the run directory, or absolute) resolved, when it lies inside the run directory;
        raises StreamError otherwise (also for a NUL byte or an overlong path, which the OS would refuse)."""
        if not isinstance(path, str) or not path:
            raise StreamError(f"{what} needs a path")
        if "\x00" in path or len(path) > MAX_PATH_CHARS:
            raise StreamError(f"{what}: not a usable path ({len(path)} characters)")
        p = Path(path)
        try:
            target = (p if p.is_absolute() else self.run_dir / p).resolve()
        except (OSError, ValueError, RuntimeError):
            raise StreamError(f"{what}: {path[:200]}: not a path inside this run") from None
        if not target.is_relative_to(self.run_dir.resolve()):
            raise StreamError(f"{what}: {path[:200]}: not inside this run's directory")
        return target

    def _confine_export(self, req: dict[str, Any]) -> dict[str, Any]:
        """An ``export`` with ``out`` may only write inside the run directory, as fetch only reads there: the
        relay is reached by whoever can ssh in, and the engine would write wherever it is told."""
        if req.get("cmd") != "export" or req.get("out") is None:
            return req
        return {**req, "out": str(self._inside(req["out"], "export out"))}

    def send_file(self, mid: Any, path: Any) -> None:
        try:
            target = self._inside(path, "fetch")
            ok = target.is_file()
        except StreamError as err:
            self.send({"type": "error", "id": mid, "error": str(err)})
            return
        except OSError:
            ok = False
        if not ok:
            self.send({"type": "error", "id": mid, "error": f"{str(path)[:200]}: not a file of this run"})
            return
        size = target.stat().st_size
        with open(target, "rb") as f:
            while True:
                chunk = f.read(MAX_CHUNK)
                eof = len(chunk) < MAX_CHUNK
                self.send({"type": "file", "id": mid, "data": base64.b64encode(chunk).decode(), "eof": eof,
                           "size": size})
                if eof:
                    return

    def serve(self, inp: BinaryIO) -> int:
        """Relay until stdin closes (the client went away)."""
        self.send({"type": "hello", "protocol": PROTOCOL, "run": self.run_dir.name, "host": socket.gethostname(),
                   "offset": self.offset})
        fd = inp.fileno()
        sel: selectors.BaseSelector = selectors.DefaultSelector()
        try:
            sel.register(fd, selectors.EVENT_READ)
        except (PermissionError, OSError):
            # epoll refuses a regular file (stdin redirected from one): select() takes it, always readable
            sel.close()
            sel = selectors.SelectSelector()
            sel.register(fd, selectors.EVENT_READ)
        os.set_blocking(fd, False)
        buf = b""
        try:
            while True:
                self.pump_events()
                if time.monotonic() - self._last_sent >= self.heartbeat:
                    self.send({"type": "heartbeat", "offset": self.offset, "engine_alive": self.engine_alive()})
                for _ in sel.select(timeout=self.poll_interval):
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        return 0
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        if line.strip():
                            self.handle(line)
                    if len(buf) > MAX_INPUT_LINE:
                        buf = b""
                        self.send({"type": "error", "id": None, "error": "request line too long"})
        except BrokenPipeError:
            return 0


def main(run_dir: Path, offset: int) -> int:
    server = StreamServer(run_dir, offset, sys.stdout.buffer)
    return server.serve(sys.stdin.buffer)
