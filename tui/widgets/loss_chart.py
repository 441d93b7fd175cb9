"""A live loss chart of the source and destination losses, drawn with braille dots, and the held-out
quality beside it.

Each terminal cell holds 2 x 4 dots, so a 60 x 10 chart plots 120 columns per series on 40 levels.
The x axis follows the data: from the first to the last iteration of the shown window, either the
whole run or the last N iterations (``l`` on the Train screen cycles them), never the target, so
2 000 iterations of a 100 000 target fill the chart. Each series is drawn twice: the raw points
(the mean of each dot column) dim, and a smoothed line (an exponential moving average over the raw
points, as TensorBoard draws it) bright. The y axis is logarithmic because a loss falls over
orders of magnitude. Source is cyan, destination magenta, both yellow.
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
#: The windows ``l`` cycles through: None is the whole run, a number the last that many iterations.
WINDOWS: tuple[int | None, ...] = (None, 10_000, 1_000)
#: Weight of the previous smoothed value per raw point (TensorBoard's default smoothing is 0.6; the
#: trainer reports a point every few iterations, so a heavier one reads better).
SMOOTHING = 0.9
SPARKS = "▁▂▃▄▅▆▇█"


def points_of(history: Sequence[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    """(iteration, value) pairs with a positive finite value (a log scale needs them)."""
    out = []
    for index, values in enumerate(history):
        value = values.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
            iteration = values.get("iter")
            out.append((float(iteration if isinstance(iteration, (int, float)) else index), float(value)))
    return out


def smoothed(points: list[tuple[float, float]], weight: float = SMOOTHING) -> list[tuple[float, float]]:
    """An exponential moving average with TensorBoard's debiasing (the first points are not pulled to 0)."""
    out, last, steps = [], 0.0, 0
    for iteration, value in points:
        steps += 1
        last = last * weight + (1 - weight) * value
        out.append((iteration, last / (1 - weight ** steps)))
    return out


def column_means(points: list[tuple[float, float]], first: float, last: float, columns: int) -> list[float | None]:
    """The mean value of the points falling in each of ``columns`` equal iteration ranges."""
    sums, counts = [0.0] * columns, [0] * columns
    span = last - first
    for iteration, value in points:
        if iteration < first or iteration > last:
            continue
        column = min(columns - 1, max(0, int((iteration - first) / span * columns))) if span > 0 else 0
        sums[column] += value
        counts[column] += 1
    return [sums[i] / counts[i] if counts[i] else None for i in range(columns)]


def window_range(iterations: list[float], window: int | None) -> tuple[float, float]:
    """(first, last) iteration shown: the whole run, or the last ``window`` iterations of it."""
    first, last = min(iterations), max(iterations)
    if window is not None and last - window > first:
        first = last - window
    return first, last


def window_label(window: int | None) -> str:
    return "whole run" if window is None else f"last {window:,} iterations".replace(",", " ")


