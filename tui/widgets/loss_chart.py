"""A live loss chart of the source and destination losses, drawn with braille dots.

Each terminal cell holds 2 x 4 dots, so a 60 x 10 chart plots 120 columns per series on 40 levels.
The whole history is bucketed by iteration into the chart's width (the mean of each column), on a log scale
because a loss falls over orders of magnitude. Source is cyan, destination magenta, both yellow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

#: Bit of each dot in a braille cell, by (column, row).
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
SERIES = (("loss_src", "cyan"), ("loss_dst", "magenta"))
AXIS_WIDTH = 7


def points_of(history: Sequence[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    """(iteration, value) pairs with a positive finite value (a log scale needs them)."""
    out = []
    for index, values in enumerate(history):
        value = values.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
            iteration = values.get("iter")
            out.append((float(iteration if isinstance(iteration, (int, float)) else index), float(value)))
    return out


def column_means(points: list[tuple[float, float]], first: float, last: float, columns: int) -> list[float | None]:
    """The mean value of the points falling in each of ``columns`` equal iteration ranges."""
    sums, counts = [0.0] * columns, [0] * columns
    span = last - first
    for iteration, value in points:
        column = min(columns - 1, max(0, int((iteration - first) / span * columns))) if span > 0 else 0
        sums[column] += value
        counts[column] += 1
    return [sums[i] / counts[i] if counts[i] else None for i in range(columns)]


def draw_chart(history: Sequence[dict[str, Any]], width: int, height: int, target: int | None = None) -> Text:
    """The chart as ``height`` lines of ``width`` cells (a y axis on the left).

    The x axis runs from the first iteration to the target (or the last iteration), so the curve
    grows across the chart as training goes on.
    """
    plot_w, plot_h = max(1, width - AXIS_WIDTH), max(1, height)
    all_points = [points_of(history, key) for key, _ in SERIES]
    iterations = [it for points in all_points for it, _ in points]
    if not iterations:
        return Text("no loss values yet", style="dim")
    first, last = min(iterations), max(max(iterations), float(target or 0))
    series = [column_means(points, first, last, plot_w * 2) for points in all_points]
    every = [v for values in series for v in values if v is not None]
    low, high = math.log10(min(every)), math.log10(max(every))
    if high - low < 1e-6:
        low, high = low - 0.5, high + 0.5
    rows = plot_h * 4
    cells = [[[0, 0] for _ in range(plot_w)] for _ in range(plot_h)]  # bits per series

    def dot_row(value: float) -> int:
        return min(rows - 1, max(0, round((high - math.log10(value)) / (high - low) * (rows - 1))))

    for index, values in enumerate(series):
        previous = None
        for x, value in enumerate(values):
            if value is None:
                continue
            y = dot_row(value)
            # Fill from the previous point so a steep fall reads as a line, not scattered dots.
            span = range(min(y, previous), max(y, previous) + 1) if previous is not None else (y,)
            for yy in span:
                cells[yy // 4][x // 2][index] |= _DOTS[x % 2][yy % 4]
            previous = y
    text = Text(no_wrap=True)
    for r in range(plot_h):
        if r == 0:
            label = f"{10 ** high:.3g}"
        elif r == plot_h - 1:
            label = f"{10 ** low:.3g}"
        else:
            label = ""
        text.append(f"{label:>{AXIS_WIDTH - 1}}│", style="dim")
        for src_bits, dst_bits in cells[r]:
            bits = src_bits | dst_bits
            colour = "yellow" if src_bits and dst_bits else ("cyan" if src_bits else "magenta")
            text.append(chr(0x2800 + bits), style=colour if bits else None)
        if r < plot_h - 1:
            text.append("\n")
    return text


class LossChart(Widget):
    """Draws ``history`` (the train job's metrics dicts, oldest first)."""

    DEFAULT_CSS = """
    LossChart { height: 1fr; min-height: 4; }
    """

    history: reactive[list[dict[str, Any]]] = reactive(list, always_update=True)
    """Metrics dicts with ``iter``, ``loss_src`` and ``loss_dst``, oldest first."""
    target: reactive[int | None] = reactive(None)
    """The target iteration: the right end of the x axis (None: the last iteration)."""

    def render(self) -> Text:
        return draw_chart(self.history, self.content_size.width, self.content_size.height, self.target)
