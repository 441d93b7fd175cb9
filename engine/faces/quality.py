"""Per-face measurements: head pose from the 3-D mesh, sharpness, brightness, the mask polygon.

Pose: axes built from the mesh's own 3-D points (x: the person's right-to-left eye corners and
temples; up: chin to forehead), so no 3-D head model is needed. Yaw > 0: the face turns towards the
image's right; pitch > 0: it looks up; roll > 0: it tilts clockwise in the image. Degrees.
"""

from __future__ import annotations

import math

import numpy as np

from engine.faces.align import apply
from engine.faces.landmarks import FACE_OVAL

#: Symmetric point pairs (person's right, left) used for the face's x axis.
_PAIRS = ((33, 263), (133, 362), (234, 454), (127, 356), (61, 291))
#: How far the upper outline is raised (as a fraction of its height above the eyes) per face type:
#: the mesh's outline stops at the upper forehead; whole_face and head swap the forehead too.
FOREHEAD_RAISE = {"half": 0.0, "mid_full": 0.0, "full": 0.0, "whole_face": 0.35, "head": 0.6}


def head_pose(mesh: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from (468, 3) landmarks in pixels (z as mediapipe gives it)."""
    p = np.asarray(mesh, dtype=np.float64)
    x = sum(p[b] - p[a] for a, b in _PAIRS)
    x /= np.linalg.norm(x) + 1e-9
    up = p[10] - p[152]
    up -= x * float(up @ x)
    up /= np.linalg.norm(up) + 1e-9
    forward = np.cross(x, up)  # towards the camera for a frontal face (image y down, z away)
    yaw = math.degrees(math.atan2(forward[0], -forward[2]))
    pitch = math.degrees(math.atan2(-forward[1], math.hypot(forward[0], forward[2])))
    roll = math.degrees(math.atan2(x[1], x[0]))
    return yaw, pitch, roll


def blur_score(crop_bgr: np.ndarray) -> float:
    """Variance of the Laplacian at 256 px: higher is sharper, comparable across crop sizes."""
    import cv2

    small = crop_bgr if crop_bgr.shape[0] == 256 else cv2.resize(crop_bgr, (256, 256), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def brightness(crop_bgr: np.ndarray, mask: np.ndarray | None = None) -> float:
    import cv2

    grey = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2GRAY)
    if mask is not None and mask.any():
        return float(cv2.mean(grey, mask=mask)[0])
    return float(grey.mean())


def mask_polygon(mesh: np.ndarray, transform: np.ndarray, face_type: str) -> np.ndarray:
    """The face outline in crop pixels, its upper part raised to cover the forehead where the
    face type includes it. (N, 2) float."""
    pts = apply(transform, np.asarray(mesh)[FACE_OVAL, :2])
    raise_by = FOREHEAD_RAISE.get(face_type, 0.0)
    if raise_by:
        eyes_y = float(apply(transform, np.asarray(mesh)[[33, 263], :2])[:, 1].mean())
        above = pts[:, 1] < eyes_y
        pts[above, 1] -= (eyes_y - pts[above, 1]) * raise_by
    return pts
