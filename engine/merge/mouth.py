"""The destination's own mouth over the swapped face, for models whose mouth does not follow (issue 25).

    [merge] mouth = swap          # the model's mouth (as trained)
    [merge] mouth = destination   # the destination's mouth region blended over the swap
    [merge] mouth = auto          # the destination's where the model's latest quality says its mouth
                                  # does not follow (the merge job decides and says so; the default)

A small autoencoder trained for minutes on a CPU draws identity well before it draws the destination's
lip movements: on unseen pairs its mouth stays closed, or opens with the source's habits, while the
destination talks. Deep-Live-Cam's "mouth mask" and FaceFusion's expression restorer answer the same
way: keep the destination's mouth. ``restore`` does it in crop space, inside ``blend.paste_face``:

- the region is the destination's outer-lip outline (mesh landmarks of the destination face), grown by
  ``GROW`` of the mouth's width so that the seam lies on skin rather than on the lip line, and feathered
  by a Gaussian of ``FEATHER`` of the mouth's width (no hard edge anywhere);
- the destination's pixels in that region are colour-matched to the swap's on the skin round the lips
  (the mean per Lab channel; the lips themselves are left out of the statistics, since one mouth may be
  open where the other is closed; matching the spread too, as ``engine.merge.colour.rct`` does, made the
  lips garish), so the region takes the swap's tone and lighting;
- then blended over the swapped face; the face's mask and colour transfer run as before.

The lips are then the destination person's (a small part of identity: measured on the sample pair,
docs/expression.md); the rest of the face is the swap's. The result is labelled as face-swapped
like any other.
"""

from __future__ import annotations

import cv2
import numpy as np

from engine.faces.landmarks import MESH_TO_68
from engine.merge import colour

#: Mesh indices of the outer lip line (the 68-point scheme's 48-59).
OUTER_LIPS = MESH_TO_68[48:60]
#: The region grows this share of the mouth's width beyond the lips, and is feathered by this share.
GROW, FEATHER = 0.22, 0.12


def _regions(points: np.ndarray, size: int, grow: float = GROW) -> tuple[np.ndarray, np.ndarray]:
    """(the lips, the feathered mouth region grown by ``grow`` of the mouth's width), size x size float32
    0..1 each; zeros when the lips are not in the crop."""
    lips = np.asarray(points, np.float64)[OUTER_LIPS, :2]
    width = float(np.linalg.norm(lips[6] - lips[0]))  # corner to corner
    inner = np.zeros((size, size), np.float32)
    if not np.isfinite(lips).all() or width < 2:
        return inner, inner
    hull = cv2.convexHull(np.round(lips * 4).astype(np.int32))  # quarter-pixel precision
    cv2.fillConvexPoly(inner, hull, 1.0, lineType=cv2.LINE_AA, shift=2)
    pixels = max(1, int(round(grow * width)))
    grown = cv2.dilate(inner, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1)))
    return inner, cv2.GaussianBlur(grown, (0, 0), max(0.5, FEATHER * width))


def mouth_mask(points: np.ndarray, size: int) -> np.ndarray:
    """A soft mask (size x size float32 0..1) of the mouth region of a face whose 468 mesh landmarks
    are ``points`` (crop pixels); all zero when the lips are not in the crop."""
    return _regions(points, size)[1]


def restore(swapped: np.ndarray, destination: np.ndarray, points: np.ndarray, grow: float = GROW) -> np.ndarray:
    """The swapped face (float32 BGR 0..1, crop) with the destination crop's mouth region (same size,
    uint8 or float 0..1) blended over it, colour-matched to the swap. ``points``: the destination's
    468 mesh landmarks in crop pixels. Unchanged when the mouth is not found."""
    size = swapped.shape[0]
    if points is None or len(points) != 468:
        return swapped
    lips, alpha = _regions(points, size, grow)
    if alpha.max() <= 0:
        return swapped
    dst = destination.astype(np.float32) / 255.0 if destination.dtype == np.uint8 else destination.astype(np.float32)
    # Colours are matched on the skin round the lips, which both faces have: inside the lips one
    # mouth may be open (teeth, dark) where the other is closed.
    skin = (alpha > 0.05) & (lips < 0.5)
    matched = dst
    if skin.sum() >= 16:
        # The mean only: matching the spread too (Reinhard's rct) stretched the lips' colour on a pale
        # ring of skin (lips of a saturated red on the sample pair).
        dst_lab, swap_lab = colour.bgr_to_lab(dst), colour.bgr_to_lab(swapped.astype(np.float32))
        shift = swap_lab[skin].mean(axis=0) - dst_lab[skin].mean(axis=0)
        matched = np.clip(colour.lab_to_bgr((dst_lab + shift).astype(np.float32)), 0.0, 1.0)
    alpha = alpha[..., None]
    return (swapped * (1.0 - alpha) + matched * alpha).astype(np.float32)


def seam_visibility(blended: np.ndarray, swapped: np.ndarray, points: np.ndarray) -> float | None:
    """How much edge the blend adds where its mask fades (0.25-0.75): the gradient energy of
    ``blended`` over that of ``swapped`` on that band (1: no seam to see). Both crops as ``restore``
    takes them; None when the mouth is not found."""
    alpha = mouth_mask(points, swapped.shape[0])
    band = (alpha > 0.25) & (alpha < 0.75)
    if band.sum() < 8:
        return None

    def energy(image: np.ndarray) -> float:
        grey = cv2.cvtColor(np.clip(image, 0, 1).astype(np.float32), cv2.COLOR_BGR2GRAY)
        gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
        return float(np.sqrt(gx ** 2 + gy ** 2)[band].mean())

    return energy(blended) / max(energy(swapped), 1e-6)
