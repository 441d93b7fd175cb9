"""The opening plot: the destination's mouth (or eye) opening against the swap's, face by face, as text.

    lines = opening_lines(metrics["expr_openings"])   # quality, compare, the Train and Compare screens
    destination ▁▂▅█▇▃▁▁▂▆█▅▂▁
    swap        ▁▁▂▂▂▁▁▁▁▂▂▂▁▁

Both rows share one scale, so a swap whose mouth opens a quarter as far as the destination's shows as a
flat row under a lively one (what the figures ``expr_mouth_spread`` and ``expr_mouth_corr`` say in
numbers, ``engine.quality.expression``). Faces in frame order; more faces than ``width`` are thinned
evenly. Pure Python: the wizard imports it (the browser view draws the same series itself).
"""

from __future__ import annotations

from typing import Any

BARS = "▁▂▃▄▅▆▇█"


def _thin(values: list[float], width: int) -> list[float]:
    if len(values) <= width:
        return values
    return [values[round(i * (len(values) - 1) / (width - 1))] for i in range(width)]


def opening_lines(openings: Any, feature: str = "mouth", width: int = 48) -> list[str]:
    """Three lines (a title with the scale, the destination's row, the swap's) of ``expr_openings``;
    [] when there are fewer than 2 faces or no such series."""
    if not isinstance(openings, dict):
        return []
    dst, swap, frames = openings.get(f"{feature}_dst"), openings.get(f"{feature}_swap"), openings.get("frames")
    if not isinstance(dst, list) or not isinstance(swap, list) or len(dst) != len(swap) or len(dst) < 2:
        return []
    order = sorted(range(len(dst)), key=lambda i: frames[i]) if isinstance(frames, list) and len(frames) == len(dst) \
        else list(range(len(dst)))
    dst, swap = _thin([float(dst[i]) for i in order], width), _thin([float(swap[i]) for i in order], width)
    lo, hi = min(dst + swap), max(dst + swap)

    def row(values: list[float]) -> str:
        if hi - lo < 1e-9:
            return BARS[0] * len(values)
        return "".join(BARS[min(7, int((v - lo) / (hi - lo) * 8))] for v in values)

    return [f"{feature} opening over {len(order)} faces in frame order ({lo:.3f} to {hi:.3f} of the face width):",
            f"destination {row(dst)}", f"swap        {row(swap)}"]
