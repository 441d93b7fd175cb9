"""Face masks in crop space: the landmark hull, the model's learned masks, and their products.

All masks are float32 H x W in 0..1 at the model's resolution (the crop the model saw), where
eroding, blurring and fading are cheap; the paste step warps the final mask back into the frame.
Knob sizes are given in pixels of a 256-pixel crop and scaled to the actual resolution, so the
same settings look the same for a 64-pixel test model and a 512-pixel one.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from engine.merge.settings import MASK_MODES


def hull_mask(points: np.ndarray, resolution: int) -> np.ndarray:
    """Filled convex hull of ``points`` (N x 2, crop coordinates)."""
    mask = np.zeros((resolution, resolution), np.float32)
    points = np.asarray(points, np.float32).reshape(-1, 2)
    if len(points) >= 3:
        hull = cv2.convexHull(np.round(points * 16).astype(np.int32))
        # shift=4: sub-pixel vertices (x16) so small crops keep a smooth outline.
        cv2.fillConvexPoly(mask, hull, 1.0, lineType=cv2.LINE_AA, shift=4)
    return mask


def combine(mode: str, hull: np.ndarray | None, learned_prd: np.ndarray | None,
            learned_dst: np.ndarray | None) -> np.ndarray:
    """The product of the masks ``mode`` names (e.g. ``hull*learned-prd``)."""
    if mode not in MASK_MODES:
        raise ValueError(f"unknown mask mode {mode!r}")
    parts = {"hull": hull, "learned-prd": learned_prd, "learned-dst": learned_dst}
    result = None
    for name in mode.split("*"):
        part = parts[name]
        if part is None:
            raise ValueError(f"mask mode {mode!r} needs the {name} mask, which is missing")
        part = np.clip(np.asarray(part, np.float32), 0.0, 1.0)
        result = part if result is None else result * part
    return result


def _scaled(pixels_at_256: float, resolution: int) -> int:
    return int(round(abs(pixels_at_256) * resolution / 256.0))


@functools.lru_cache(maxsize=16)
def edge_ramp(resolution: int, fade: int) -> np.ndarray:
    """1 inside, falling linearly to 0 at the crop's border over ``fade`` pixels."""
    if fade <= 0:
        return np.ones((resolution, resolution), np.float32)
    axis = np.arange(resolution, dtype=np.float32)
    distance = np.minimum(axis, resolution - 1 - axis)
    ramp = np.clip(distance / fade, 0.0, 1.0)
    return np.minimum.outer(ramp, ramp).astype(np.float32)


def refine(mask: np.ndarray, erode: int = 0, blur: int = 0, edge_fade: int = 0) -> np.ndarray:
    """Erode (positive) or dilate (negative), blur, then fade out before the crop edge."""
    resolution = mask.shape[0]
    radius = _scaled(erode, resolution)
    if radius:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        mask = cv2.erode(mask, kernel) if erode > 0 else cv2.dilate(mask, kernel)
    fade = _scaled(edge_fade, resolution)
    if fade:
        # Zero the band first so the blur below fades into it instead of leaving a hard step.
        mask = mask * (edge_ramp(resolution, fade) >= 1.0)
    sigma = _scaled(blur, resolution) / 2.0
    if sigma > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    if fade:
        mask = mask * edge_ramp(resolution, fade)
    return np.clip(mask, 0.0, 1.0).astype(np.float32)
