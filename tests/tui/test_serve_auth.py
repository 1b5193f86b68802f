"""`gtl-tui serve` admits only the holder of its token, and websockets only from its own page.

Another local user on a shared server can reach 127.0.0.1: without the token, or from a foreign page riding the
owner's cookie, they must not get the monitor (whose keys pause, stop and export the run).
"""

from __future__ import annotations

import asyncio
import os
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


def _monitors_of(run) -> list[int]:
    """pids of the `gtl_tui.cli attach` processes serving this run's pages."""
    out = subprocess.run(["pgrep", "-f", f"gtl_tui.cli attach {run}"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _wait(pred, timeout: float) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


async def test_each_page_process_ends_with_its_page_and_all_with_serve():
    """A page closed at once (a browser tab shut while the monitor starts) or after use leaves no process."""
    with short_dir() as d:
        run = make_run(d / "r", population=3, generations=1, live_evaluated=1)
        with FakeEngine(run):
            port = _free_port()
            proc, token = _start_serve(run, port)
            ws_url = f"ws://127.0.0.1:{port}/ws?token={token}&width=80&height=24"
            try:
                async with aiohttp.ClientSession() as s:
                    # The page is local: no font or script from another host.
                    async with s.get(f"http://127.0.0.1:{port}/?token={token}") as r:
                        page = await r.text()
                    assert "googleapis" not in page and "https://" not in page
                    async with s.get(f"http://127.0.0.1:{port}/static/fonts/RobotoMono-VariableFont_wght.ttf"
                                     f"?token={token}") as r:
                        assert r.status == 200
                    # Closed while its monitor is still starting.
                    async with s.ws_connect(ws_url):
                        assert _wait(lambda: _monitors_of(run), 30)
                    assert _wait(lambda: not _monitors_of(run), 20), _monitors_of(run)
                    # Two pages open, then serve is interrupted: both monitors end, serve exits.
                    async with s.ws_connect(ws_url), s.ws_connect(ws_url):
                        assert _wait(lambda: len(_monitors_of(run)) >= 2, 30)
                        await asyncio.sleep(1.0)
                        proc.send_signal(2)  # SIGINT, as Ctrl-C
                        assert _wait(lambda: proc.poll() is not None, 20), "serve did not exit on Ctrl-C"
                    assert _wait(lambda: not _monitors_of(run), 10), _monitors_of(run)
            finally:
                proc.kill()
                proc.wait()
                for pid in _monitors_of(run):
                    os.kill(pid, 9)
