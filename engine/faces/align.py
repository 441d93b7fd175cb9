"""Alignment: a similarity transform from a face's landmarks to a canonical template, per face type.

The template (``TEMPLATE_68``) is a mean frontal face in the classic 68-point layout, in units where
the brows span x 0..1 and the brow tops are at y 0 (the chin is at y 1.26). It was measured, not
copied: the 400 frames of the two talking-head clips in the shared data, 68-point mapping of the
mesh, Procrustes mean, made mirror-symmetric. Alignment fits only ``ALIGN_68`` (brows, eyes, nose,
mouth corners) with Umeyama's least-squares similarity (rotation, uniform scale, translation), so
the crop does not swim when the jaw or the lips move.

Face types: the square crop, in template units, that each one cuts (centre x is always 0.5):

=============  =======  ========  ================================================================
face type      centre y  side     what the crop holds
=============  =======  ========  ================================================================
half           0.50      1.00     brows to just under the lips, outer brow to outer brow
mid_full       0.55      1.15     brows to the chin's top, a little cheek beyond the eyes
full           0.60      1.45     brows to just under the chin, cheek to cheek (jaw line inside)
whole_face     0.50      1.85     forehead to under the chin, the whole jaw and the cheeks (default)
head           0.40      2.50     the whole head with hair and some neck
=============  =======  ========  ================================================================

``transform_for(landmarks, face_type, size)`` returns the 2x3 matrix that maps frame pixels to the
``size`` x ``size`` crop (use it with ``cv2.warpAffine``). A crop of another resolution for the same
face is the same matrix scaled: ``resize_transform(m, size, new_size)`` multiplies all six entries by
``new_size / size`` (a model trained at 256 on 512 crops uses this to cut 256 crops from frames).
"""

from __future__ import annotations

import numpy as np

from engine.errors import UserError
from engine.faces.landmarks import ALIGN_68, MESH_TO_68

FACE_TYPES = ("half", "mid_full", "full", "whole_face", "head")
DEFAULT_FACE_TYPE = "whole_face"
DEFAULT_SIZE = 512

#: face type -> (centre y, side) of the crop square in template units.
CROPS = {
    "half": (0.50, 1.00),
    "mid_full": (0.55, 1.15),
    "full": (0.60, 1.45),
    "whole_face": (0.50, 1.85),
    "head": (0.40, 2.50),
}

TEMPLATE_68 = np.array([
    [-0.1031, 0.3070],
    [-0.0934, 0.4382],
    [-0.0815, 0.5698],
    [-0.0587, 0.7098],
    [-0.0164, 0.8556],
    [0.0395, 0.9705],
    [0.1014, 1.0511],
    [0.2441, 1.1713],
    [0.5000, 1.2615],
    [0.7559, 1.1713],
    [0.8986, 1.0511],
    [0.9605, 0.9705],
    [1.0164, 0.8556],
    [1.0587, 0.7098],
    [1.0815, 0.5698],
    [1.0934, 0.4382],
    [1.1031, 0.3070],
    [0.0000, 0.0949],
    [0.0541, 0.0321],
    [0.1387, 0.0000],
    [0.2468, 0.0024],
    [0.3702, 0.0166],
    [0.6298, 0.0166],
    [0.7532, 0.0024],
    [0.8613, 0.0000],
    [0.9459, 0.0321],
    [1.0000, 0.0949],
    [0.5000, 0.1859],
    [0.5000, 0.3201],
    [0.5000, 0.4341],
    [0.5000, 0.5088],
    [0.3577, 0.6267],
    [0.4386, 0.6390],
    [0.5000, 0.6372],
    [0.5614, 0.6390],
    [0.6423, 0.6267],
    [0.0984, 0.2470],
    [0.1636, 0.2102],
    [0.2557, 0.2060],
    [0.3450, 0.2593],
    [0.2606, 0.2830],
    [0.1692, 0.2807],
    [0.6550, 0.2593],
    [0.7443, 0.2060],
    [0.8364, 0.2102],
    [0.9016, 0.2470],
    [0.8308, 0.2807],
    [0.7394, 0.2830],
    [0.2696, 0.8481],
    [0.3184, 0.7992],
    [0.4318, 0.7512],
    [0.5000, 0.7595],
    [0.5682, 0.7512],
    [0.6816, 0.7992],
    [0.7304, 0.8481],
    [0.6794, 0.9207],
    [0.5727, 0.9880],
    [0.5000, 0.9958],
    [0.4273, 0.9880],
    [0.3206, 0.9207],
    [0.3042, 0.8445],
    [0.4020, 0.8223],
    [0.5000, 0.8234],
    [0.5980, 0.8223],
    [0.6958, 0.8445],
    [0.6054, 0.8872],
    [0.5000, 0.8996],
    [0.3946, 0.8872],
], dtype=np.float64)


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (2x3) that maps points ``src`` onto ``dst`` (Umeyama 1991)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mean_s, mean_d = src.mean(0), dst.mean(0)
    s, d = src - mean_s, dst - mean_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    var = (s ** 2).sum(1).mean()
    scale = np.trace(np.diag(sig) @ sign) / var if var > 0 else 1.0
    out = np.zeros((2, 3))
    out[:, :2] = scale * rot
    out[:, 2] = mean_d - scale * rot @ mean_s
    return out


def check_face_type(face_type: str) -> str:
    if face_type not in CROPS:
        raise UserError(f"{face_type!r} is not a face type.", f"Use one of: {', '.join(FACE_TYPES)}.")
    return face_type


def transform_for(landmarks: np.ndarray, face_type: str = DEFAULT_FACE_TYPE, size: int = DEFAULT_SIZE) -> np.ndarray:
    """2x3 matrix from frame pixels to the ``size`` crop of ``face_type``; ``landmarks`` is (468, 2+)."""
    centre_y, side = CROPS[check_face_type(face_type)]
    points = np.asarray(landmarks)[MESH_TO_68[ALIGN_68], :2]
    to_template = umeyama(points, TEMPLATE_68[ALIGN_68])
    # Template units -> crop pixels: shift the crop's top-left corner to 0, scale side to size.
    scale = size / side
    to_crop = np.array([[scale, 0, -(0.5 - side / 2) * scale], [0, scale, -(centre_y - side / 2) * scale]])
    return to_crop @ np.vstack([to_template, [0, 0, 1]])


def resize_transform(matrix: np.ndarray, size: int, new_size: int) -> np.ndarray:
    """The same crop at another resolution: every entry scales by ``new_size / size``."""
    return np.asarray(matrix, dtype=np.float64) * (new_size / size)


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) points with a 2x3 matrix."""
    points = np.asarray(points, dtype=np.float64)[:, :2]
    return points @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]


def invert(matrix: np.ndarray) -> np.ndarray:
    """The 2x3 inverse (crop -> frame) of a 2x3 similarity."""
    full = np.vstack([np.asarray(matrix, dtype=np.float64), [0, 0, 1]])
    return np.linalg.inv(full)[:2]


def fit_error(landmarks: np.ndarray) -> float:
    """How far the landmarks are from a similarity of the template (mean distance over the alignment
    points, in template units). About 0.02 for a well-tracked frontal face, 0.03-0.06 for a talking,
    turning one, more for landmarks fitted to a face at the wrong rotation."""
    points = np.asarray(landmarks)[MESH_TO_68[ALIGN_68], :2].astype(np.float64)
    matrix = umeyama(TEMPLATE_68[ALIGN_68], points)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2])))) or 1.0
    return float(np.linalg.norm(apply(matrix, TEMPLATE_68[ALIGN_68]) - points, axis=1).mean() / scale)
