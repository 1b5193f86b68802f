"""Best, mean and worst fitness per generation as a braille line chart that fits any size."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

SERIES_STYLE = {"worst": "red", "mean": "yellow", "best": "green"}
# Each line has its own pattern too (solid, dotted, dashed), so that it reads without colour (NO_COLOR,
# TERM=screen): a pixel of the line is drawn when PATTERN[name](its index along the line) holds.
SERIES_PATTERN = {"best": lambda k: True, "mean": lambda k: k % 2 == 0, "worst": lambda k: k % 6 < 3}
SERIES_MARK = {"best": "━", "mean": "┅", "worst": "╍"}
_DOT = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][col] bit of a braille cell


def _line(x0: int, y0: int, x1: int, y1: int) -> list[tuple[int, int]]:
    """Bresenham's line between two pixels, both ends included."""
    pts = []
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
    err = dx + dy
    while True:
        pts.append((x0, y0))
        if x0 == x1 and y0 == y1:
            return pts
        e2 = 2 * err
        if e2 >= dy:
            err += dy
            x0 += sx
        if e2 <= dx:
            err += dx
            y0 += sy


def render_chart(series: dict[str, list[float]], generations: list[int], width: int, height: int) -> Text:
    """The chart as ``height`` lines of ``width`` cells: a legend, the plot with a y axis, an x axis."""
    lines: list[Text] = []
    legend = Text(" fitness ", style="bold")
    for name in ("best", "mean", "worst"):
        legend.append(f"{SERIES_MARK[name]} ", style=SERIES_STYLE[name])
        legend.append(f"{name}  ")
    lines.append(legend)
    rows = max(height - 2, 1)
    n = len(generations)
    if n == 0:
        lines.append(Text(" waiting for the first generation to complete…", style="dim"))
        return Text("\n").join(lines)
    values = [v for name in series for v in series[name]]
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.08, 0.02)
    lo, hi = max(lo - pad, 0.0), hi + pad
    label_w = 6
    cols = max(width - label_w - 1, 4)
    px_w, px_h = cols * 2, rows * 4
    bits = [[0] * cols for _ in range(rows)]
    style: list[list[str | None]] = [[None] * cols for _ in range(rows)]

    def to_px(i: int, v: float) -> tuple[int, int]:
        x = round(i * (px_w - 1) / (n - 1)) if n > 1 else 0
        y = round((hi - v) / (hi - lo) * (px_h - 1))
        return x, min(max(y, 0), px_h - 1)

    for name in ("worst", "mean", "best"):  # best drawn last: on top where lines meet
        pts = [to_px(i, v) for i, v in enumerate(series[name])]
        pixels = _line(*pts[0], *pts[0]) if len(pts) == 1 else []
        for a, b in zip(pts, pts[1:], strict=False):
            pixels.extend(_line(*a, *b))
        drawn = SERIES_PATTERN[name]
        for k, (x, y) in enumerate(pixels):
            if not drawn(k):
                continue
            r, c = y // 4, x // 2
            bits[r][c] |= _DOT[y % 4][x % 2]
            style[r][c] = SERIES_STYLE[name]
    for r in range(rows):
        if r == 0:
            label = f"{hi:.2f}"
        elif r == rows - 1:
            label = f"{lo:.2f}"
        elif r == rows // 2 and rows > 4:
            label = f"{(hi + lo) / 2:.2f}"
        else:
            label = ""
        row = Text(label.rjust(label_w - 1)[-(label_w - 1):], style="dim")
        row.append("┤" if label.strip() else "│", style="dim")
        c = 0
        while c < cols:  # one append per run of a style: a span per cell would make drawing it slow
            run_style, start = style[r][c] or "", c
            while c < cols and (style[r][c] or "") == run_style:
                c += 1
            row.append("".join(chr(0x2800 + b) if b else " " for b in bits[r][start:c]), style=run_style)
        lines.append(row)
    axis = [" "] * cols
    step = next((k for k in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
                 if n == 1 or k * (cols - 1) / (n - 1) >= 8), n)
    for i in list(range(0, n, step)) + [n - 1]:
        c = round(i * (cols - 1) / (n - 1)) if n > 1 else 0
        label = f"g{generations[i]}"
        start = min(max(c - len(label) // 2, 0), cols - len(label))
        if all(ch == " " for ch in axis[max(start - 1, 0):start + len(label) + 1]):
            axis[start:start + len(label)] = list(label)
    lines.append(Text(" " * (label_w - 1) + "└" + "".join(axis), style="dim"))
    return Text("\n").join(lines)


class FitnessChart(Widget):
    """Holds the per-generation series (``set_data``) and draws them at its current size."""

    DEFAULT_CSS = """
    FitnessChart { height: 1fr; min-height: 6; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.generations: list[int] = []
        self.series: dict[str, list[float]] = {"best": [], "mean": [], "worst": []}

    def set_data(self, generations: list[int], best: list[float], mean: list[float], worst: list[float]) -> None:
        self.generations = generations
        self.series = {"best": best, "mean": mean, "worst": worst}
        self.refresh()

    def render(self) -> Text:
        return render_chart(self.series, self.generations, self.size.width, self.size.height)
