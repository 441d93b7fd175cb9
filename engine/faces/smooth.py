"""Temporal smoothing of landmarks (One Euro filter) and the jitter measurement that justifies it.

One Euro filter (Casiez, Roussel, Vogel 2012): a low-pass filter whose cut-off rises with speed, so
a still face loses its frame-to-frame noise (the shimmer of a swapped face) while a moving mouth or a
turning head is followed without lag. Run per track, vectorised over all 468 points; speeds are in
face sizes per second so the same settings suit a small and a large face.

Jitter (``jitter``): for two consecutive frames of a track, fit a similarity from the stable points
(eye corners, nose bridge, brow roots, temples) of the first to the second, and take the mean
distance that remains: what moved that the face's own motion does not explain. Reported in pixels
of a 512 crop of the face type the extraction used, so figures compare across clips.
"""

from __future__ import annotations

import math

import numpy as np

from engine.faces.align import apply, umeyama
from engine.faces.landmarks import STABLE

DEFAULT_MIN_CUTOFF = 1.0   # Hz: how hard a still face is smoothed (lower is smoother)
DEFAULT_BETA = 10.0        # how fast the cut-off rises with speed (higher follows motion better)
DERIVATIVE_CUTOFF = 1.0    # Hz


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuro:
    """One Euro filter over an array of points; ``state()``/``from_state`` let a run resume."""

    def __init__(self, min_cutoff: float = DEFAULT_MIN_CUTOFF, beta: float = DEFAULT_BETA) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None
        self.t: float = 0.0

    def __call__(self, points: np.ndarray, t: float, scale: float) -> np.ndarray:
        """Filter ``points`` seen at time ``t`` (seconds); ``scale`` is the face size in pixels."""
        points = np.asarray(points, dtype=np.float64)
        if self.x is None or t <= self.t or self.x.shape != points.shape:
            self.x, self.dx, self.t = points.copy(), np.zeros(points.shape[0]), t
            return points.copy()
        dt = t - self.t
        speed = np.linalg.norm(points - self.x, axis=1) / dt / max(scale, 1.0)
        a_d = _alpha(DERIVATIVE_CUTOFF, dt)
        self.dx = a_d * speed + (1 - a_d) * self.dx
        a = _alpha(self.min_cutoff + self.beta * self.dx, dt)[:, None]
        self.x = a * points + (1 - a) * self.x
        self.t = t
        return self.x.copy()

    def state(self) -> dict:
        return {"x": None if self.x is None else self.x.tolist(),
                "dx": None if self.dx is None else self.dx.tolist(), "t": self.t}

    @classmethod
    def from_state(cls, state: dict, min_cutoff: float, beta: float) -> OneEuro:
        f = cls(min_cutoff, beta)
        if state.get("x") is not None:
            f.x = np.asarray(state["x"], dtype=np.float64)
            f.dx = np.asarray(state["dx"], dtype=np.float64)
            f.t = float(state["t"])
        return f


def pair_jitter(previous: np.ndarray, current: np.ndarray, crop_scale: float) -> float:
    """Residual motion of the stable points between two frames, in crop pixels."""
    a, b = previous[STABLE, :2], current[STABLE, :2]
    moved = apply(umeyama(a, b), a)
    return float(np.linalg.norm(moved - b, axis=1).mean() * crop_scale)


class JitterMeter:
    """Accumulates the jitter of raw and smoothed landmarks over consecutive frames of each track."""

    def __init__(self) -> None:
        self.sums = {"raw": 0.0, "smoothed": 0.0}
        self.pairs = 0

    def add(self, raw_prev: np.ndarray, raw: np.ndarray, smooth_prev: np.ndarray, smooth: np.ndarray,
            crop_scale: float) -> None:
        self.sums["raw"] += pair_jitter(raw_prev, raw, crop_scale)
        self.sums["smoothed"] += pair_jitter(smooth_prev, smooth, crop_scale)
        self.pairs += 1

    def result(self) -> dict:
        if not self.pairs:
            return {"pairs": 0, "raw_px": None, "smoothed_px": None}
        return {"pairs": self.pairs, "raw_px": round(self.sums["raw"] / self.pairs, 3),
                "smoothed_px": round(self.sums["smoothed"] / self.pairs, 3)}
