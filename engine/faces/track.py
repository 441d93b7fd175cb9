"""Faces linked across frames into tracks, with landmarks followed from frame to frame.

Per frame: every live track looks for its face where the previous frame's landmarks put it (the
mesh alone, about 3 ms); the detector (about 6 ms) runs only on every ``detect_every``-th frame of
the clip, when a track was lost, or when there is no face yet. A detection that lands on a tracked face is dropped;
one near where a track was lost a moment ago (``max_gap`` frames) revives that track; any other
starts a new one. When nothing is found, the detector retries on the frame turned by 90, 270 and
180 degrees (a phone clip with wrong rotation metadata, a person lying down).

A new face's landmarks are taken only the right way up (``engine.faces.orientation``: the mesh's
eyes, nose and mouth where the detector's keypoints put them); a face the mesh fits upside down,
a quarter turn off or mirrored at every turn of its region is dropped and counted (``unfit``), so a
bad fit on a still or after a cut never lands in a face set.

Landmarks are smoothed per track (``engine.faces.smooth.OneEuro``); the jitter before and after is
measured as we go. Image folders have no time order: each image is detected on its own, its largest
face is track 0 (the person) and the others are track 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from engine import settings
from engine.faces.align import fit_error, transform_for
from engine.faces.detect import Detection, FaceFinder, Roi, roi_from_detection, roi_from_landmarks
from engine.faces.orientation import detector_axes, fit_problem
from engine.faces.smooth import JitterMeter, OneEuro

#: A first mesh fit better than this (engine.faces.align.fit_error) is taken as is; otherwise
#: the four quarter-turns are tried too.
GOOD_FIT = 0.025
#: Fits whose face-presence score is this much under the surest fit's are not taken.
PRESENCE_MARGIN = 0.05


@dataclass
class TrackOptions(settings.values_class("ExtractSettings", "extract", module="engine.faces.extract")):
    """What the tracker follows: the [extract] settings (engine/settings.py; an ``ExtractSettings``),
    plus what the footage decides."""

    #: Frames a track may go unseen before it ends.
    max_gap: int = 30
    #: The input is a folder of unrelated images, not a video: nothing is tracked across frames.
    images: bool = False


@dataclass
class Found:
    """One face in one frame, ready to be cropped and recorded."""

    track: int
    raw: np.ndarray        # (468, 3) as the mesh gave it
    landmarks: np.ndarray  # (468, 2) smoothed
    transform: np.ndarray  # (2, 3) frame -> crop
    presence: float


@dataclass
class Track:
    id: int
    last_frame: int
    raw: np.ndarray
    smooth: np.ndarray
    filter: OneEuro = field(default_factory=OneEuro)

    def state(self) -> dict:
        # Exact values (a float32 or float64 written by json reads back the same): a resumed tracker
        # then gives the landmarks an uninterrupted one gives. Rounded, the mesh's regions moved by a
        # fraction of a pixel and a face at the edge of the mesh's confidence could be lost after a resume.
        return {"id": self.id, "last_frame": self.last_frame, "raw": self.raw.tolist(),
                "smooth": self.smooth.tolist(), "filter": self.filter.state()}


def bounds(points: np.ndarray) -> np.ndarray:
    return np.concatenate([points[:, :2].min(0), points[:, :2].max(0)])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


class Tracker:
    def __init__(self, finder: FaceFinder, options: TrackOptions) -> None:
        self.finder = finder
        self.options = options
        self.tracks: list[Track] = []
        self.next_id = 0
        self.last_detect = -10**9
        self.last_rotated = -10**9
        #: Detections the mesh found no face in, (box, until frame): not tried again meanwhile.
        self.rejected: list[tuple[np.ndarray, int]] = []
        self.jitter = JitterMeter()
        #: Detections whose face the mesh could fit only upside down, a quarter turn off or mirrored:
        #: dropped (and told to the user), never recorded.
        self.unfit = 0

    # -- resumable state -----------------------------------------------------------------------
    def state(self) -> dict:
        return {"tracks": [t.state() for t in self.tracks], "next_id": self.next_id,
                "last_detect": self.last_detect, "last_rotated": self.last_rotated,
                "rejected": [(box.tolist(), until) for box, until in self.rejected], "unfit": self.unfit,
                "jitter": {"sums": self.jitter.sums, "pairs": self.jitter.pairs}}

    def restore(self, state: dict) -> None:
        o = self.options
        self.tracks = [Track(t["id"], t["last_frame"], np.asarray(t["raw"], dtype=np.float32),
                             np.asarray(t["smooth"], dtype=np.float64),
                             OneEuro.from_state(t["filter"], o.min_cutoff, o.beta)) for t in state["tracks"]]
        self.next_id = state["next_id"]
        self.last_detect = state["last_detect"]
        self.last_rotated = state.get("last_rotated", -10**9)
        self.rejected = [(np.asarray(box, dtype=np.float32), int(until)) for box, until in state.get("rejected", [])]
        self.unfit = int(state.get("unfit", 0))
        self.jitter.sums = dict(state["jitter"]["sums"])
        self.jitter.pairs = state["jitter"]["pairs"]

    # -- one frame -----------------------------------------------------------------------------
    def step(self, index: int, timestamp: float, frame: np.ndarray) -> list[Found]:
        if self.options.images:
            return self._step_image(frame)
        hits: list[tuple[Track | None, np.ndarray, float]] = []
        lost = False
        for track in self.tracks:
            if track.last_frame != index - 1:
                continue
            result = self.finder.landmarks(frame, roi_from_landmarks(track.raw))
            if result is None:
                lost = True
            else:
                hits.append((track, *result))
        # The periodic detection falls on frame numbers, not on a count from the last detection: a
        # worker that starts mid-clip then detects on the frames one tracker running through does,
        # and after its warm-up holds the same faces (records of N workers equal one's).
        if not hits or lost or index % self.options.detect_every == 0:
            self.last_detect = index
            hits += self._detect_new(frame, hits, index)
        hits = self._drop_duplicates(hits)
        found = []
        taken = {track.id for track, _, _ in hits if track is not None}
        for track, raw, presence in hits:
            if track is None:
                track = self._revive(raw, taken) or self._new_track(raw, index)
                taken.add(track.id)
            found.append(self._update(track, index, timestamp, raw, presence))
        self.tracks = [t for t in self.tracks if index - t.last_frame <= self.options.max_gap]
        return found

    def _detect(self, frame: np.ndarray) -> list[Detection]:
        return self.finder.detect_tiled(frame) if self.options.small_faces else self.finder.detect(frame)

    def _detect_new(self, frame: np.ndarray, hits: list, index: int) -> list:
        detections = self._detect(frame)
        # Turned frames cost three more detections: try them at most every ``detect_every`` frames
        # (a sideways clip has its faces sideways throughout; once found, tracking follows them).
        if not detections and not hits and self.options.rotate_retry and \
                index - self.last_rotated >= self.options.detect_every:
            self.last_rotated = index
            detections = self.finder.detect_rotated(frame)
        boxes = [bounds(raw) for _, raw, _ in hits]
        # A blurred or dark face the detector sees but the mesh does not would otherwise cost up to
        # five mesh runs on every frame.
        self.rejected = [(box, until) for box, until in self.rejected if until > index]
        new = []
        for det in sorted(detections, key=lambda d: -d.score):
            if any(iou(det.box, box) > 0.3 for box in boxes):
                continue
            if any(iou(det.box, box) > 0.5 for box, _ in self.rejected):
                continue
            result = self.mesh_for_detection(frame, det)
            if result is None:
                self.rejected.append((det.box, index + self.options.detect_every))
                continue
            box = bounds(result[0])
            if any(iou(box, other) > 0.5 for other in boxes):
                continue
            boxes.append(box)
            new.append((None, *result))
        return new

    def mesh_for_detection(self, frame: np.ndarray, det: Detection) -> tuple[np.ndarray, float] | None:
        """Landmarks for a new detection, the right way up, or None (``unfit`` counts the faces seen
        but fitted only the wrong way). The detector's eye keypoints give the face's rotation, but
        for a face turned far (a sideways frame) they can be wrong and the mesh then fits nonsense
        with a high presence score; so unless the first fit is clearly good and upright, the region
        is also tried upright, a quarter turn either way, upside down, and at the roll of the
        detector's eyes-to-mouth axis; of the fits that agree with the detector's keypoints
        (``engine.faces.orientation``), the one closest to a face shape wins."""
        roi = roi_from_detection(det)
        up = detector_axes(det.keypoints)[0]
        # The roll that puts the detector's mouth straight under its eyes (the eye line can be off
        # by tens of degrees on a turned face while the eyes-to-mouth axis is not).
        axis = math.atan2(up[0], -up[1])
        fits: list[tuple[float, tuple[np.ndarray, float]]] = []
        for angle in (roi.angle, 0.0, math.pi / 2, -math.pi / 2, math.pi, axis):
            result = self.finder.landmarks(frame, Roi(roi.cx, roi.cy, roi.side, angle))
            if result is None:
                if angle == roi.angle:
                    return None  # no face at all where the detector pointed: turning will not help
                continue
            if fit_problem(result[0], det.keypoints) is not None:
                continue
            error = fit_error(result[0])
            fits.append((error, result))
            if angle == roi.angle and error < GOOD_FIT:
                break
        if not fits:
            self.unfit += 1
            return None
        # A fit at a wrong quarter turn can match the template better than the right one does on a
        # talking face (mouth open: 0.046 upright against 0.035 turned, seen on the sample clips), but
        # the mesh is then less sure there is a face (0.5-0.85 against 1.0): only the surest fits
        # compete on shape. (The detector's eye keypoints cannot decide: on a sideways face they are
        # off by 60 degrees.)
        surest = max(result[1] for _, result in fits)
        return min((f for f in fits if f[1][1] >= surest - PRESENCE_MARGIN), key=lambda f: f[0])[1]

    def _drop_duplicates(self, hits: list) -> list:
        """Two tracks that converged on one face: keep the older one."""
        hits = sorted(hits, key=lambda h: h[0].id if h[0] is not None else 10**9)
        kept: list = []
        for hit in hits:
            if all(iou(bounds(hit[1]), bounds(other[1])) <= 0.5 for other in kept):
                kept.append(hit)
        return kept

    def _revive(self, raw: np.ndarray, taken: set[int]) -> Track | None:
        box = bounds(raw)
        size = max(box[2] - box[0], box[3] - box[1])
        centre = (box[:2] + box[2:]) / 2
        best = None
        for track in self.tracks:
            if track.id in taken:
                continue
            old = bounds(track.raw)
            close = np.linalg.norm((old[:2] + old[2:]) / 2 - centre) < 0.5 * size
            if (iou(box, old) > 0.2 or close) and (best is None or track.last_frame > best.last_frame):
                best = track
        return best

    def _new_track(self, raw: np.ndarray, index: int) -> Track:
        o = self.options
        track = Track(self.next_id, index - 2, raw, raw[:, :2].astype(np.float64), OneEuro(o.min_cutoff, o.beta))
        self.next_id += 1
        self.tracks.append(track)
        return track

    def _update(self, track: Track, index: int, timestamp: float, raw: np.ndarray, presence: float) -> Found:
        o = self.options
        box = bounds(raw)
        contiguous = track.last_frame == index - 1
        if not contiguous:
            track.filter = OneEuro(o.min_cutoff, o.beta)
        scale = float(max(box[2] - box[0], box[3] - box[1]))
        smooth = track.filter(raw[:, :2], timestamp, scale) if o.smooth else raw[:, :2].astype(np.float64)
        transform = transform_for(smooth, o.face_type, o.size)
        if contiguous:
            crop_scale = float(np.sqrt(abs(np.linalg.det(transform[:, :2])))) * 512 / o.size
            self.jitter.add(track.raw, raw, track.smooth, smooth, crop_scale)
        track.raw, track.smooth, track.last_frame = raw, smooth, index
        return Found(track.id, raw, smooth, transform, presence)

    def _step_image(self, frame: np.ndarray) -> list[Found]:
        o = self.options
        detections = self._detect(frame)
        if not detections and o.rotate_retry:
            detections = self.finder.detect_rotated(frame)
        faces = []
        for det in detections:
            result = self.mesh_for_detection(frame, det)
            if result is not None:
                faces.append(result)
        faces.sort(key=lambda r: -float(np.prod(bounds(r[0])[2:] - bounds(r[0])[:2])))
        return [Found(0 if i == 0 else 1, raw, raw[:, :2].astype(np.float64),
                      transform_for(raw, o.face_type, o.size), presence)
                for i, (raw, presence) in enumerate(faces)]