def draw_chart(history: Sequence[dict[str, Any]], width: int, height: int, target: int | None = None,
               window: int | None = None, smoothing: float = SMOOTHING) -> Text:
    """The chart as ``height`` lines of ``width`` cells: a y axis on the left, the iterations below.

    ``target`` is shown in the bottom line only; the x axis runs over the data of ``window``.
    """
    plot_w, plot_h = max(1, width - AXIS_WIDTH), max(1, height - 1)
    raw = [points_of(history, key) for key, _ in SERIES]
    iterations = [it for points in raw for it, _ in points]
    if not iterations:
        return Text("no loss values yet", style="dim")
    first, last = window_range(iterations, window)
    columns = plot_w * 2
    raw_cols = [column_means(points, first, last, columns) for points in raw]
    smooth_cols = [column_means(smoothed(points, smoothing), first, last, columns) for points in raw]
    every = [v for values in raw_cols + smooth_cols for v in values if v is not None]
    if not every:
        return Text("no loss values in this window", style="dim")
    low, high = math.log10(min(every)), math.log10(max(every))
    if high - low < 1e-6:
        low, high = low - 0.5, high + 0.5
    rows = plot_h * 4
    # Bits per cell: [raw src, raw dst, smooth src, smooth dst].
    cells = [[[0, 0, 0, 0] for _ in range(plot_w)] for _ in range(plot_h)]

    def dot_row(value: float) -> int:
        return min(rows - 1, max(0, round((high - math.log10(value)) / (high - low) * (rows - 1))))

    for layer, series in ((0, raw_cols), (2, smooth_cols)):
        for index, values in enumerate(series):
            previous = None
            for x, value in enumerate(values):
                if value is None:
                    continue
                y = dot_row(value)
                # The smoothed line joins its points so a steep fall reads as a line; raw points stay dots.
                span = range(min(y, previous), max(y, previous) + 1) if previous is not None and layer else (y,)
                for yy in span:
                    cells[yy // 4][x // 2][layer + index] |= _DOTS[x % 2][yy % 4]
                previous = y
    text = Text(no_wrap=True)
    for r in range(plot_h):
        label = f"{10 ** high:.3g}" if r == 0 else f"{10 ** low:.3g}" if r == plot_h - 1 else ""
        text.append(f"{label:>{AXIS_WIDTH - 1}}│", style="dim")
        for raw_src, raw_dst, smooth_src, smooth_dst in cells[r]:
            bits = raw_src | raw_dst | smooth_src | smooth_dst
            if smooth_src and smooth_dst:
                colour = "bold yellow"
            elif smooth_src or smooth_dst:
                colour = "bold cyan" if smooth_src else "bold magenta"
            elif raw_src and raw_dst:
                colour = "dim yellow"
            else:
                colour = "dim cyan" if raw_src else "dim magenta"
            text.append(chr(0x2800 + bits), style=colour if bits else None)
        text.append("\n")
    left, right = f"it {first:.0f}", f"it {last:.0f}" + (f" of {target}" if target else "")
    middle = f" {window_label(window)} (l) "
    gap = max(1, plot_w - len(left) - len(right))
    pad = max(0, gap - len(middle))
    axis = left + " " * (pad // 2) + (middle if gap > len(middle) else " " * gap) + " " * (pad - pad // 2) + right
    text.append(" " * AXIS_WIDTH + axis[:plot_w], style="dim")
    return text


def quality_points(history: Sequence[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    """(iteration, value) of a held-out quality metric in metrics dicts or quality_history points."""
    out = []
    for values in history:
        value = values.get(key)
        if value is None:
            value = values.get(key.removeprefix("quality_"))
        iteration = values.get("iter", values.get("iteration"))
        if isinstance(value, (int, float)) and math.isfinite(value) and isinstance(iteration, (int, float)):
            out.append((float(iteration), float(value)))
    return sorted(dict(out).items())


def sparkline(points: list[tuple[float, float]], width: int, first: float, last: float) -> str:
    """The values as ``width`` bar characters over the iteration range (blank where none fell)."""
    values = column_means(points, first, last, max(1, width))
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    return "".join(" " if v is None else SPARKS[0 if high - low < 1e-9 else
                                                 min(len(SPARKS) - 1, int((v - low) / (high - low) * len(SPARKS)))]
                   for v in values)


def quality_text(quality: Sequence[dict[str, Any]], width: int, first: float | None = None,
                 last: float | None = None) -> Text:
    """Held-out SSIM of both sides over the same iterations as the chart, with the latest values."""
    text = Text(no_wrap=True)
    rows = [(side, colour, quality_points(quality, f"quality_ssim_{side}")) for side, colour in
            (("dst", "magenta"), ("src", "cyan"))]
    rows = [row for row in rows if row[2]]
    if not rows:
        return Text("held-out SSIM: not measured yet", style="dim")
    iterations = [it for _, _, points in rows for it, _ in points]
    first = min(iterations) if first is None else first
    last = max(iterations) if last is None else last
    text.append("held-out SSIM (higher is better)\n", style="dim")
    for index, (side, colour, points) in enumerate(rows):
        latest_it, latest = points[-1]
        label = f"{side} {latest:.3f} @{latest_it:.0f} "
        text.append(label, style=colour)
        text.append(sparkline(points, max(1, width - len(label)), first, max(last, first + 1)), style=colour)
        if index + 1 < len(rows):
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
    """The target iteration (named under the axis; the axis itself follows the data)."""
    window: reactive[int | None] = reactive(None)
    """None: the whole run; a number: the last that many iterations."""

    def cycle_window(self) -> int | None:
        """The next window of ``WINDOWS`` (skipping those as long as the whole run)."""
        iterations = [it for key, _ in SERIES for it, _ in points_of(self.history, key)]
        run = (max(iterations) - min(iterations)) if iterations else 0
        choices = [w for w in WINDOWS if w is None or w < run] or [None]
        index = choices.index(self.window) if self.window in choices else -1
        self.window = choices[(index + 1) % len(choices)]
        return self.window

    def shown_range(self) -> tuple[float, float] | None:
        iterations = [it for key, _ in SERIES for it, _ in points_of(self.history, key)]
        return window_range(iterations, self.window) if iterations else None

    def render(self) -> Text:
        return draw_chart(self.history, self.content_size.width, self.content_size.height, self.target,
                          self.window)


class QualityLine(Widget):
    """The held-out quality (SSIM per side) as sparklines over the loss chart's iterations."""

    DEFAULT_CSS = """
    QualityLine { height: auto; max-height: 3; }
    """

    quality: reactive[list[dict[str, Any]]] = reactive(list, always_update=True)
    """Points with ``iteration``/``iter`` and ``ssim_dst``/``quality_ssim_dst`` (and src)."""
    span: reactive[tuple[float, float] | None] = reactive(None)

    def render(self) -> Text:
        first, last = self.span if self.span else (None, None)
        return quality_text(self.quality, self.content_size.width, first, last)
