"""Paste one predicted face back into its destination frame.

Everything heavy happens either in crop space (the model's resolution: colour transfer, sharpening,
mask work) or inside the face's bounding box in the frame (warp back and blend), never over the
whole frame, so a 1080p frame costs about what its face costs.

    face = FaceGeometry(transform, size, landmarks)
    crop = crop_face(frame, face, resolution)              # what the model predicts from
    paste_face(frame, face, predicted, mask_prd, mask_dst, crop, settings)  # frame changes in place
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.merge import colour, masks, mouth
from engine.merge.settings import MergeSettings


@dataclass
class FaceGeometry:
    """Where one face sits in its frame (from the destination's alignment record)."""

    #: 2 x 3 affine map from frame pixels to the aligned crop of ``size`` pixels.
    transform: np.ndarray
    size: int
    #: Landmarks in frame pixels (N x 2), for the hull mask.
    landmarks: np.ndarray
    #: Optional mask outline in aligned-crop coordinates (at ``size``); preferred over the landmark hull.
    polygon: np.ndarray | None = None
    #: The segmenter's mask of this face (a greyscale PNG, engine.segment.store) and the 2 x 3 map from
    #: frame pixels to that mask's pixels; None: no mask (mask modes with "segment" use the hull).
    segment: str | None = None
    segment_transform: np.ndarray | None = None

    def crop_matrix(self, resolution: int) -> np.ndarray:
        """Frame -> crop map at the model's resolution."""
        scale = resolution / float(self.size)
        return (np.asarray(self.transform, np.float64).reshape(2, 3) * scale).astype(np.float64)

    def mesh_points(self, resolution: int) -> np.ndarray | None:
        """The 468 mesh landmarks in crop coordinates at ``resolution`` (None for other landmark sets)."""
        points = np.asarray(self.landmarks, np.float64).reshape(-1, 2)[:, :2]
        if len(points) != 468:
            return None
        matrix = self.crop_matrix(resolution)
        return points @ matrix[:, :2].T + matrix[:, 2]

    def crop_points(self, resolution: int) -> np.ndarray:
        """The hull outline in crop coordinates at ``resolution``."""
        if self.polygon is not None and len(self.polygon) >= 3:
            return np.asarray(self.polygon, np.float64).reshape(-1, 2) * (resolution / float(self.size))
        matrix = self.crop_matrix(resolution)
        points = np.asarray(self.landmarks, np.float64).reshape(-1, 2)[:, :2]
        return points @ matrix[:, :2].T + matrix[:, 2]


def crop_face(frame: np.ndarray, face: FaceGeometry, resolution: int) -> np.ndarray:
    """The aligned crop (uint8 BGR, resolution x resolution) the model takes as input."""
    return cv2.warpAffine(frame, face.crop_matrix(resolution), (resolution, resolution),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _paste_matrix(face: FaceGeometry, resolution: int, face_scale: float) -> np.ndarray:
    """Crop -> frame map, with the face scaled about the crop centre."""
    inverse = cv2.invertAffineTransform(face.crop_matrix(resolution))
    if face_scale != 1.0:
        centre = resolution / 2.0
        scale = np.array([[face_scale, 0, centre * (1 - face_scale)],
                          [0, face_scale, centre * (1 - face_scale)], [0, 0, 1]])
        inverse = (np.vstack([inverse, [0, 0, 1]]) @ scale)[:2]
    return inverse


def _bounding_box(matrix: np.ndarray, rect: tuple[int, int, int, int], width: int,
                  height: int) -> tuple[int, int, int, int]:
    """The frame box (clipped) that the crop rectangle ``rect`` (x, y, w, h) lands in."""
    x, y, w, h = rect
    corners = np.array([[x, y], [x + w, y], [x, y + h], [x + w, y + h]], np.float64)
    mapped = corners @ matrix[:, :2].T + matrix[:, 2]
    x0, y0 = np.floor(mapped.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(mapped.max(axis=0)).astype(int) + 2
    return max(0, x0), max(0, y0), min(width, x1), min(height, y1)


def _histogram_match(face: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-channel quantile matching of the face to the target under the mask."""
    chosen = mask > 0.5
    if chosen.sum() < 16:
        return face
    out = np.empty_like(face)
    quantiles = np.linspace(0, 1, 128)
    for c in range(3):
        f_q = np.quantile(face[..., c][chosen], quantiles) + np.arange(128) * 1e-9
        t_q = np.quantile(target[..., c][chosen], quantiles)
        out[..., c] = np.interp(face[..., c], f_q, t_q)
    return out


def _sharpen(face: np.ndarray, amount: float, resolution: int) -> np.ndarray:
    blurred = cv2.GaussianBlur(face, (0, 0), max(0.8, resolution / 256.0))
    return np.clip(face + amount * (face - blurred), 0.0, 1.0)


def build_mask(face: FaceGeometry, resolution: int, settings: MergeSettings,
               mask_prd: np.ndarray | None, mask_dst: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(raw mask for colour statistics, refined soft mask for blending), both in crop space."""
    mode = settings.mask
    segment = masks.segment_mask(face, resolution) if "segment" in mode or mode == "auto" else None
    if mode == "auto":  # engine.segment.auto: the segmenter's mask where it made one (occluders found), else the hull
        mode = "hull*segment" if segment is not None else "hull"
    wants_hull = "hull" in mode or ("segment" in mode and segment is None)
    hull = masks.hull_mask(face.crop_points(resolution), resolution) if wants_hull else None
    raw = masks.combine(mode, hull, mask_prd, mask_dst, segment if segment is not None else hull)
    soft = masks.refine(raw, settings.erode, settings.blur, settings.edge_fade)
    return raw, soft


def paste_face(frame: np.ndarray, face: FaceGeometry, predicted: np.ndarray,
               mask_prd: np.ndarray | None, mask_dst: np.ndarray | None, crop: np.ndarray,
               settings: MergeSettings, mask_frame: np.ndarray | None = None) -> tuple[int, int, int, int]:
    """Blend ``predicted`` (float32 BGR 0..1 crop) into ``frame`` (uint8 BGR, changed in place).

    ``crop`` is the destination crop the prediction came from (uint8 or float). ``mask_frame``
    (uint8 H x W), when given, receives the mask used. Returns the frame box that changed.
    """
    resolution = predicted.shape[0]
    raw, soft = build_mask(face, resolution, settings, mask_prd, mask_dst)
    target = crop.astype(np.float32) / 255.0 if crop.dtype == np.uint8 else crop
    new_face = colour.transfer(settings.colour, predicted, target, raw)
    if settings.mouth in ("destination", "follow"):  # "auto" is decided by the merge job before it gets here
        new_face = mouth.apply(settings.mouth, new_face, target, face.mesh_points(resolution))
    if settings.blend == "histogram":
        new_face = _histogram_match(new_face, target, raw)
    if settings.sharpen > 0:
        new_face = _sharpen(new_face, settings.sharpen, resolution)

    height, width = frame.shape[:2]
    matrix = _paste_matrix(face, resolution, settings.face_scale)
    # Only the part of the crop where the mask is non-zero goes back: a whole-face crop is mostly
    # background the mask leaves out, so this box is a fraction of the crop's.
    inside = cv2.boundingRect((soft > 1.0 / 512).astype(np.uint8))
    if inside[2] == 0 or inside[3] == 0:
        return (0, 0, 0, 0)
    x0, y0, x1, y1 = _bounding_box(matrix, inside, width, height)
    if x1 <= x0 or y1 <= y0:
        return (0, 0, 0, 0)
    local = matrix.copy()
    local[:, 2] -= (x0, y0)
    size = (x1 - x0, y1 - y0)
    # Warping 8-bit pixels is about twice as fast as float; the crop is quantised once, at its size.
    face_crop = np.clip(new_face * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if settings.blend == "seamless":
        # Poisson blending in crop space: the same result as in the frame at the model's
        # resolution, and a 128-pixel solve costs milliseconds where a 700-pixel one costs 200.
        dst_u8 = crop if crop.dtype == np.uint8 else np.clip(crop * 255.0 + 0.5, 0, 255).astype(np.uint8)
        face_crop = _seamless(face_crop, dst_u8, soft)
    face_px = cv2.warpAffine(face_crop, local, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(soft, local, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    region = frame[y0:y1, x0:x1]
    frame[y0:y1, x0:x1] = cv2.blendLinear(face_px, region, alpha, 1.0 - alpha)
    if mask_frame is not None:
        box = mask_frame[y0:y1, x0:x1]
        np.maximum(box, np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8), out=box)
    return (x0, y0, x1, y1)


def _seamless(face: np.ndarray, region: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Poisson-blend the face into the region (gradients from the face, boundary from the region)."""
    binary = (alpha > 0.5).astype(np.uint8) * 255
    binary[0, :] = binary[-1, :] = 0  # seamlessClone fails when the mask touches the image border
    binary[:, 0] = binary[:, -1] = 0
    ys, xs = np.nonzero(binary)
    if len(xs) < 16:
        return face
    # OpenCV cuts the source to the mask's bounding box and centres that box on ``centre``
    # (top-left = centre - size // 2): choose the centre that puts it back where it was.
    x0, y0 = int(xs.min()), int(ys.min())
    w, h = int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0
    centre = (x0 + w // 2, y0 + h // 2)
    try:
        return cv2.seamlessClone(face, np.ascontiguousarray(region), binary, centre, cv2.NORMAL_CLONE)
    except cv2.error:
        return face
