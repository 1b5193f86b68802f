"""Small text formatters shared by the views."""

from __future__ import annotations

STATUS_STYLE = {
    "running": "bold green", "pausing": "bold yellow", "paused": "bold yellow", "resuming": "bold yellow",
    "stopping": "bold magenta", "stopped": "bold blue", "finished": "bold blue", "waiting": "dim",
    "failed": "bold red", "crashed": "bold red", "replay": "bold cyan",
}
STATE_STYLE = {"waiting": "dim", "training": "bold yellow", "done": "green"}
OP_STYLE = {"add": "green", "drop": "red", "swap": "yellow"}


def duration(seconds: float | None) -> str:
    """``h:mm:ss`` (or ``--`` when unknown)."""
    if seconds is None:
        return "--"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def fitness(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def channels(chans: tuple[int, ...] | list[int], limit: int = 24) -> str:
    """A channel list as ``3,17,40`` cut to ``limit`` characters."""
    text = ",".join(str(c) for c in chans) or "-"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mutation_summary(mutations: list[dict], limit: int = 40) -> str:
    """``L1 swap +2-2 · L3 add +1``: a node's mutations in one short line."""
    parts = []
    for m in mutations:
        added, removed = len(m.get("added") or ()), len(m.get("removed") or ())
        counts = (f"+{added}" if added else "") + (f"-{removed}" if removed else "")
        parts.append(f"L{m.get('layer', '?')} {m.get('op', '?')} {counts}".rstrip())
    text = " · ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"
