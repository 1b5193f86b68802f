"""`gtl-tui serve` admits only the holder of its token, and websockets only from its own page.

Another local user on a shared server can reach 127.0.0.1: without the token, or from a foreign page riding the
owner's cookie, they must not get the monitor (whose keys pause, stop and export the run).
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import time

import pytest
from fakes import FakeEngine, make_run, short_dir

aiohttp = pytest.importorskip("aiohttp")
pytest.importorskip("textual_serve")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_serve(run, port: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "gtl_tui.cli", "serve", str(run), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+/\?token=([\w-]+)", line)
    assert match, f"no token URL in: {line!r}"
    token = match.group(1)
    end = time.time() + 60
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, token
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("serve did not listen")


async def _ws_status(session, url: str, **kw) -> int:
    try:
        async with session.ws_connect(url, **kw):
            return 101
    except aiohttp.WSServerHandshakeError as err:
        return err.status


async def test_serve_refuses_without_token_or_from_a_foreign_origin_and_admits_its_owner():
    with short_dir() as d:
        run = make_run(d / "r", population=3, generations=1, live_evaluated=1)
        with FakeEngine(run) as engine:
            port = _free_port()
            proc, token = _start_serve(run, port)
            base = f"http://127.0.0.1:{port}"
            ws_url = f"ws://127.0.0.1:{port}/ws"
            own_origin = {"Origin": base}
            try:
                async with aiohttp.ClientSession() as anon:
                    # No token, a wrong token: nothing is served, not the page, not the assets, not the websocket.
                    for path in ("/", f"/?token={token[:-2]}xx", "/static/js/textual.js"):
                        async with anon.get(base + path) as r:
                            assert r.status == 403, path
                    assert await _ws_status(anon, ws_url, headers=own_origin) == 403
                    assert await _ws_status(anon, ws_url + "?token=nope") == 403
                    # The token itself, from a foreign page (a site open in the owner's browser): refused.
                    evil = {"Origin": "http://evil.example"}
                    assert await _ws_status(anon, f"{ws_url}?token={token}", headers=evil) == 403
                    assert await _ws_status(anon, f"{ws_url}?token={token}", headers={"Origin": "null"}) == 403
                assert engine.requests == []

                # Like a browser, keep cookies of an IP host (aiohttp's jar refuses them by default).
                async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as owner:
                    async with owner.get(f"{base}/?token={token}") as r:
                        assert r.status == 200
                        page = await r.text()
                        assert "HttpOnly" in r.headers["Set-Cookie"] and "SameSite=Strict" in r.headers["Set-Cookie"]
                        assert f"ws://127.0.0.1:{port}/ws" in page
                    # The cookie set on first load admits the assets and the websocket without the token in the URL.
                    assert any(c.key == f"gtl-tui-token-{port}" for c in owner.cookie_jar)
                    async with owner.get(base + "/static/js/textual.js") as r:
                        assert r.status == 200
                    async with owner.ws_connect(ws_url + "?width=120&height=40", headers=own_origin) as ws:
                        screen = ""
                        end = time.time() + 60
                        while "RUNNING" not in screen and time.time() < end:
                            msg = await ws.receive(timeout=max(0.1, end - time.time()))
                            if msg.type == aiohttp.WSMsgType.BINARY:
                                screen += msg.data.decode("utf-8", "replace")
                            elif msg.type != aiohttp.WSMsgType.TEXT:
                                break
                        assert "RUNNING" in screen, "the monitor did not come up"
                        await ws.send_json(["stdin", "p"])
                        end = time.time() + 30
                        while not engine.requests and time.time() < end:
                            await asyncio.sleep(0.1)
                        assert [r["cmd"] for r in engine.requests] == ["pause"]
            finally:
                proc.kill()
                proc.wait()


def test_same_origin():
    from gtl_tui.remote.serve import same_origin

    assert same_origin("http://127.0.0.1:8000", "127.0.0.1:8000")
    assert same_origin("http://localhost:9000", "LOCALHOST:9000")  # an ssh -L on another local port
    assert not same_origin("http://evil.example", "127.0.0.1:8000")
    assert not same_origin("http://127.0.0.1:8001", "127.0.0.1:8000")
    assert not same_origin("null", "127.0.0.1:8000")
    assert not same_origin("file:///tmp/x.html", "127.0.0.1:8000")
