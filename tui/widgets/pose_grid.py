"""The pose coverage grid: for each yaw x pitch cell, how many source and destination faces fall in it.

A destination pose with no source faces nearby is where the swap will look wrong: such cells are
marked ``!`` (and red). Cells show ``·`` (no faces), ``s`` (source only), ``!`` (destination only,
uncovered) or ``█`` (both).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


class PoseGrid(Widget):
    DEFAULT_CSS = """
    PoseGrid { height: auto; }
    """

    coverage: reactive[dict[str, Any]] = reactive(dict, always_update=True, layout=True)
    """``{"yaw": [bin labels], "pitch": [bin labels], "src": [[count]], "dst": [[count]]}`` (rows = pitch)."""

    def render(self) -> Text:
        data = self.coverage
        src, dst = data.get("src") or [], data.get("dst") or []
        yaw, pitch = data.get("yaw") or [], data.get("pitch") or []
        width = max([3, *(len(str(y)) + 1 for y in yaw)])
        text = Text(no_wrap=True)
        text.append("pose coverage (rows: pitch, columns: yaw)\n", style="bold")
        for r, row in enumerate(src):
            label = str(pitch[r]) if r < len(pitch) else ""
            text.append(f"{label:>6} ", style="dim")
            for c, s_count in enumerate(row):
                d_count = dst[r][c] if r < len(dst) and c < len(dst[r]) else 0
                if s_count and d_count:
                    text.append("█" * (width - 1) + " ", style="green")
                elif d_count:
                    text.append("!" * (width - 1) + " ", style="bold red")
                elif s_count:
                    text.append("s".ljust(width), style="cyan")
                else:
                    text.append("·".ljust(width), style="dim")
            text.append("\n")
        if yaw:
            text.append("       " + "".join(str(y).ljust(width) for y in yaw) + "\n", style="dim")
        text.append("█ both  s source only  ! destination pose the source lacks  · none")
        return text
