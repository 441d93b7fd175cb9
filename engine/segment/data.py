"""A workspace's faces for the segmenter: crops at its resolution, labels, eyes, recorded hands.

Per face (the target person's crops still on disk, ``engine.faces.records.present_faces``):

- ``label``: the mask the user painted (``masks_user/``) when there is one, else the automatic label:
  the record's face outline (``face_mask``) minus the occluders recorded at extraction;
- ``painted``: whether the label was painted (those faces are drawn more often in training);
- faces the user rejected in the mask review (``store.rejected``) and did not paint are left out;
- ``eyes``: the two eye centres (for glasses), from the landmarks;
- ``trust``: where the automatic label is believed (255) or left unsupervised (0). An occluder
  nobody recorded (a microphone, a cup) sits inside the landmark outline, so the automatic label
  calls it face; pixels inside the outline whose colour is far from this face's own skin (robust
  statistics in Lab, eyes, brows and lips left out) are not taught as face. Painted labels are
  trusted everywhere. (The trainer also stops teaching "face" where the network is already sure it
  is not, once it has learnt faces: ``engine.segment.trainer``.)

``held_out(n)`` keeps every tenth face out of training: the bench and the trainer measure IoU on them.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.errors import UserError
from engine.faces.landmarks import landmarks68
from engine.faces.records import FaceRecord, face_mask, present_faces
from engine.segment import store
from engine.segment.synth import Source

#: Mesh indices of each eye's corners (the person's right eye, then the left).
EYE_CORNERS = ((33, 133), (362, 263))
HELD_EVERY = 10


@dataclass
class Faces:
    crops: np.ndarray           # N x R x R x 3 uint8 BGR
    labels: np.ndarray          # N x R x R uint8, 255 = visible face
    painted: np.ndarray         # N bool
    eyes: np.ndarray            # N x 2 x 2 crop pixels
    trust: np.ndarray           # N x R x R uint8, 255 = supervised
    hands: list[tuple[int, np.ndarray]] = field(default_factory=list)
    files: list[tuple[str, str]] = field(default_factory=list)  # (side, crop file)

    def __len__(self) -> int:
        return len(self.crops)

    def source(self, indices: np.ndarray | None = None) -> Source:
        return Source(self.crops if indices is None else self.crops[indices], self.eyes, self.hands)


def held_out(n: int) -> np.ndarray:
    """Indices of the faces kept out of training (every tenth; none with fewer than 20 faces)."""
    return np.arange(HELD_EVERY - 1, n, HELD_EVERY) if n >= 20 else np.zeros(0, np.int64)


def occluder_polygons(record: FaceRecord, size: int) -> list[np.ndarray]:
    """The record's occluder polygons (hands) in crop pixels of a ``size`` crop."""
    scale = size / float(record.size)
    return [np.asarray(poly, np.float64).reshape(-1, 2) * scale
            for poly in (getattr(record, "occluders", None) or []) if len(poly) >= 3]


def auto_label(record: FaceRecord, size: int) -> np.ndarray:
    """The face outline at ``size`` minus the recorded occluders (uint8, 255 = visible face)."""
    label = face_mask(record, size)
    for poly in occluder_polygons(record, size):
        cv2.fillPoly(label, [np.round(poly * 16).astype(np.int32)], 0, cv2.LINE_AA, shift=4)
    return label


#: 68-point groups whose colour is not skin: brows, eyes, outer lips.
FEATURES = (range(17, 22), range(22, 27), range(36, 42), range(42, 48), range(48, 60))
#: How far (robust z-score) from the face's own skin a pixel's chroma or lightness must be to be doubted.
ODD_Z = 4.0


