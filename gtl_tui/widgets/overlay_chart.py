"""Several fitness curves on one braille chart, each with a shaded band (a setting's mean over seeds and its CI)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget

from gtl_tui.widgets.chart import _DOT, _line

PALETTE = (("green", "#0c2a0c"), ("cyan", "#0a2630"), ("magenta", "#2a0c2a"), ("yellow", "#2a2a0a"),
           ("bright_blue", "#0c1430"), ("red", "#300c0c"))


@dataclass
class Curve:
    label: str
    generations: list[int]
    mean: list[float]
    lo: list[float]  # the band (equal to mean where there is none)
    hi: list[float]


def _interp(xs: list[int], ys: list[float], x: float) -> float | None:
    if not xs or x < xs[0] or x > xs[-1]:
        return None
    for i in range(1, len(xs)):
        if x <= xs[i]:
            f = (x - xs[i - 1]) / ((xs[i] - xs[i - 1]) or 1)
            return ys[i - 1] + f * (ys[i] - ys[i - 1])
    return ys[-1]


def render_overlay(curves: list[Curve], width: int, height: int) -> Text:
    """``height`` lines of ``width`` cells: a legend line, the plot with a y axis, an x axis."""
    legend = Text(" best fitness ", style="bold")
    for i, c in enumerate(curves):
        legend.append("━ ", style=PALETTE[i % len(PALETTE)][0])
        legend.append(f"{c.label}  ")
    lines = [legend]
    pts = [(g, v) for c in curves for g, v in zip(c.generations, c.lo + c.hi, strict=False)]
    if not pts:
        lines.append(Text(" no generation completed yet", style="dim"))
        return Text("\n").join(lines)
    values = [v for c in curves for v in (*c.lo, *c.hi, *c.mean)]
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.08, 0.02)
    lo, hi = lo - pad, hi + pad
    g0 = min(g for c in curves for g in c.generations)
    g1 = max(g for c in curves for g in c.generations)
    rows, label_w = max(height - 2, 1), 6
    cols = max(width - label_w - 1, 4)
    px_w, px_h = cols * 2, rows * 4
    bits = [[0] * cols for _ in range(rows)]
    fg: list[list[str | None]] = [[None] * cols for _ in range(rows)]
    bg: list[list[str | None]] = [[None] * cols for _ in range(rows)]

    def to_x(g: float) -> int:
        return round((g - g0) * (px_w - 1) / (g1 - g0)) if g1 > g0 else 0

    def to_y(v: float) -> int:
        return min(max(round((hi - v) / (hi - lo) * (px_h - 1)), 0), px_h - 1)

    for i, c in enumerate(curves):  # bands first, under every line
        shade = PALETTE[i % len(PALETTE)][1]
        for col in range(cols):
            g = g0 + (col * 2 + 0.5) / max(px_w - 1, 1) * (g1 - g0) if g1 > g0 else g0
            a, b = _interp(c.generations, c.lo, g), _interp(c.generations, c.hi, g)
            if a is None or b is None or b - a <= 0:
                continue
            for row in range(to_y(b) // 4, to_y(a) // 4 + 1):
                bg[row][col] = shade
    for i, c in enumerate(curves):
        color = PALETTE[i % len(PALETTE)][0]
        px = [(to_x(g), to_y(v)) for g, v in zip(c.generations, c.mean, strict=True)]
        segs = [p for a, b in zip(px, px[1:], strict=False) for p in _line(*a, *b)] or px
        for x, y in segs:
            bits[y // 4][x // 2] |= _DOT[y % 4][x % 2]
            fg[y // 4][x // 2] = color
    for r in range(rows):
        value = hi - (r * 4 + 1.5) / (px_h - 1) * (hi - lo)
        label = f"{value:5.2f} " if r in (0, rows // 2, rows - 1) else " " * label_w
        line = Text(label, style="dim")
        line.append("┤" if label.strip() else "│", style="dim")
        for col in range(cols):
            style = " ".join(s for s in (fg[r][col], f"on {bg[r][col]}" if bg[r][col] else None) if s)
            line.append(chr(0x2800 + bits[r][col]) if bits[r][col] else " ", style=style or None)
        lines.append(line)
    axis = Text(" " * label_w + "└" + "─" * cols, style="dim")
    left, right = f"gen {g0}", f"gen {g1}"
    lines.append(Text(" " * (label_w + 1) + left + " " * max(cols - len(left) - len(right), 1) + right,
                      style="dim") if height > 2 else axis)
    return Text("\n").join(lines[:height])


class OverlayChart(Widget):
    """The curves of :func:`render_overlay`, fitted to the widget's size."""

    DEFAULT_CSS = "OverlayChart { height: 1fr; min-height: 6; }"

    def __init__(self, curves: list[Curve], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.curves = curves

    def render(self) -> Text:
        return render_overlay(self.curves, self.size.width, self.size.height)
