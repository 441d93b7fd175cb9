"""The quality measures, as plain functions of arrays (numpy and OpenCV; no model, no workspace).

Images are BGR, either uint8 or float in 0..1; masks are float HxW in 0..1 (weights) or uint8 0/255.

- ``masked_ssim`` / ``masked_psnr``: reconstruction quality inside the face mask (SSIM with the usual
  11-pixel Gaussian window, sigma 1.5, averaged over channels, then weighted by the mask).
- ``landmark_error``: mean distance between two landmark sets divided by the face size (the square
  root of the reference face box's area), over the 68 classic points and over the eyes and the mouth
  alone (the expression). 0 means the swap follows the destination's face exactly.
- ``frame_change``: mean absolute grey-level change between two frames inside a region; the flicker
  measure is the swap's change over the destination's own change on the same pairs of frames.
- ``high_frequency_energy``: mean squared Laplacian inside a mask; sharpness is the swap's energy
  over the destination's.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from engine.faces.landmarks import MESH_TO_68

#: 68-point groups: the eyes (36-47) and the mouth (48-67) carry the expression.
EYES_68 = np.arange(36, 48)
MOUTH_68 = np.arange(48, 68)
#: PSNR of identical images is infinite; JSON has no infinity, so it is reported as this.
PSNR_CAP = 100.0


def _float(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    return image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)


def _weights(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if mask is None:
        return np.ones(shape[:2], np.float32)
    return _float(mask).reshape(shape[:2])


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM (HxW, channels averaged) of two images of the same size."""
    a, b = _float(a), _float(b)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    c1, c2 = 0.01 ** 2, 0.03 ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    out = np.zeros(a.shape[:2], np.float32)
    for c in range(a.shape[2]):
        x, y = a[..., c], b[..., c]
        mx, my = blur(x), blur(y)
        vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        out += ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return out / a.shape[2]


def masked_ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean SSIM inside ``mask`` (1 = identical)."""
    weights = _weights(mask, np.shape(a))
    total = float(weights.sum())
    if total <= 0:
        return float("nan")
    return float((ssim_map(a, b) * weights).sum() / total)


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB inside ``mask`` (higher is better; identical images give ``PSNR_CAP``)."""
    a, b = _float(a), _float(b)
    weights = _weights(mask, a.shape)
    channels = a.shape[2] if a.ndim == 3 else 1
    total = float(weights.sum()) * channels
    if total <= 0:
        return float("nan")
    diff = (a - b) ** 2
    if diff.ndim == 3:
        diff = diff.sum(axis=2)
    mse = float((diff * weights).sum() / total)
    if mse <= 10 ** (-PSNR_CAP / 10):
        return PSNR_CAP
    return float(10 * math.log10(1.0 / mse))


def face_size(landmarks: np.ndarray) -> float:
    """Square root of the area of the landmarks' bounding box, in their units."""
    points = np.asarray(landmarks, np.float64)[:, :2]
    width, height = points.max(0) - points.min(0)
    return float(math.sqrt(max(width * height, 1e-12)))


def landmark_error(found: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Normalised mean error of ``found`` against ``reference`` (both 468-point mesh arrays).

    Keys: ``all`` (the 68 classic points: jaw, brows, nose, eyes, mouth), ``eyes``, ``mouth``.
    """
    found68 = np.asarray(found, np.float64)[MESH_TO_68, :2]
    ref68 = np.asarray(reference, np.float64)[MESH_TO_68, :2]
    distances = np.linalg.norm(found68 - ref68, axis=1) / face_size(ref68)
    return {"all": float(distances.mean()), "eyes": float(distances[EYES_68].mean()),
            "mouth": float(distances[MOUTH_68].mean())}


def grey(image: np.ndarray) -> np.ndarray:
    """Grey levels in 0..1 (float32) of a BGR image."""
    image = _float(image)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image


def frame_change(previous: np.ndarray, current: np.ndarray, region: np.ndarray) -> float:
    """Mean absolute grey-level change (0..1) from ``previous`` to ``current`` inside ``region``."""
    weights = _weights(region, np.shape(current))
    total = float(weights.sum())
    if total <= 0:
        return float("nan")
    return float((np.abs(grey(current) - grey(previous)) * weights).sum() / total)


def high_frequency_energy(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared Laplacian of the grey image inside ``mask`` (fine detail and edges)."""
    laplacian = cv2.Laplacian(grey(image), cv2.CV_32F, ksize=3)
    weights = _weights(mask, laplacian.shape)
    total = float(weights.sum())
    if total <= 0:
        return float("nan")
    return float((laplacian ** 2 * weights).sum() / total)


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``; 1.0 when both are 0, NaN when only the denominator is."""
    if denominator == 0:
        return 1.0 if numerator == 0 else float("nan")
    return numerator / denominator


def hull_mask(landmarks: np.ndarray, shape: tuple[int, int], erode: int = 0) -> np.ndarray:
    """Filled convex hull of the landmarks (uint8 0/255, ``shape`` = (H, W)), optionally eroded."""
    mask = np.zeros(shape, np.uint8)
    points = np.asarray(landmarks, np.float64)[:, :2]
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255)
    if erode > 0:
        mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode + 1, 2 * erode + 1)))
    return mask
