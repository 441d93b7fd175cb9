"""Which faces to replace: the destination's alignment records of the target track, per frame.

The extraction step stores one record per detected face (``engine.faces.records``: frame index,
track, 2x3 transform to the aligned crop, crop size, face type, landmarks in frame pixels, mask
outline in crop pixels) and names the target track in the file's header. Merging replaces only
that track's faces; frames without one pass through untouched. When the model was trained on
another face type than the records were cut with, the transform is recomputed from the landmarks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.errors import UserError
from engine.faces.align import transform_for
from engine.faces.records import read_alignments, target_track_ids
from engine.merge.blend import FaceGeometry
from engine.segment.store import mask_for


def target_faces(ws: Any, face_type: str | None = None) -> dict[int, list[FaceGeometry]]:
    """Frame index -> faces of the target track in that frame (in the model's face type)."""
    path = ws.alignments_path("dst")
    if not path.exists():
        raise UserError("The destination's faces have not been extracted yet.",
                        "Run: swapwizard extract WS (or swapwizard run WS for every step).")
    header, records = read_alignments(path)
    tracks = target_track_ids(header)
    faces: dict[int, list[FaceGeometry]] = {}
    side_dir = ws.side_dir("dst")
    for record in records:
        if tracks and record.track not in tracks:
            continue
        transform = np.asarray(record.transform, np.float64).reshape(2, 3)
        polygon = np.asarray(record.mask, np.float64) if len(record.mask) >= 3 else None
        if face_type and record.face_type and face_type != record.face_type:
            transform = np.asarray(transform_for(record.landmarks, face_type, record.size), np.float64)
            polygon = None  # the outline was drawn in the other face type's crop: use the landmark hull
        segment = mask_for(side_dir, record.file)  # the segmenter's (or the user's) mask, if any
        faces.setdefault(int(record.frame), []).append(
            FaceGeometry(transform, int(record.size), np.asarray(record.landmarks, np.float64), polygon,
                         str(segment) if segment else None, np.asarray(record.transform, np.float64).reshape(2, 3)))
    return faces
