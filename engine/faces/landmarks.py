"""Named index sets of mediapipe's 468-point face mesh, and the classic 68-point mapping.

The 68-point scheme (iBUG 300-W: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67) is what
DeepFaceLab, faceswap and dlib use; ``landmarks68`` picks the mesh points that sit where those 68 do,
so code and users that think in that scheme keep working. "Right" and "left" are the person's own
(the person's right eye is on the image's left).
"""

from __future__ import annotations

import numpy as np

#: Mesh index for each of the 68 classic points.
MESH_TO_68 = np.array([
    # jaw, from the person's right ear round the chin to the left ear (0-16)
    127, 234, 93, 132, 58, 172, 136, 149, 152, 378, 365, 397, 288, 361, 323, 454, 356,
    # right brow (17-21), left brow (22-26)
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # nose bridge (27-30), nostrils (31-35)
    168, 197, 5, 4, 98, 97, 2, 326, 327,
    # right eye (36-41), left eye (42-47)
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    # outer lips (48-59), inner lips (60-67)
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,
    78, 81, 13, 311, 308, 402, 14, 178,
], dtype=np.int64)

#: Mirror partner of each 68-point index (used to make the alignment template symmetric).
MIRROR_68 = np.array(
    list(range(16, -1, -1))
    + list(range(26, 16, -1))
    + [27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60, 67, 66, 65],
    dtype=np.int64)

#: 68-point indices that alignment uses: brows, nose, eyes and the mouth corners. The jaw line
#: slides with the pose and the lips move with speech, so they would make the crop swim.
ALIGN_68 = np.array(list(range(17, 48)) + [48, 54], dtype=np.int64)

#: The face's outline as a closed loop, starting at the top of the forehead (mesh point 10).
FACE_OVAL = np.array([
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
], dtype=np.int64)

#: Points that barely move with expression (eye corners, nose bridge and tip, brow roots, temples):
#: the jitter measurement compares them between frames.
STABLE = np.array([33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 107, 336, 127, 356, 9, 8], dtype=np.int64)


def landmarks68(mesh: np.ndarray) -> np.ndarray:
    """The 68 classic points, shape (68, 2), from a (468, 2+) mesh landmark array."""
    return np.asarray(mesh)[MESH_TO_68, :2]


#: The lips' outer and inner lines, each in order round the mouth (mediapipe's FACEMESH_LIPS): the outer one
#: bounds the lips (training's eyes-and-mouth mask fills it), the inner one the mouth's opening (the merge's
#: ``follow`` warps both and fills the opening).
LIP_OUTLINE = np.array([61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185],
                       dtype=np.int64)
LIP_OPENING = np.array([78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191],
                       dtype=np.int64)

#: Mesh points of the expression descriptor: inner lips (upper, lower), eyelids (upper, lower of each
#: eye), the cheeks (face width), the nose tip, and the eye corners.
LIPS_INNER = (13, 14)
EYELIDS = ((159, 145), (386, 374))
CHEEKS = (234, 454)


def expression(mesh: np.ndarray) -> np.ndarray:
    """(mouth opening, eye opening, yaw, pitch) of a (468, 2+) mesh, each over the face width, so
    that faces of different people and sizes compare: what the expression-matched sampling of
    training (``engine.train.augment.MatchingSampler``) and the expression measure use."""
    points = np.asarray(mesh, np.float64)[:, :2]
    left, right = points[CHEEKS[0]], points[CHEEKS[1]]
    width = max(float(np.linalg.norm(right - left)), 1e-6)
    mouth = float(np.linalg.norm(points[LIPS_INNER[0]] - points[LIPS_INNER[1]])) / width
    eyes = float(np.mean([np.linalg.norm(points[a] - points[b]) for a, b in EYELIDS])) / width
    centre = (left + right) / 2
    eye_line = (points[33] + points[263]) / 2
    yaw = float(points[4, 0] - centre[0]) / width
    pitch = float(points[4, 1] - eye_line[1]) / width
    return np.array([mouth, eyes, yaw, pitch])