def trust_map(crop: np.ndarray, label: np.ndarray, record: FaceRecord) -> np.ndarray:
    """255 where the automatic label is believed; 0 on face pixels whose colour is unlike this face's skin."""
    res = label.shape[0]
    trust = np.full(label.shape, 255, np.uint8)
    if len(record.landmarks) < 468:
        return trust
    p68 = landmarks68(np.asarray(record.landmarks)) @ (record.transform[:, :2].T * res / record.size) \
        + record.transform[:, 2] * res / record.size
    features = np.zeros(label.shape, np.uint8)
    for group in FEATURES:
        cv2.fillConvexPoly(features, cv2.convexHull(p68[list(group)].astype(np.float32)).astype(np.int32), 255)
    grow = max(1, res // 64)
    features = cv2.dilate(features, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    face = label > 127
    skin = cv2.erode(label, np.ones((3, 3), np.uint8)) > 127
    skin &= features == 0
    if skin.sum() < 32:
        return trust
    lab = cv2.cvtColor(crop, cv2.COLOR_BGR2LAB).astype(np.float32)
    pixels = lab[skin]
    median = np.median(pixels, 0)
    spread = np.maximum(1.4826 * np.median(np.abs(pixels - median), 0), (6.0, 2.0, 2.0))
    z = np.abs(lab - median) / spread
    odd = (np.hypot(z[..., 1], z[..., 2]) > ODD_Z) | (z[..., 0] > ODD_Z)
    # Eyes, brows and lips are not skin either: left unsupervised too (the face around them and the
    # pasted occluders teach them), so an occluder over the mouth is never taught as face.
    trust[odd & face] = 0
    return trust


def eye_centres(record: FaceRecord, size: int) -> np.ndarray:
    points = record.aligned_landmarks(size)
    if len(points) < 468:
        return np.full((2, 2), np.nan)
    return np.array([(points[a] + points[b]) / 2 for a, b in EYE_CORNERS], np.float64)


def read_mask(path: Path, size: int | None = None) -> np.ndarray | None:
    """A mask PNG as uint8 (size x size when given), or None when it cannot be read."""
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        return None
    if size is not None and mask.shape[:2] != (size, size):
        interp = cv2.INTER_AREA if mask.shape[0] > size else cv2.INTER_LINEAR
        mask = cv2.resize(mask, (size, size), interpolation=interp)
    return mask


def _load(side_dir: Path, record: FaceRecord, res: int) -> tuple[np.ndarray, np.ndarray, bool, np.ndarray] | None:
    crop = cv2.imread(str(side_dir / record.file), cv2.IMREAD_COLOR)
    if crop is None:
        return None
    interp = cv2.INTER_AREA if crop.shape[0] > res else cv2.INTER_LINEAR
    crop = cv2.resize(crop, (res, res), interpolation=interp)
    painted = store.user_path(side_dir, record.file)
    label = read_mask(painted, res) if painted.is_file() else None
    if label is not None:
        return crop, label, True, np.full(label.shape, 255, np.uint8)
    label = auto_label(record, res)
    return crop, label, False, trust_map(crop, label, record)


def side_records(ws: Any, side: str) -> list[FaceRecord]:
    if not ws.alignments_path(side).is_file():
        raise UserError(f"The {side} faces have not been extracted yet, so there is nothing to segment.",
                        f"Run: swapwizard extract {ws.root} --side {side}")
    records = present_faces(ws, side)
    if not records:
        raise UserError(f"The {side} side has no face crops left in data_{side}/aligned/.",
                        f"Extract it again: swapwizard extract {ws.root} --side {side} --force")
    return records


def load_faces(ws: Any, sides: list[str], res: int, limit: int = 0,
               progress: Any = None) -> Faces:
    """The faces of ``sides`` (at most ``limit`` per side, evenly spaced; 0: all)."""
    jobs: list[tuple[str, FaceRecord]] = []
    for side in sides:
        records = side_records(ws, side)
        # A face whose mask the user rejected in the review and has not painted: its automatic label is
        # not taught (export it with masks export --marked rejected and paint it).
        side_dir = ws.side_dir(side)
        rejected = store.rejected(side_dir)
        if rejected:
            records = [r for r in records if store.stem(r.file) not in rejected
                       or store.user_path(side_dir, r.file).is_file()]
        if limit and len(records) > limit:
            records = [records[i] for i in np.linspace(0, len(records) - 1, limit).round().astype(int)]
        jobs += [(side, r) for r in records]
    results: list[Any] = []
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for loaded in pool.map(lambda job: _load(ws.side_dir(job[0]), job[1], res), jobs):
            results.append(loaded)
            if progress is not None:
                progress(len(results), len(jobs))
    kept = [(job, r) for job, r in zip(jobs, results) if r is not None]
    if not jobs:
        raise UserError("Every face's mask was rejected in the mask review, so the segmenter has no label to learn.",
                        f"Paint some: swapwizard masks export {ws.root} --marked rejected, then masks import.")
    if not kept:
        raise UserError("None of the face crops could be read.", "Extract again: swapwizard extract WS --force")
    crops = np.stack([r[0] for _, r in kept])
    labels = np.stack([r[1] for _, r in kept])
    painted = np.array([r[2] for _, r in kept])
    eyes = np.stack([eye_centres(job[1], res) for job, _ in kept])
    hands = [(i, poly) for i, (job, _) in enumerate(kept) for poly in occluder_polygons(job[1], res)]
    trust = np.stack([r[3] for _, r in kept])
    return Faces(crops, labels, painted, eyes, trust, hands, [(job[0], job[1].file) for job, _ in kept])
