"""Hands in front of faces, found with the hand models mediapipe 0.10.21 ships (nothing downloaded).

``HandWatcher.step(frame, faces)`` returns, per face of the frame, the outlines (frame pixels) of the
hands near it. mediapipe's Hands solution (palm detector + 21 hand landmarks, ``model_complexity=0``,
the lite models) runs on a region around the faces, shrunk to at most ``REGION_SIDE`` pixels, so its
cost does not grow with the frame. Cheap when no hand is near: it runs every ``every`` frames until
it sees a hand near a face, then every frame (mediapipe then tracks the hand from its landmarks
without the palm detector) until ``every`` frames pass without one.

A hand's outline is the convex hull of its 21 landmarks, each widened by a disc of a fifth of the
palm's length so that the fingers (whose landmarks are joint centres) are covered. The extraction
writes it into the face record as an occluder polygon in crop pixels (``FaceRecord.occluders``);
the segmenter takes it out of the face's automatic label (``engine.segment``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

#: The region around the faces is shrunk to this side (pixels) at most before the hand models see it.
REGION_SIDE = 384
#: How far (in face sizes) around a face's box a hand counts as near it.
NEAR = 0.25
#: Disc radius around each landmark, as a fraction of the palm length (wrist to middle finger base).
WIDEN = 0.2


def hand_outline(points: np.ndarray) -> np.ndarray:
    """The widened convex hull (K x 2) of 21 hand landmarks (21 x 2, pixels)."""
    import cv2

    points = np.asarray(points, np.float64)[:, :2]
    palm = float(np.linalg.norm(points[9] - points[0])) or float(np.ptp(points, axis=0).max()) / 3
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    disc = WIDEN * palm * np.stack([np.cos(angles), np.sin(angles)], 1)
    cloud = (points[:, None, :] + disc[None]).reshape(-1, 2)
    return cv2.convexHull(cloud.astype(np.float32)).reshape(-1, 2).astype(np.float64)


def _near(outline: np.ndarray, box: np.ndarray) -> bool:
    size = max(box[2] - box[0], box[3] - box[1])
    x0, y0, x1, y1 = box[0] - NEAR * size, box[1] - NEAR * size, box[2] + NEAR * size, box[3] + NEAR * size
    lo, hi = outline.min(0), outline.max(0)
    return bool(lo[0] < x1 and hi[0] > x0 and lo[1] < y1 and hi[1] > y0)


class HandWatcher:
    def __init__(self, every: int = 5, images: bool = False) -> None:
        """``images``: the frames are unrelated pictures (an image folder): each is looked at on its own."""
        import mediapipe as mp

        self.every = 1 if images else max(1, int(every))
        self.hands = mp.solutions.hands.Hands(static_image_mode=images, max_num_hands=2, model_complexity=0,
                                              min_detection_confidence=0.5, min_tracking_confidence=0.5)
        self.since_check = self.every  # check the first frame with a face
        self.since_seen = self.every
        self.checked = 0
        self.frames = 0
        self.frames_with_hands = 0
        self.seconds = 0.0

    def close(self) -> None:
        self.hands.close()

    def step(self, frame: np.ndarray, boxes: list[np.ndarray]) -> list[list[np.ndarray]]:
        """Outlines (frame pixels) of the hands near each face box, one list per box."""
        self.frames += 1
        near: list[list[np.ndarray]] = [[] for _ in boxes]
        if not boxes:
            return near
        self.since_check += 1
        if self.since_seen >= self.every and self.since_check < self.every:
            return near
        self.since_check = 0
        began = time.perf_counter()
        outlines = self._find(frame, boxes)
        self.seconds += time.perf_counter() - began
        self.checked += 1
        found = False
        for i, box in enumerate(boxes):
            near[i] = [o for o in outlines if _near(o, np.asarray(box, np.float64))]
            found = found or bool(near[i])
        self.since_seen = 0 if found else self.since_seen + 1
        self.frames_with_hands += int(found)
        return near

    def _find(self, frame: np.ndarray, boxes: list[np.ndarray]) -> list[np.ndarray]:
        import cv2

        height, width = frame.shape[:2]
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        size = float(np.max(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])))
        x0, y0 = max(0, int(b[:, 0].min() - size)), max(0, int(b[:, 1].min() - size))
        x1, y1 = min(width, int(b[:, 2].max() + size)), min(height, int(b[:, 3].max() + size))
        if x1 - x0 < 16 or y1 - y0 < 16:
            return []
        region = frame[y0:y1, x0:x1]
        scale = min(1.0, REGION_SIDE / max(region.shape[:2]))
        if scale < 1.0:
            region = cv2.resize(region, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        result = self.hands.process(cv2.cvtColor(region, cv2.COLOR_BGR2RGB))
        outlines = []
        rh, rw = region.shape[:2]
        for hand in result.multi_hand_landmarks or []:
            points = np.array([[p.x * rw, p.y * rh] for p in hand.landmark], np.float64) / scale + (x0, y0)
            outlines.append(hand_outline(points))
        return outlines

    def stats(self) -> dict[str, Any]:
        return {"frames": self.frames, "checked": self.checked, "frames_with_hands": self.frames_with_hands,
                "ms_per_check": round(1000 * self.seconds / self.checked, 2) if self.checked else 0.0,
                "ms_per_frame": round(1000 * self.seconds / self.frames, 2) if self.frames else 0.0,
                "every": self.every}
