"""``gtl-tui serve``: the monitor in a browser, behind a per-serve secret.

Loopback is not a boundary on a shared GPU server: any local user can reach 127.0.0.1. So, as Jupyter does, each
``serve`` draws a random token, prints it in the URL, and refuses every request that carries neither the token
(``?token=...``) nor the cookie set from it on the first load. The websocket that drives the monitor (and so can
pause, stop and export) is also refused when the browser says it comes from a foreign page (``Origin`` that is not
the page's own host): a malicious site open in the same browser cannot ride the cookie.

textual-serve does the serving; this module adds the guard and builds the page's URLs from the request's ``Host``
so that ``ssh -L 9000:127.0.0.1:8000`` (another local port on the laptop) works too.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web
from textual_serve.server import Server, to_int

TOKEN_PARAM = "token"


def new_token() -> str:
    """A fresh secret for one ``serve``: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def same_origin(origin: str, host: str) -> bool:
    """Whether a browser's ``Origin`` header names the host:port the request was sent to."""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # includes the literal "null" of sandboxed frames and file:// pages
    return parts.netloc.lower() == host.lower()


class GuardedServer(Server):
    """A textual-serve ``Server`` that admits only holders of ``token``, and websockets only from its own page."""

    def __init__(self, command: str, *, token: str, host: str, port: int, title: str) -> None:
        super().__init__(command, host=host, port=port, title=title)
        self.token = token
        # One cookie per port: two serves on one machine (cookies ignore ports) must not overwrite each other.
        self.cookie_name = f"gtl-tui-token-{port}"

    def url(self) -> str:
        return f"http://{self.host}:{self.port}/?{TOKEN_PARAM}={self.token}"

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard)
        return app

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
