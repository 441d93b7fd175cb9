"""Is a landmark fit the right way up? The mesh against the detector's own keypoints.

The face mesh always answers with a face-shaped set of points, also when its region of interest was
turned the wrong way: on a still it can then lay the mesh upside down or a quarter turn off (its
"under the nose" point above the eye corners), with a fair presence score and a fit to the template
as good as the right one's (a rotated face shape is still a face shape). So the shape alone cannot
tell; the detector can: BlazeFace's six keypoints (the eyes, nose tip, mouth centre and ears) come
from another model, which sees the face upright or says nothing. A fit is **upright** when

* its "up" (mouth centre to the eyes' midpoint) points the way the detector's does, within
  ``MAX_TURN`` degrees (the detector's keypoints are loose on a turned face, off by up to about 60
  degrees on a profile), and
* its eye line runs the detector's way within ``MAX_TURN`` (the person's right eye on the side of
  the detector's right eye: a mirrored fit has it swapped), and
* it is not mirrored in itself: going from the person's right eye to the left and then down to the
  mouth turns the way a real face does (``handedness`` > 0), whatever the roll.

``fit_problem(landmarks, keypoints)`` returns None for an upright fit, else what is wrong in words
("upside down", "a quarter turn off", "mirrored"); ``engine.faces.track`` retries such a fit and
drops a face it cannot fit upright, and ``engine.faces.alignment_check`` applies the same test to the
aligned crops a side already has.
"""

from __future__ import annotations

import math

import numpy as np

#: Largest angle (degrees) between the mesh's up or eye line and the detector's that still agrees.
MAX_TURN = 75.0
#: Mesh points: the eye corners (person's right eye: 33 outer, 133 inner; left: 362 inner, 263
#: outer) and the inner lips (13 upper, 14 lower).
RIGHT_EYE, LEFT_EYE, LIPS = (33, 133), (362, 263), (13, 14)


def mesh_axes(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(up, eye line) of a (468, 2+) mesh in image pixels: mouth -> eyes, right eye -> left eye."""
    points = np.asarray(landmarks, np.float64)[:, :2]
    right, left = points[list(RIGHT_EYE)].mean(0), points[list(LEFT_EYE)].mean(0)
    return (right + left) / 2 - points[list(LIPS)].mean(0), left - right


def detector_axes(keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(up, eye line) from BlazeFace's keypoints (0 right eye, 1 left eye, 2 nose tip, 3 mouth)."""
    points = np.asarray(keypoints, np.float64)[:, :2]
    return (points[0] + points[1]) / 2 - points[3], points[1] - points[0]


def angle_between(a: np.ndarray, b: np.ndarray) -> float:
    """Unsigned angle in degrees (0-180) between two 2-d vectors."""
    cross = a[0] * b[1] - a[1] * b[0]
    return abs(math.degrees(math.atan2(cross, float(a @ b))))


def handedness(landmarks: np.ndarray) -> float:
    """Positive for a face as a camera sees it (right eye, left eye, then the mouth turn clockwise on
    screen, y down), negative for a mirrored fit; in units of the face's size, so about 0.5-1."""
    up, eyes = mesh_axes(landmarks)
    down = -up
    return float((eyes[0] * down[1] - eyes[1] * down[0]) / (np.linalg.norm(eyes) * np.linalg.norm(down) + 1e-9))


def turn(landmarks: np.ndarray, keypoints: np.ndarray) -> float:
    """Degrees between the mesh's up and the detector's (0: they agree; 180: upside down)."""
    return angle_between(mesh_axes(landmarks)[0], detector_axes(keypoints)[0])


def fit_problem(landmarks: np.ndarray, keypoints: np.ndarray | None = None) -> str | None:
    """None when the fit is upright (see the module docstring); else what is wrong, in words.
    Without ``keypoints`` only a mirrored fit can be told."""
    if handedness(landmarks) <= 0:
        return "mirrored"
    if keypoints is None:
        return None
    up, eyes = mesh_axes(landmarks)
    det_up, det_eyes = detector_axes(keypoints)
    off = angle_between(up, det_up)
    if off > 135:
        return "upside down"
    if off > MAX_TURN:
        return "a quarter turn off"
    if angle_between(eyes, det_eyes) > 180 - MAX_TURN:
        return "mirrored"
    return None
