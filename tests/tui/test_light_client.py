"""The monitor is a light client: nothing it, ``--help``, ``ls``, ``status``, ``attach``, ``stream`` or ``serve``
imports pulls in torch, and a machine without torch attaches to a run over the ssh stream (issue 15)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fakes import FakeEngine, make_run, short_dir

REPO = Path(__file__).resolve().parents[1]
#: Makes ``import torch`` (and torchvision) fail in the process, as on a laptop with the base install only.
NO_TORCH = textwrap.dedent("""
    import sys
    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "torchvision"):
                raise ImportError(f"No module named {name!r} (blocked: a monitor-only install)")
            return None
    sys.meta_path.insert(0, _NoTorch())
""")


def run_py(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests" / "tui")])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.parametrize("module", ["gtl_tui.app", "gtl_tui.cli", "gtl_tui.commands.monitor",
                                    "gtl_tui.commands.control", "gtl_tui.remote.client", "gtl_tui.remote.stream",
                                    "gtl_tui.remote.commands", "gtl_tui.runs", "gtl_tui.background"])
def test_monitor_modules_do_not_import_torch(module):
    r = run_py(f"import sys, {module}\nassert 'torch' not in sys.modules, 'torch imported'")
    assert r.returncode == 0, r.stderr


def test_light_commands_do_not_import_torch(tmp_path):
    run = make_run(tmp_path / "runs" / "r", population=3, generations=1)
    code = f"""
import sys
from typer.testing import CliRunner
from gtl_tui.cli import app
for args in (["--help"], ["ls", {str(run.parent)!r}], ["status", {str(run)!r}], ["attach", "--help"],
             ["stream", "--help"], ["serve", "--help"]):  # stream itself: the next test
    r = CliRunner().invoke(app, args, input="")
    assert r.exit_code == 0, (args, r.output)
    assert "torch" not in sys.modules, f"{{args}} imported torch"
"""
    r = run_py(code)
    assert r.returncode == 0, r.stderr


def test_a_monitor_without_torch_attaches_over_the_stream(tmp_path):
    """``attach ssh://...`` on a laptop without torch: the monitor and the relay both run with torch blocked."""
    with short_dir() as d:
        run = make_run(d / "r", population=4, generations=2)
        with FakeEngine(run):
            relay = f"{NO_TORCH}\nimport runpy, sys\nsys.argv = ['gtl-tui', 'stream', sys.argv[1], '--from', sys.argv[2]]\n" \
                    "runpy.run_module('gtl_tui.cli', run_name='__main__')"
            code = NO_TORCH + textwrap.dedent(f"""
                import asyncio, sys, time
                from pathlib import Path
                from gtl_tui.app import MonitorApp
                from gtl_tui.remote.client import RemoteRun

                relay = {relay!r}
                remote = RemoteRun(lambda off: [sys.executable, "-c", relay, {str(run)!r}, str(off)])

                async def main():
                    app = MonitorApp(Path({str(run)!r}), event_source=remote, controller=remote,
                                     refresh_interval=0.05)
                    async with app.run_test(size=(120, 40)) as pilot:
                        deadline = time.monotonic() + 60
                        while (app.state.generations_done < 1 or remote.status != "connected") \\
                                and time.monotonic() < deadline:
                            await pilot.pause(0.1)
                        assert remote.status == "connected", remote.status
                        assert app.state.generations_done >= 1 and len(app.state.individuals) >= 4
                        reply = remote.request("status")
                        assert reply["ok"] and reply["state"] == "running", reply
                try:
                    asyncio.run(main())
                finally:
                    remote.close()
                assert "torch" not in sys.modules
                print("attached")
            """)
            r = run_py(code, timeout=180)
    assert r.returncode == 0 and "attached" in r.stdout, r.stdout + r.stderr
