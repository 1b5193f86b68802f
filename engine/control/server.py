"""Server side of a run's control channel: ``<run dir>/control.sock``, owner-only, line-delimited JSON.

The protocol is the one documented in :mod:`engine.control.client`. The server runs in threads of the engine
process (one accept thread, one thread per client), so any number of monitors and CLI calls can be connected at
once. It maps requests onto the :class:`~engine.run.signals.RunSignals` (pause, resume, stop) and the
:class:`~engine.evolution.loop.Evolution` (status, export). Requests are validated strictly: a malformed, unknown,
oversized or wrongly typed request gets an error reply and never reaches the engine; an oversized line also
closes its connection. Nothing received is ever unpickled or evaluated.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shlex
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.control.client import MAX_REQUEST_BYTES, unix_address
from engine.run.signals import RunSignals
from engine.rundir import SOCKET_NAME

#: Fields each command accepts besides ``cmd`` and ``id``, with their validators.
COMMANDS: dict[str, tuple[str, ...]] = {
    "status": (),
    "pause": (),
    "resume": (),
    "stop": (),
    "export": ("individual", "out"),
}
MAX_CLIENTS = 64
MAX_OUT_CHARS = 4096


class CommandError(ValueError):
    """A request that cannot be honoured; its message becomes the error reply."""


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def scp_line(*paths: Path) -> str:
    """A command a user can paste on their laptop to fetch ``paths`` from this machine."""
    host, user = socket.gethostname(), _user()
    return "scp " + " ".join(shlex.quote(f"{user}@{host}:{Path(p).resolve()}") for p in paths) + " ."


class ControlServer:
    """Serves the control socket of ``run_dir`` for an engine process.

    ``set_evolution`` is called once the evolution exists (until then ``status`` answers ``starting``);
    ``set_finished`` once the run has ended (``status`` then answers the final status, pause/stop are refused).
    """

    def __init__(self, run_dir: str | Path, signals: RunSignals):
        self.run_dir = Path(run_dir).resolve()
        self.path = self.run_dir / SOCKET_NAME
        self.signals = signals
        self._evolution: Any = None
        self._finished: str | None = None
        self._listener: socket.socket | None = None
        self._inode: int | None = None
        self._closing = threading.Event()
        self._clients: set[socket.socket] = set()
        self._clients_lock = threading.Lock()
        self._accept_thread: threading.Thread | None = None
        self._handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "status": self._status, "pause": self._pause, "resume": self._resume, "stop": self._stop,
            "export": self._export,
        }
        self.on_request: Callable[[dict[str, Any]], None] | None = None
        """Called with each valid request before it is carried out (tests record them; the engine sets none)."""

    # ----------------------------------------------------------------------------------------- lifecycle
    @property
    def evolution(self) -> Any:
        """The evolution being served, None while the engine is still starting."""
        return self._evolution

    def set_evolution(self, evolution: Any) -> None:
        self._evolution = evolution

    def set_finished(self, status: str) -> None:
        self._finished = status

    def start(self) -> None:
        """Bind ``control.sock`` (mode 0600, a stale file removed first) and start serving in threads."""
        if self.path.is_socket() or self.path.is_symlink():
            self.path.unlink()
        elif self.path.exists():
            raise OSError(f"{self.path} exists and is not a socket")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket is created owner-only, no window with wider permissions
        try:
            with unix_address(self.path) as address:
                sock.bind(address)
        finally:
            os.umask(old_umask)
        os.chmod(self.path, stat.S_IRUSR | stat.S_IWUSR)
        self._inode = os.stat(self.path).st_ino
        sock.listen(16)
        sock.settimeout(0.25)  # the accept loop polls so that close() stops it promptly
        self._listener = sock
        self._accept_thread = threading.Thread(target=self._accept_loop, name="control-accept", daemon=True)
        self._accept_thread.start()

    def close(self) -> None:
        """Stop serving, disconnect the clients and remove the socket file (if it is still ours)."""
        self._closing.set()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=2)
        if self._listener is not None:
            self._listener.close()
        with self._clients_lock:
            clients = list(self._clients)
        for conn in clients:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            if self._inode is not None and os.stat(self.path).st_ino == self._inode:
                self.path.unlink()

    def __enter__(self) -> ControlServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------- transport
    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._closing.is_set():
                    return
                continue
            conn.settimeout(None)
            with self._clients_lock:
                if len(self._clients) >= MAX_CLIENTS:
                    self._send(conn, {"ok": False, "busy": True,
                                      "error": f"too many clients (at most {MAX_CLIENTS})"})
                    conn.close()
                    continue
                self._clients.add(conn)
            threading.Thread(target=self._serve_client, args=(conn,), name="control-client", daemon=True).start()

    def _serve_client(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while not self._closing.is_set():
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if len(line) > MAX_REQUEST_BYTES:
                        self._refuse_oversized(conn)
                        return
                    if not self._send(conn, self.handle_line(line)):
                        return
                if len(buf) > MAX_REQUEST_BYTES:
                    self._refuse_oversized(conn)
                    return
        finally:
            with self._clients_lock:
                self._clients.discard(conn)
            conn.close()

    def _refuse_oversized(self, conn: socket.socket) -> None:
        """Reply with an error, then read and drop what the client is still sending for a moment before the
        connection closes (closing on unread data could cost the client the reply)."""
        self._send(conn, self._error(f"request too long (over {MAX_REQUEST_BYTES} bytes); connection closed"))
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(0.5)
            dropped = 0
            while dropped < 64 * MAX_REQUEST_BYTES:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                dropped += len(chunk)

    @staticmethod
    def _send(conn: socket.socket, reply: dict[str, Any]) -> bool:
        try:
            conn.sendall(json.dumps(reply).encode() + b"\n")
        except OSError:
            return False
        return True

    # ----------------------------------------------------------------------------------------- requests
    @staticmethod
    def _error(message: str) -> dict[str, Any]:
        return {"ok": False, "error": _one_line(message)}

    def handle_line(self, line: bytes) -> dict[str, Any]:
        """Validate and execute one request line; always returns a reply (never raises)."""
        try:
            req = json.loads(line)
        except (ValueError, RecursionError):
            return self._error("request is not valid JSON")
        if not isinstance(req, dict):
            return self._error('request must be a JSON object such as {"cmd": "status"}')
        rid = req.get("id")
        if rid is not None and (isinstance(rid, bool) or not isinstance(rid, (str, int, float))):
            return self._error("'id' must be a string or a number")
        reply = self._dispatch(req)
        if "id" in req:
            reply["id"] = rid
        return reply

    def _dispatch(self, req: dict[str, Any]) -> dict[str, Any]:
        cmd = req.get("cmd")
        names = ", ".join(COMMANDS)
        if not isinstance(cmd, str):
            return self._error(f"'cmd' must be a string, one of: {names}")
        if cmd not in COMMANDS:
            return self._error(f"unknown command {cmd[:40]!r}: use one of {names}")
        extra = sorted(set(req) - {"cmd", "id"} - set(COMMANDS[cmd]))
        if extra:
            return self._error(f"unknown field {extra[0][:40]!r} for {cmd}")
        try:
            if self.on_request is not None:
                self.on_request({k: v for k, v in req.items() if k != "id"})
            return {"ok": True, **self._handlers[cmd](req)}
        except CommandError as err:
            return self._error(str(err))
        except Exception as err:  # a failed command must never take the engine down
            return self._error(f"{cmd} failed: {type(err).__name__}: {err}")

    def _state(self) -> dict[str, Any]:
        evo = self._evolution
        if evo is None:
            s: dict[str, Any] = {"state": "starting", "generation": None, "generations": None, "individual": None,
                                 "population": None, "best_id": None, "best_fitness": None, "pid": os.getpid()}
        else:
            s = dict(evo.status())
        if self._finished is not None:
            s["state"] = "finished" if self._finished == "completed" else self._finished
        s["run_dir"] = str(self.run_dir)
        return s

    def _status(self, req: dict[str, Any]) -> dict[str, Any]:
        return self._state()

    def _check_live(self, cmd: str) -> None:
        if self._finished is not None:
            raise CommandError(f"cannot {cmd}: the run has ended ({self._finished})")

    def _pause(self, req: dict[str, Any]) -> dict[str, Any]:
        self._check_live("pause")
        if self.signals.stop_requested:
            raise CommandError("cannot pause: the run is stopping")
        self.signals.request_pause()
        return self._state()

    def _resume(self, req: dict[str, Any]) -> dict[str, Any]:
        self._check_live("resume")
        self.signals.request_resume()
        return self._state()

    def _stop(self, req: dict[str, Any]) -> dict[str, Any]:
        self._check_live("stop")
        self.signals.request_stop()
        return self._state()

    def _export(self, req: dict[str, Any]) -> dict[str, Any]:
        individual = req.get("individual")
        if individual is not None and (isinstance(individual, bool) or not isinstance(individual, int)
                                       or individual < 0):
            raise CommandError("'individual' must be a non-negative integer (an individual's id)")
        out = req.get("out")
        if out is not None:
            if not isinstance(out, str) or not out or "\x00" in out or len(out) > MAX_OUT_CHARS:
                raise CommandError("'out' must be a non-empty path string")
            out_path = Path(out).expanduser()
            if not out_path.is_absolute():
                out_path = self.run_dir / out_path
            if out_path.is_dir():
                stem = "best" if individual is None else f"ind{individual}"
                out_path = out_path / f"{self.run_dir.name}-{stem}"
        else:
            out_path = None
        evo = self._evolution
        if evo is None:
            raise CommandError("no learngene yet: the engine is still starting")
        try:
            weights, manifest = evo.export(individual, out_path, reason="request")
        except (ValueError, OSError) as err:
            raise CommandError(str(err)) from None  # the client names the command: "export failed: <this>"
        weights, manifest = Path(weights).resolve(), Path(manifest).resolve()
        return {"path": str(weights), "manifest": str(manifest), "scp": scp_line(weights, manifest)}
