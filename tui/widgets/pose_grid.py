"""The pose coverage grid: source versus destination faces per yaw and per pitch bin.

For each axis, two rows show how many faces each side has per 15-degree bin (block height is the
share of that side's faces); a third row marks ``!`` where the destination has faces and the source
has fewer than three: there the swap has nothing to learn from and will look wrong.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

LEVELS = " ▁▂▃▄▅▆▇█"
#: Fewer source faces than this in a bin the destination uses counts as a gap.
MIN_SOURCE = 3
CELL = 4


def _bars(counts: list[int]) -> str:
    top = max(counts) if counts and max(counts) > 0 else 1
    return "".join((LEVELS[max(1, min(8, round(8 * c / top)))] if c else "·").center(CELL) for c in counts)


def axis_rows(name: str, src: dict[str, Any], dst: dict[str, Any]) -> Text:
    edges = src.get("edges") or dst.get("edges") or []
    src_counts, dst_counts = src.get("counts") or [], dst.get("counts") or []
    bins = max(len(src_counts), len(dst_counts))
    src_counts = (src_counts + [0] * bins)[:bins]
    dst_counts = (dst_counts + [0] * bins)[:bins]
    text = Text(no_wrap=True)
    text.append(f"{name:<6}    " + "".join(f"{e:>+4d}"[:CELL] for e in edges[:bins]) + "\n", style="dim")
    text.append(f"{'':<6}src ", style="cyan")
    text.append(_bars(src_counts) + "\n", style="cyan")
    text.append(f"{'':<6}dst ", style="magenta")
    text.append(_bars(dst_counts) + "\n", style="magenta")
    gaps = "".join(("!" if d and s < MIN_SOURCE else "").center(CELL) for s, d in zip(src_counts, dst_counts))
    text.append(f"{'':<6}gap ", style="dim")
    text.append(gaps + "\n", style="bold red")
    return text


class PoseGrid(Widget):
    DEFAULT_CSS = """
    PoseGrid { height: auto; }
    """

    report: reactive[dict[str, Any]] = reactive(dict, always_update=True, layout=True)
    """The check report (``sides.<side>.yaw_histogram`` / ``pitch_histogram``, ``coverage``)."""

    def render(self) -> Text:
        sides = self.report.get("sides") or {}
        src, dst = sides.get("src") or {}, sides.get("dst") or {}
        text = Text(no_wrap=True)
        coverage = self.report.get("coverage") or {}
        if coverage.get("score") is not None:
            text.append(f"Pose coverage {coverage['score']:.0%}", style="bold")
            text.append(f": share of destination faces with {coverage.get('min_neighbours', MIN_SOURCE)}+ source "
                        f"faces within {coverage.get('radius_degrees', 10):.0f}°\n")
        text.append_text(axis_rows("yaw", src.get("yaw_histogram") or {}, dst.get("yaw_histogram") or {}))
        text.append_text(axis_rows("pitch", src.get("pitch_histogram") or {}, dst.get("pitch_histogram") or {}))
        return text
