"""Face masks in crop space: the landmark hull, the model's learned masks, the segmenter's, and products.

All masks are float32 H x W in 0..1 at the model's resolution (the crop the model saw), where
eroding, blurring and fading are cheap; the paste step warps the final mask back into the frame.
Knob sizes are given in pixels of a 256-pixel crop and scaled to the actual resolution, so the
same settings look the same for a 64-pixel test model and a 512-pixel one.

``segment`` is the segmenter's visible face (engine/segment): a hand, microphone or hair in front of
the destination's face is 0 there, so ``hull*segment`` keeps it in front of the swapped face. Its
mask is read from the PNG the ``segment`` job wrote beside the crops and warped into the model's
crop (the same warp when the model's face type matches the extraction's: then it is a resize).
"""

from __future__ import annotations

import functools
from typing import Any

import cv2
import numpy as np

from engine.errors import UserError
from engine.merge.settings import MASK_MODES
from engine.segment.store import visible


def hull_mask(points: np.ndarray, resolution: int) -> np.ndarray:
    """Filled convex hull of ``points`` (N x 2, crop coordinates)."""
    mask = np.zeros((resolution, resolution), np.float32)
    points = np.asarray(points, np.float32).reshape(-1, 2)
    if len(points) >= 3:
        hull = cv2.convexHull(np.round(points * 16).astype(np.int32))
        # shift=4: sub-pixel vertices (x16) so small crops keep a smooth outline.
        cv2.fillConvexPoly(mask, hull, 1.0, lineType=cv2.LINE_AA, shift=4)
    return mask


def segment_mask(face: Any, resolution: int) -> np.ndarray | None:
    """The face's segmenter mask (float32 0..1) in the model's crop at ``resolution``; None without one."""
    path = getattr(face, "segment", None)
    matrix = getattr(face, "segment_transform", None)
    if not path or matrix is None:
        return None
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        return None
    to_mask = np.vstack([np.asarray(matrix, np.float64).reshape(2, 3), [0, 0, 1]])
    scale = mask.shape[0] / float(face.size)  # the PNG may be smaller than the crop it belongs to
    mask_to_crop = face.crop_matrix(resolution) @ np.linalg.inv(np.diag([scale, scale, 1.0]) @ to_mask)
    if np.allclose(mask_to_crop[:, :2], np.eye(2) * mask_to_crop[0, 0]) and np.allclose(mask_to_crop[:, 2], 0):
        interp = cv2.INTER_AREA if mask.shape[0] > resolution else cv2.INTER_LINEAR
        out = cv2.resize(mask, (resolution, resolution), interpolation=interp)
    else:
        out = cv2.warpAffine(mask, mask_to_crop[:2], (resolution, resolution), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT)
    return visible(out)


def require_segment(mode: str, faces: dict[int, list[Any]]) -> None:
    """A mask mode with ``segment`` needs the segmenter's masks of the destination: one clear error
    before the merge starts when there are none (a face that lacks one alone uses the hull)."""
    if "segment" in mode and faces and not any(getattr(f, "segment", None) for fs in faces.values() for f in fs):
        raise UserError(f"The mask mode {mode} needs the segmenter's masks of the destination faces, and there "
                        "are none yet.", "Make them with: swapwizard segment WS --side dst (or swapwizard run WS "
                        "does it), or choose --mask hull.")


def combine(mode: str, hull: np.ndarray | None, learned_prd: np.ndarray | None,
            learned_dst: np.ndarray | None, segment: np.ndarray | None = None) -> np.ndarray:
    """The product of the masks ``mode`` names (e.g. ``hull*learned-prd``, ``hull*segment``)."""
    if mode not in MASK_MODES:
        raise ValueError(f"unknown mask mode {mode!r}")
    parts = {"hull": hull, "learned-prd": learned_prd, "learned-dst": learned_dst, "segment": segment}
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
