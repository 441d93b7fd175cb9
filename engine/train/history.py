"""The loss curve of a model, bounded in size however long it trains.

Points are ``[iteration, loss_src, loss_dst, unix_time]``, one per reading of the losses (each the
mean over the iterations since the previous point). Past ``MAX_POINTS`` neighbouring points are
merged in pairs, so a week of training stays a few hundred kilobytes and the whole curve survives.
It is saved in every checkpoint (so a resumed run continues it) and as ``loss_history.json`` in the
model folder for clients that only want to draw it.
"""

from __future__ import annotations

import math
from pathlib import Path

from engine.atomic import atomic_write_json

MAX_POINTS = 4000
HISTORY_FILE = "loss_history.json"


class LossHistory:
    def __init__(self, points: list[list[float]] | None = None, smoothed: float | None = None) -> None:
        self.points: list[list[float]] = [list(p) for p in points or []]
        #: Exponential moving average of loss_src + loss_dst (chooses the best checkpoint).
        self.smoothed = smoothed

    def add(self, iteration: int, loss_src: float, loss_dst: float, when: float) -> None:
        self.points.append([int(iteration), round(loss_src, 6), round(loss_dst, 6), round(when, 2)])
        total = loss_src + loss_dst
        if math.isfinite(total):
            self.smoothed = total if self.smoothed is None else 0.98 * self.smoothed + 0.02 * total
        if len(self.points) > MAX_POINTS:
            merged = []
            for a, b in zip(self.points[0::2], self.points[1::2]):
                merged.append([b[0], round((a[1] + b[1]) / 2, 6), round((a[2] + b[2]) / 2, 6), b[3]])
            if len(self.points) % 2:
                merged.append(self.points[-1])
            self.points = merged

    def truncate(self, iteration: int) -> None:
        """Drop points after ``iteration`` (after a roll-back to an earlier checkpoint)."""
        self.points = [p for p in self.points if p[0] <= iteration]

    def state(self) -> dict:
        return {"points": self.points, "smoothed": self.smoothed}

    @classmethod
    def from_state(cls, state: dict | None) -> LossHistory:
        state = state or {}
        return cls(state.get("points"), state.get("smoothed"))

    def write(self, model_dir: Path, iteration: int) -> Path:
        path = Path(model_dir) / HISTORY_FILE
        atomic_write_json(path, {"iteration": iteration, "columns": ["iteration", "loss_src", "loss_dst", "time"],
                                 "points": self.points})
        return path

    def downsampled(self, limit: int = 500) -> list[list[float]]:
        step = max(1, math.ceil(len(self.points) / limit))
        return self.points[::step] if step > 1 else list(self.points)
