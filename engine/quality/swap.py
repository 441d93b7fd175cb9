"""How well a merged video follows its destination: pose and expression, flicker, sharpness.

``SwapMeter`` takes the held-out frames one at a time, in order, as pairs (the destination frame, the
same frame merged) with the destination's face record, and keeps only running sums and the previous
pair, so it measures a long stretch in constant memory:

- pose and expression fidelity: the mediapipe mesh is run on both frames in the same region (from
  the record's landmarks) and the two landmark sets compared, normalised by the face size. Comparing
  against landmarks found the same way on the destination (rather than the stored, smoothed ones)
  makes an unswapped frame score exactly 0;
- temporal stability: the frame-to-frame change inside the face region (the hull of both frames'
  landmarks) of the merged frames, over the destination's change on the same pairs: 1.0 is as steady
  as the original, above 1 the swap flickers; ``extra_flicker`` is that ratio minus 1;
- sharpness: high-frequency energy of the merged face over the destination face's, both cut out as
  aligned 256-pixel crops inside the face mask shrunk away from the blend edge: below 1 is blurrier;
- identity (with a ``likeness`` meter, ``engine.quality.likeness``): the merged face's identity
  distance to the source and destination people, embedded at the landmarks the mesh found on it.

An unswapped clip (merged == destination) gives fidelity error 0, flicker ratio 1 and sharpness 1.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from engine.faces.detect import roi_from_landmarks
from engine.faces.records import face_mask
from engine.quality import metrics

#: Side of the aligned crops the sharpness is measured on, and how far the mask is shrunk (pixels).
SHARP_SIZE, SHARP_ERODE = 256, 12


class SwapMeter:
    def __init__(self, finder: Any, likeness: Any = None) -> None:
        """``finder``: an ``engine.faces.detect.FaceFinder`` (shared: loading it costs a second);
        ``likeness``: an ``engine.quality.likeness.LikenessMeter`` (None: identity not measured)."""
        self.finder = finder
        self.likeness = likeness
        self.errors: list[dict[str, float]] = []
        self.lost = 0
        self.faces = 0
        self.swap_change = self.dst_change = 0.0
        self.pairs = 0
        self.sharp_swap = self.sharp_dst = 0.0
        self._previous: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None
        #: Per-frame values (frame index -> value), for telling a real difference from noise.
        self.samples: dict[str, dict[int, float]] = {k: {} for k in
                                                     ("pose_error", "eyes_error", "mouth_error", "extra_flicker", "sharpness")}

    def add(self, index: int, dst: np.ndarray, merged: np.ndarray, record: Any | None) -> None:
        """One frame: ``record`` is the destination's face record there (None: no face, skipped)."""
        if record is None:
            self._previous = None
            return
        self.faces += 1
        landmarks = np.asarray(record.landmarks, np.float64)
        roi = roi_from_landmarks(landmarks)
        found_dst = self.finder.landmarks(dst, roi)
        found_swap = self.finder.landmarks(merged, roi)
        if found_dst is None or found_swap is None:
            self.lost += 1  # the mesh found no face in the swap: counted, and left out of the mean
        else:
            error = metrics.landmark_error(found_swap[0], found_dst[0])
            self.errors.append(error)
            for key, part in (("pose_error", "all"), ("eyes_error", "eyes"), ("mouth_error", "mouth")):
                self.samples[key][index] = error[part]
        if self.likeness is not None:
            self.likeness.add(index, merged, found_swap[0] if found_swap is not None else landmarks)

        region = metrics.hull_mask(landmarks, dst.shape[:2])
        if self._previous is not None and self._previous[0] == index - 1:
            _, prev_dst, prev_merged, prev_region = self._previous
            both = np.maximum(region, prev_region)
            dst_change = metrics.frame_change(prev_dst, dst, both)
            swap_change = metrics.frame_change(prev_merged, merged, both)
            self.dst_change += dst_change
            self.swap_change += swap_change
            self.pairs += 1
            self.samples["extra_flicker"][index] = metrics.ratio(swap_change, dst_change) - 1.0
        self._previous = (index, dst, merged, region)

        matrix = np.asarray(record.transform, np.float64) * (SHARP_SIZE / float(record.size))
        crop_dst = cv2.warpAffine(dst, matrix, (SHARP_SIZE, SHARP_SIZE), flags=cv2.INTER_LINEAR)
        crop_swap = cv2.warpAffine(merged, matrix, (SHARP_SIZE, SHARP_SIZE), flags=cv2.INTER_LINEAR)
        inner = _face_mask(record, landmarks, matrix)
        sharp_dst = metrics.high_frequency_energy(crop_dst, inner)
        sharp_swap = metrics.high_frequency_energy(crop_swap, inner)
        self.sharp_dst += sharp_dst
        self.sharp_swap += sharp_swap
        self.samples["sharpness"][index] = metrics.ratio(sharp_swap, sharp_dst)

    def result(self) -> dict[str, Any]:
        def mean(key: str) -> float | None:
            return round(float(np.mean([e[key] for e in self.errors])), 5) if self.errors else None

        flicker = metrics.ratio(self.swap_change, self.dst_change) if self.pairs else float("nan")
        sharpness = metrics.ratio(self.sharp_swap, self.sharp_dst) if self.faces else float("nan")
        if self.likeness is not None:
            self.samples.update(self.likeness.samples)
        identity = self.likeness.result() if self.likeness is not None else \
            {"id_src": None, "id_dst": None, "id_closer_src": None, "id_faces": 0}
        return {**identity,
            "pose_error": mean("all"), "eyes_error": mean("eyes"), "mouth_error": mean("mouth"),
            "faces_lost": self.lost, "faces": self.faces,
            "flicker_ratio": _num(flicker), "extra_flicker": _num(flicker - 1.0), "frame_pairs": self.pairs,
            "sharpness": _num(sharpness),
        }


def _face_mask(record: Any, landmarks: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The face inside an aligned ``SHARP_SIZE`` crop, shrunk away from where the swap is blended in."""
    if getattr(record, "mask", None):
        mask = face_mask(record, SHARP_SIZE)
    else:
        points = landmarks[:, :2] @ matrix[:, :2].T + matrix[:, 2]
        mask = metrics.hull_mask(points, (SHARP_SIZE, SHARP_SIZE))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * SHARP_ERODE + 1, 2 * SHARP_ERODE + 1))
    return cv2.erode(mask, kernel)


def _num(value: float) -> float | None:
    """A JSON-safe number: NaN (nothing measured) becomes None."""
    return None if value is None or not np.isfinite(value) else round(float(value), 5)
