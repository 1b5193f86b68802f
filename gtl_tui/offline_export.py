"""The monitor's export once a run's engine is gone: ``gtl-tui export RUN --individual N`` in a subprocess.

The export reads the run's gene archive with torch; the monitor never imports torch (it starts in a fraction of
a second and runs on machines without it), so it asks the CLI in another process and reads its answer.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

TIMEOUT_S = 300.0


def export_in_subprocess(run_dir: Path, individual: int, timeout: float = TIMEOUT_S
                         ) -> tuple[dict[str, Any] | None, str | None]:
    """(reply, None) with the paths and the scp line, as the control server answers; (None, error) on failure."""
    cmd = [sys.executable, "-m", "gtl_tui.cli", "export", str(run_dir), "--individual", str(individual)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None, f"no answer from gtl-tui export after {timeout:.0f} s"
    except OSError as err:
        return None, f"cannot run gtl-tui export: {err}"
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        message = lines[-1] if lines else f"gtl-tui export exited with code {done.returncode}"
        return None, message.removeprefix("error: ")
    reply: dict[str, Any] = {}
    for line in done.stdout.splitlines():
        if line.startswith("learngene "):
            reply["path"] = line.split(None, 1)[1].strip()
        elif line.startswith("manifest "):
            reply["manifest"] = line.split(None, 1)[1].strip()
        elif line.startswith("scp "):
            reply["scp"] = line.strip()
    if "path" not in reply:
        return None, "gtl-tui export gave no path: " + " ".join(done.stdout.split())[:200]
    return reply, None
