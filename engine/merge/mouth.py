"""The mouth of the merged face, for models whose own mouth does not follow (issue 25).

    [merge] mouth = swap          # the model's mouth (as trained)
    [merge] mouth = follow        # the swap's own lips moved to the destination's mouth shape (``follow``)
    [merge] mouth = destination   # the destination's mouth region blended over the swap (``restore``)
    [merge] mouth = auto          # follow where the model's latest quality says its mouth does not
                                  # follow (the merge job decides and says so; the default)

A small autoencoder trained for minutes on a CPU draws identity well before it draws the destination's
lip movements: on unseen pairs its mouth stays closed, or opens with the source's habits, while the
destination talks. Deep-Live-Cam's "mouth mask" and FaceFusion's expression restorer answer by keeping
the destination's mouth; that brings the destination person's lips back, and on a pair whose identity
rests on the mouth (docs/expression.md: a man's face on a woman's) most of the identity with them.

``follow`` keeps the swap's lips and moves them: the mesh reads the swapped crop's lips (``swap_mesh``),
a piecewise-affine warp over the triangles of the lips and a fixed ring round them (nose base, cheeks,
jaw) puts them where the destination's are (``lips_warp``; nothing outside the ring moves, so there is
no seam), and the destination's mouth opening (teeth, tongue, the dark inside) fills the gap between
them. A swap whose lips the mesh cannot read, or reads far from the destination's, gets ``restore``.

``restore`` works in crop space, inside ``blend.paste_face``:

- the region is the destination's outer-lip outline (mesh landmarks of the destination face), grown by
  ``GROW`` of the mouth's width so that the seam lies on skin rather than on the lip line, and feathered
  by a Gaussian of ``FEATHER`` of the mouth's width (no hard edge anywhere);
- the destination's pixels in that region are colour-matched to the swap's on the skin round the lips
  (the mean per Lab channel; the lips themselves are left out of the statistics, since one mouth may be
  open where the other is closed; matching the spread too, as ``engine.merge.colour.rct`` does, made the
  lips garish), so the region takes the swap's tone and lighting;
- then blended over the swapped face; the face's mask and colour transfer run as before.

Either way the result is labelled as face-swapped like any other.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from engine.faces.landmarks import LIP_OPENING, LIP_OUTLINE, MESH_TO_68
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
    matched = _shift_to(dst, swapped, (alpha > 0.05) & (lips < 0.5))
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


# ---------------------------------------------------------------------------------------------------
# ``follow``: the swap's own lips, moved to where the destination's are.

#: Points that stay where they are (the nose's base, the cheeks, the jaw below the ears round the chin):
#: the ring the warp fades to nothing on, so that nothing outside it moves.
ANCHORS = np.array([98, 97, 2, 326, 327, 205, 425, 206, 426, 50, 280, 132, 58, 172, 136, 149, 150, 176, 148,
                    152, 377, 400, 378, 379, 365, 397, 288, 361])
#: The swap's lips may lie at most this share of the mouth's width from the destination's (centre to
#: centre) for the warp to be trusted; further, the mesh misread the swap and the pasted mouth is used.
FOLLOW_MAX_SHIFT = 0.35


def lips_warp(swapped: np.ndarray, swap_points: np.ndarray, dst_points: np.ndarray) -> np.ndarray:
    """``swapped`` (crop, float32) warped so that its lips (``swap_points``, its 468 mesh landmarks in
    crop pixels) land on the destination's (``dst_points``), piecewise-affinely over the triangles of
    the lips and a fixed ring round them (the nose's base, cheeks and jaw): outside the ring nothing
    moves, and the warp fades to nothing at it."""
    from scipy.spatial import Delaunay

    size = swapped.shape[0]
    lips = np.concatenate([LIP_OUTLINE, LIP_OPENING])
    target = np.concatenate([dst_points[lips, :2], dst_points[ANCHORS, :2]]).astype(np.float64)
    source = np.concatenate([swap_points[lips, :2], dst_points[ANCHORS, :2]]).astype(np.float64)
    tri = Delaunay(target)
    x0, y0 = np.floor(target.min(0)).astype(int).clip(0, size - 1)
    x1, y1 = np.ceil(target.max(0)).astype(int).clip(0, size - 1)
    map_x, map_y = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))
    ys, xs = np.mgrid[y0:y1 + 1, x0:x1 + 1]
    pixels = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    simplex = tri.find_simplex(pixels)
    inside = simplex >= 0
    transform = tri.transform[simplex[inside]]
    bary2 = np.einsum("nij,nj->ni", transform[:, :2], pixels[inside] - transform[:, 2])
    bary = np.concatenate([bary2, 1 - bary2.sum(1, keepdims=True)], 1)
    mapped = np.einsum("ni,nij->nj", bary, source[tri.simplices[simplex[inside]]])
    py, px = pixels[inside, 1].astype(int), pixels[inside, 0].astype(int)
    map_x[py, px], map_y[py, px] = mapped[:, 0], mapped[:, 1]
    return cv2.remap(swapped.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _shift_to(destination: np.ndarray, swapped: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``destination`` with its mean Lab colour on ``where`` moved to the swap's there (unchanged when
    ``where`` holds under 16 pixels). The mean only: matching the spread too (Reinhard's rct) stretched
    the lips' colour on a pale ring of skin (lips of a saturated red on the sample pair)."""
    if where.sum() < 16:
        return destination
    dst_lab, swap_lab = colour.bgr_to_lab(destination), colour.bgr_to_lab(swapped.astype(np.float32))
    shift = swap_lab[where].mean(axis=0) - dst_lab[where].mean(axis=0)
    return np.clip(colour.lab_to_bgr((dst_lab + shift).astype(np.float32)), 0.0, 1.0)


def follow(swapped: np.ndarray, destination: np.ndarray, dst_points: np.ndarray,
           swap_points: np.ndarray | None) -> np.ndarray | None:
    """The swapped face (float32 BGR 0..1, crop) with its own lips moved to the destination's mouth
    shape (``lips_warp``) and the destination's mouth opening (teeth, tongue, the dark inside: the
    inner-lip polygon, feathered) blended into the gap, colour-matched to the swap. The skin and the
    lips stay the swap's, so identity does too. None when the swap's mesh is missing or too far off to
    trust (the caller then pastes the destination's mouth region, ``restore``)."""
    size = swapped.shape[0]
    if swap_points is None or dst_points is None or len(swap_points) != 468 or len(dst_points) != 468:
        return None
    dst_points, swap_points = np.asarray(dst_points, np.float64), np.asarray(swap_points, np.float64)
    corners = dst_points[[61, 291], :2]
    width = float(np.linalg.norm(corners[1] - corners[0]))
    if not (np.isfinite(dst_points).all() and np.isfinite(swap_points).all()) or width < 2:
        return None
    shift = np.linalg.norm(swap_points[LIP_OUTLINE, :2].mean(0) - dst_points[LIP_OUTLINE, :2].mean(0))
    if shift > FOLLOW_MAX_SHIFT * width:
        return None
    warped = lips_warp(swapped, swap_points, dst_points)
    dst = destination.astype(np.float32) / 255.0 if destination.dtype == np.uint8 else destination.astype(np.float32)
    opening = np.zeros((size, size), np.float32)
    cv2.fillPoly(opening, [np.round(dst_points[LIP_OPENING, :2] * 4).astype(np.int32)], 1.0, lineType=cv2.LINE_AA,
                 shift=2)
    if opening.sum() < 1:
        return warped
    alpha = cv2.GaussianBlur(opening, (0, 0), max(0.5, 0.03 * width))
    lips = np.zeros((size, size), np.float32)
    cv2.fillPoly(lips, [np.round(dst_points[LIP_OUTLINE, :2] * 4).astype(np.int32)], 1.0, lineType=cv2.LINE_AA,
                 shift=2)
    ring = (cv2.dilate(lips, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)), iterations=max(1, int(0.1 * width)))
            > 0.5) & (lips < 0.5)
    inside = _shift_to(dst, warped, ring)
    alpha = alpha[..., None]
    return (warped * (1.0 - alpha) + inside * alpha).astype(np.float32)


