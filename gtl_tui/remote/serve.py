"""``gtl-tui serve``: the monitor in a browser, behind a per-serve secret.

Loopback is not a boundary on a shared GPU server: any local user can reach 127.0.0.1. So, as Jupyter does, each
``serve`` draws a random token, prints it in the URL, and refuses every request that carries neither the token
(``?token=...``) nor the cookie set from it on the first load. The websocket that drives the monitor (and so can
pause, stop and export) is also refused when the browser says it comes from a foreign page (``Origin`` that is not
the page's own host): a malicious site open in the same browser cannot ride the cookie.

textual-serve does the serving; this module adds the guard, builds the page's URLs from the request's ``Host``
so that ``ssh -L 9000:127.0.0.1:8000`` (another local port on the laptop) works too, serves the page's font from
its own static folder (no request leaves for the internet), and ties each page's monitor process to its page: the
process ends when its websocket closes (killed if it does not quit by itself) and all of them end with ``serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import secrets
import signal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

TOKEN_PARAM = "token"
QUIT_GRACE_S = 3.0  # a monitor asked to quit gets this long before it is terminated, then killed
_GOOGLE_FONT = '"https://fonts.googleapis.com/css?family=Roboto%20Mono"'
log = logging.getLogger("gtl-tui.serve")


def new_token() -> str:
    """A fresh secret for one ``serve``: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def same_origin(origin: str, host: str) -> bool:
    """Whether a browser's ``Origin`` header names the host:port the request was sent to."""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # includes the literal "null" of sandboxed frames and file:// pages
    return parts.netloc.lower() == host.lower()


class PageProcess(AppService):
    """One page's monitor, in a session of its own so that it and its shell end together."""

    async def _open_app_process(self, width: int = 80, height: int = 24) -> asyncio.subprocess.Process:
        self._process = process = await asyncio.create_subprocess_shell(
            self.command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self._build_environment(width=width, height=height),
            start_new_session=True)
        assert process.stdin is not None
        self._stdin = process.stdin
        return process

    async def stop(self) -> None:
        """Ask the monitor to quit; terminate, then kill, its process group if it does not within the grace."""
        try:
            await asyncio.wait_for(super().stop(), QUIT_GRACE_S)
        except (TimeoutError, OSError, RuntimeError):
            pass
        finally:
            await self.end_process()

    async def end_process(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                await asyncio.wait_for(process.wait(), QUIT_GRACE_S)
                return
            except TimeoutError:
                continue


def _local_font_template() -> str:
    """textual-serve's page with its web font taken from the local static folder instead of the internet."""
    import textual_serve

    page = (Path(textual_serve.__file__).parent / "templates" / "app_index.html").read_text()
    face = ('<style>@font-face { font-family: "Roboto Mono"; '
            'src: url("{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf"); }</style>')
    at = page.find(_GOOGLE_FONT)
    if at < 0:
        return page  # a textual-serve without the web font: nothing to replace
    start, end = page.rfind("<link", 0, at), page.index(">", at) + 1
    return page[:start] + face + page[end:]


class GuardedServer(Server):
    """A textual-serve ``Server`` that admits only holders of ``token``, and websockets only from its own page."""

    def __init__(self, command: str, *, token: str, host: str, port: int, title: str) -> None:
        super().__init__(command, host=host, port=port, title=title)
        self.token = token
        # One cookie per port: two serves on one machine (cookies ignore ports) must not overwrite each other.
        self.cookie_name = f"gtl-tui-token-{port}"
        self.pages: dict[web.WebSocketResponse, PageProcess] = {}

    def url(self) -> str:
        return f"http://{self.host}:{self.port}/?{TOKEN_PARAM}={self.token}"

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard)
        aiohttp_jinja2.setup(app, loader=jinja2.DictLoader({"app_index.html": _local_font_template()}))
        return app

    async def on_startup(self, app: web.Application) -> None:
        pass  # textual-serve prints a banner with the URL but without its token: ours is printed by the verb

    async def on_shutdown(self, app: web.Application) -> None:
        """Every page's monitor ends with serve (Ctrl-C, SIGTERM): no orphan keeps running."""
        await asyncio.gather(*(page.end_process() for page in self.pages.values()), return_exceptions=True)
        await asyncio.gather(*(ws.close() for ws in list(self.pages)), return_exceptions=True)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """textual-serve's handler, with the page's process tracked and ended with its page."""
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        page: PageProcess | None = None
        try:
            await websocket.prepare(request)
            page = PageProcess(self.command, write_bytes=websocket.send_bytes, write_str=websocket.send_str,
                               close=websocket.close, download_manager=self.download_manager, debug=self.debug)
            self.pages[websocket] = page
            await page.start(width, height)
            await self._process_messages(websocket, page)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception as error:  # a malformed message from the browser: end this page, keep serving
            log.warning("page ended: %s", error)
        finally:
            self.pages.pop(websocket, None)
            if page is not None:
                await page.stop()
        return websocket

    def _holds_token(self, request: web.Request) -> bool:
        supplied = request.query.get(TOKEN_PARAM) or request.cookies.get(self.cookie_name) or ""
        return hmac.compare_digest(supplied.encode(), self.token.encode())

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not self._holds_token(request):
            raise web.HTTPForbidden(text="gtl-tui serve: open the URL with the token that `gtl-tui serve` printed\n")
        origin = request.headers.get("Origin")
        if request.path == "/ws" and origin is not None and not same_origin(origin, request.host):
            raise web.HTTPForbidden(text=f"gtl-tui serve: websocket from a foreign origin refused: {origin}\n")
        response = await handler(request)
        if request.path == "/" and TOKEN_PARAM in request.query and not response.prepared:
            response.set_cookie(self.cookie_name, self.token, httponly=True, samesite="Strict", path="/")
        return response

    @aiohttp_jinja2.template("app_index.html")
    async def handle_index(self, request: web.Request) -> dict[str, Any]:
        """The page, with its static and websocket URLs on the host the browser used (a forwarded port too)."""
        secure = request.scheme == "https"
        return {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": f"{'wss' if secure else 'ws'}://{request.host}/ws",
            "config": {"static": {"url": f"{request.scheme}://{request.host}/static/"}},
            "application": {"name": self.title},
        }
