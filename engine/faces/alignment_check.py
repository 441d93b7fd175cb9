"""Doubtful alignments in a face set: what a DeepFaceLab user hunts by hand in the aligned folder.

``doubtful_faces(side_dir, faces)`` looks at every face of a side two ways and returns, per face whose
alignment is in doubt, the reasons in words and a score (higher: surer it is wrong):

* **the crop against the detector.** The face detector (BlazeFace, the model that found the faces,
  not the mesh that placed the landmarks) runs on the aligned crop itself, at 256 pixels. In a good
  crop it finds one face, the right way up, whose eyes, nose tip and mouth sit where the record's
  landmarks put them. So a crop is doubtful when the detector sees no face in it; when the face it
  sees is upside down, a quarter turn off or mirrored against the landmarks
  (``engine.faces.orientation``); when its keypoints and the landmarks disagree in size or shape
  (the landmarks are on something else); or when the face it sees is off the crop's centre (the
  crop was cut from the wrong place).
* **the track's neighbours.** In a video a face moves little from one frame to the next: a face
  whose position, size or roll jumps away from both neighbours of its track (frames next to it)
  while those two agree with each other is a spike: the tracker hopped onto something else, or the
  mesh slipped, for one frame.

The thresholds below were set on the sample clips so that good faces are rarely flagged (a profile
or a face half out of the crop can be); ``tests/extract/test_alignment_check.py`` plants known bad
crops into a face set and prints how many are found and how many good faces are flagged
(docs/alignment.md has the figure). ``engine.faces.check`` reports them with a thumbnail sheet and
``sort --by alignment`` puts them first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.faces.orientation import angle_between, fit_problem

#: Side (pixels) the crops are looked at.
SIDE = 256
#: Mesh points at the detector's keypoints: right eye, left eye, nose tip, mouth centre.
KEYPOINT_MESH = ((33, 133, 159, 145), (362, 263, 386, 374), (1,), (13, 14))
#: Keypoints further from the landmarks than this (mean, over the eye distance, after the shift
#: between them is taken out) disagree with them.
MAX_SHAPE = 0.35
#: Scale between the detector's keypoints and the landmarks beyond which they disagree (ratio).
MAX_SCALE = 1.35
#: The detector's face further from where the landmarks put it than this share of the crop: off centre.
MAX_SHIFT = 0.08
#: A detection this sure is a face; under it, the crop is also looked at turned over and a quarter
#: turn either way, and a face there of at least ``TURNED_FACE`` and surer by ``TURN_MARGIN`` says
#: the crop is turned (good crops of the samples score 0.75-0.95; the "face" the detector sees in a
#: crop turned over 0.5-0.65).
SURE, TURNED_FACE, TURN_MARGIN = 0.8, 0.7, 0.15
#: A spike against the track's neighbours: position (over the face size), size (ratio), roll (degrees).
JUMP_SHIFT, JUMP_SCALE, JUMP_ROLL = 0.25, 1.25, 20.0
#: Frames apart that still count as neighbours.
NEIGHBOUR_GAP = 2
#: What the detector said of each crop, per side folder.
CACHE_FILE = "alignment_check.json"
#: Raised when what the check says of a crop changes: an older file's verdicts are then not used.
CACHE_VERSION = 3
#: Score of each reason (the sort key: surer problems first).
WEIGHTS = {"no face seen in the crop": 1.0, "upside down": 3.0, "a quarter turn off": 3.0, "mirrored": 3.0,
           "landmarks disagree with the detector": 2.0, "face not centred in the crop": 2.0,
           "jumps against its track's neighbours": 2.0}


def _mesh_keypoints(landmarks: np.ndarray) -> np.ndarray:
    points = np.asarray(landmarks, np.float64)[:, :2]
    return np.array([points[list(group)].mean(0) for group in KEYPOINT_MESH])


def _detect_framed(crop: np.ndarray, finder: Any) -> list[Any]:
    """The detector on the crop framed in a black border, keypoints in the crop's pixels. (The
    full-range detector is made for faces smaller than the picture: a face that fills it is often
    missed, 20 of 26 good crops of hamilton.mp4.)"""
    import cv2

    pad = crop.shape[0] // 2
    detections = finder.detect(cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0)))
    for det in detections:
        det.keypoints = det.keypoints - pad
    return detections


def _turned(crop: np.ndarray, finder: Any, score: float) -> str | None:
    """What a turned crop looks like ("upside down", "a quarter turn off") when the detector is much
    surer of a face in the crop turned over or a quarter turn than of the one it sees as it is
    (``score``; 0 for none). A crop turned over often shows it a weak upright "face" (the chin and
    mouth as eyes and brows) near where the landmarks say, so its own verdict is not enough."""
    import cv2

    for code, words in ((cv2.ROTATE_180, "upside down"), (cv2.ROTATE_90_CLOCKWISE, "a quarter turn off"),
                        (cv2.ROTATE_90_COUNTERCLOCKWISE, "a quarter turn off")):
        found = _detect_framed(cv2.rotate(crop, code), finder)
        if found and max(d.score for d in found) >= max(TURNED_FACE, score + TURN_MARGIN):
            return words
    return None


def crop_reasons(crop: np.ndarray, landmarks: np.ndarray, finder: Any) -> list[str]:
    """Why the crop's alignment is doubtful, from the detector run on it (``crop`` BGR at ``SIDE``,
    ``landmarks`` the record's in that crop's pixels); empty when it looks right."""
    problem = fit_problem(landmarks)
    if problem:
        return [problem]
    detections = _detect_framed(crop, finder)
    if not detections:
        return [_turned(crop, finder, 0.0) or "no face seen in the crop"]
    mesh = _mesh_keypoints(landmarks)
    centre = mesh.mean(0)
    det = min(detections, key=lambda d: float(np.linalg.norm(d.keypoints[:4].mean(0) - centre)))
    keypoints = np.asarray(det.keypoints[:4], np.float64)
    problem = fit_problem(landmarks, det.keypoints)
    if problem:
        return [problem]
    if det.score < SURE:
        turned = _turned(crop, finder, det.score)
        if turned:
            return [turned]
    reasons = []
    shift = keypoints.mean(0) - centre
    if float(np.linalg.norm(shift)) > MAX_SHIFT * crop.shape[0]:
        reasons.append("face not centred in the crop")
    a, b = mesh - centre, keypoints - keypoints.mean(0)
    eyes = float(np.linalg.norm(mesh[1] - mesh[0])) or 1.0
    scale = float(np.sqrt((b ** 2).sum() / max((a ** 2).sum(), 1e-9)))
    shape = float(np.linalg.norm(a - b, axis=1).mean()) / eyes
    if not 1 / MAX_SCALE < scale < MAX_SCALE or shape > MAX_SHAPE:
        reasons.append("landmarks disagree with the detector")
    return reasons


def _geometry(record: Any) -> tuple[np.ndarray, float, np.ndarray]:
    box = np.asarray(record.box, np.float64)
    points = np.asarray(record.landmarks, np.float64)
    return (box[:2] + box[2:]) / 2, float(max(box[2] - box[0], box[3] - box[1])) or 1.0, \
        points[263] - points[33]


def _differs(a: Any, b: Any) -> bool:
    (ca, sa, ea), (cb, sb, eb) = _geometry(a), _geometry(b)
    return bool(np.linalg.norm(ca - cb) > JUMP_SHIFT * min(sa, sb) or max(sa, sb) / min(sa, sb) > JUMP_SCALE
                or angle_between(ea, eb) > JUMP_ROLL)


def jumps(faces: list[Any]) -> set[int]:
    """Indices (into ``faces``) of faces that jump against both neighbours of their track."""
    by_track: dict[int, list[int]] = {}
    for i, record in enumerate(faces):
        by_track.setdefault(record.track, []).append(i)
    out = set()
    for rows in by_track.values():
        rows.sort(key=lambda i: faces[i].frame)
        for before, here, after in zip(rows, rows[1:], rows[2:]):
            a, b, c = faces[before], faces[here], faces[after]
            if b.frame - a.frame > NEIGHBOUR_GAP or c.frame - b.frame > NEIGHBOUR_GAP:
                continue
            if _differs(b, a) and _differs(b, c) and not _differs(a, c):
                out.add(here)
    return out


def _key(side_dir: Path, record: Any) -> str | None:
    try:
        stat = (side_dir / record.file).stat()
    except OSError:
        return None
    return f"{Path(record.file).name}:{stat.st_size}:{stat.st_mtime_ns}"


def doubtful_faces(side_dir: Path, faces: list[Any], images: bool = False,
                   progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """``[{"file", "frame", "track", "reasons", "score"}]`` for the faces whose alignment is in doubt,
    surest first. ``images``: the side is a folder of unrelated pictures (no neighbours to compare).
    What the detector said of each crop is kept in ``data_<side>/alignment_check.json`` (keyed by the
    crop's name, size and time), so a second check or sort pays only for new or changed crops."""
    import cv2

    from engine.atomic import atomic_write_json, read_json

    cache_path = side_dir / CACHE_FILE
    cached = read_json(cache_path, default=None)
    known = cached["crops"] if isinstance(cached, dict) and cached.get("version") == CACHE_VERSION \
        and isinstance(cached.get("crops"), dict) else {}
    spikes = set() if images else jumps(faces)
    found, seen = [], {}
    finder = None
    try:
        for i, record in enumerate(faces):
            key = _key(side_dir, record) if record.file else None
            if key is None:
                continue
            reasons = known.get(key)
            if not isinstance(reasons, list) or not all(r in WEIGHTS for r in reasons):
                # A 512 crop decodes straight at 256 (JPEG's scaled decoding: about half the time).
                flag = cv2.IMREAD_REDUCED_COLOR_2 if record.size >= 2 * SIDE else cv2.IMREAD_COLOR
                crop = cv2.imread(str(side_dir / record.file), flag)
                if crop is None:
                    continue
                if crop.shape[0] != SIDE:
                    crop = cv2.resize(crop, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
                if finder is None:
                    from engine.faces.detect import FaceFinder

                    finder = FaceFinder()
                reasons = crop_reasons(crop, record.aligned_landmarks(SIDE), finder)
            seen[key] = reasons
            reasons = reasons + (["jumps against its track's neighbours"] if i in spikes else [])
            if reasons:
                found.append({"file": record.file, "frame": record.frame, "track": record.track,
                              "reasons": reasons, "score": sum(WEIGHTS[r] for r in reasons)})
            if progress is not None and (i + 1) % 50 == 0:
                progress(i + 1, len(faces))
    finally:
        if finder is not None:
            finder.close()
    if seen != known:
        atomic_write_json(cache_path, {"version": CACHE_VERSION, "crops": seen})
    found.sort(key=lambda f: (-f["score"], f["frame"]))
    return found
