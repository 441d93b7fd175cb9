"""A model's quality over training: ``quality_history.json`` next to its ``loss_history.json``.

Each point is a dict with ``iteration``, ``time`` (unix), ``source`` ("training": the reconstruction
measured by the trainer every few hundred iterations; "quality": a full measurement by the quality
job) and the metric values, so a client can draw quality, not only loss, against iterations.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from engine.atomic import atomic_write_json, read_json

HISTORY_FILE = "quality_history.json"
#: Past this many points the oldest half is thinned to every second point.
MAX_POINTS = 2000


def read(model_dir: Path) -> list[dict[str, Any]]:
    data = read_json(Path(model_dir) / HISTORY_FILE, default=None)
    points = data.get("points") if isinstance(data, dict) else None
    return [p for p in points if isinstance(p, dict)] if isinstance(points, list) else []


def append(model_dir: Path, iteration: int, source: str, values: dict[str, Any]) -> dict[str, Any]:
    """Add a point (a later point at the same iteration and source replaces the earlier one)."""
    point = {"iteration": int(iteration), "time": round(time.time(), 2), "source": source,
             **{k: v for k, v in values.items() if isinstance(v, (int, float)) or v is None}}
    points = [p for p in read(model_dir) if not (p.get("iteration") == point["iteration"] and p.get("source") == source)]
    # A model rolled back or retrained from an earlier checkpoint: later points no longer describe it.
    points = [p for p in points if p.get("source") != source or int(p.get("iteration", 0)) < point["iteration"]]
    points.append(point)
    points.sort(key=lambda p: (int(p.get("iteration", 0)), p.get("time", 0)))
    if len(points) > MAX_POINTS:
        half = len(points) // 2
        points = points[:half:2] + points[half:]
    atomic_write_json(Path(model_dir) / HISTORY_FILE, {"points": points})
    return point