def swap_mesh(finder: object, swapped: np.ndarray, dst_points: np.ndarray) -> np.ndarray | None:
    """The swapped crop's 468 mesh landmarks (crop pixels), looked for where the destination's face is;
    None when the mesh finds no face. ``finder``: an ``engine.faces.detect.FaceFinder``."""
    from engine.faces.detect import crop_mesh

    found = crop_mesh(finder, swapped, dst_points)  # type: ignore[arg-type]
    return None if found is None else found[:, :2]


_local = threading.local()


def _finder() -> object:
    """This thread's face mesh (``engine.faces.detect.FaceFinder`` is one per thread), made on first use."""
    finder = getattr(_local, "finder", None)
    if finder is None:
        from engine.faces.detect import FaceFinder

        finder = _local.finder = FaceFinder(min_presence=0.0)
    return finder


def apply(mode: str, swapped: np.ndarray, destination: np.ndarray, points: np.ndarray,
          swap_points: np.ndarray | None = None) -> np.ndarray:
    """The merge's mouth: ``follow`` (the swap's lips moved to the destination's mouth, ``follow``;
    where the swap's mesh cannot be read or trusted, the destination's region, ``restore``),
    ``destination`` (``restore``), anything else the swap as it is. ``swap_points``: the swap's mesh
    when the caller has read it already (else this thread's mesh reads it)."""
    if mode == "follow" and points is not None and len(points) == 468:
        if swap_points is None:
            swap_points = swap_mesh(_finder(), swapped, points)
        moved = follow(swapped, destination, points, swap_points)
        return moved if moved is not None else restore(swapped, destination, points)
    if mode in ("follow", "destination"):
        return restore(swapped, destination, points)
    return swapped
