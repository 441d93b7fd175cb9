"""Stills: every picture of ../shared/data and every Nth frame of every clip, each taken alone as a
photo is, must be fitted the right way up (issue 23); and a photo of a person picks that person.

The judge is not our own orientation test but dlib's: its upright HOG detector and 5-point shape
predictor run on each aligned crop. A crop the mesh fitted right is an upright face whose eye
corners and nose bottom sit where the mesh says; an upside-down fit is a face dlib finds only when
the crop is turned over; a mirrored fit has dlib's eyes where the mesh put the other eye. Faces dlib
sees neither way (small, dark, turned) are held to the issue's own sign: in this upright footage, the
mesh's point under the nose (2) must lie below its eye corners in the picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.faces.align import apply, resize_transform
from engine.faces.detect import FaceFinder
from engine.faces.identity import MESH_5, model_paths
from engine.faces.track import Found, Tracker, TrackOptions
from tests.helpers import SAMPLES

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
#: Every this many frames of each clip is taken as a still (about 90 stills in all).
EVERY = {"WDA_KatieHill_000.mp4": 15, "WDA_AlexandriaOcasioCortez_000.mp4": 15, "short_hamilton_clip.mp4": 8,
         "src.mp4": 25, "dst.mp4": 25, "hamilton.mp4": 8}
#: Frames named in issue 23 as fitted upside down, always included.
NAMED = {"short_hamilton_clip.mp4": (228,), "hamilton.mp4": (43, 44)}
CROP = 256
#: Mean distance of dlib's five points from the mesh's, over the eye distance, that still agrees
#: (a mirrored fit puts the eyes a whole eye distance off: about 1).
AGREE = 0.35


@dataclass
class Verdict:
    kind: str        # "agrees", "upside down", "disagrees", "undecided"
    error: float = math.nan


class DlibJudge:
    def __init__(self) -> None:
        import dlib

        folder = model_paths()["descriptor"].parent
        self.detector = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
        self.descriptor = dlib.face_recognition_model_v1(str(model_paths()["descriptor"]))
        self.dlib = dlib

    def _points(self, rgb: np.ndarray, rect) -> np.ndarray:
        shape = self.shape(rgb, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], np.float64)

    def verdict(self, frame: np.ndarray, face: Found, size: int) -> Verdict:
        matrix = resize_transform(face.transform, size, CROP)
        crop = cv2.cvtColor(cv2.warpAffine(frame, matrix, (CROP, CROP), flags=cv2.INTER_AREA,
                                           borderMode=cv2.BORDER_REPLICATE), cv2.COLOR_BGR2RGB)
        mesh5 = apply(matrix, face.raw[MESH_5])
        eyes = float(np.linalg.norm(mesh5[0] - mesh5[2]))
        rects = self.detector(crop, 1)
        if len(rects):
            centre = mesh5.mean(0)
            rect = min(rects, key=lambda r: np.hypot((r.left() + r.right()) / 2 - centre[0],
                                                      (r.top() + r.bottom()) / 2 - centre[1]))
            error = float(np.linalg.norm(self._points(crop, rect) - mesh5, axis=1).mean() / eyes)
            return Verdict("agrees" if error < AGREE else "disagrees", error)
        if len(self.detector(np.ascontiguousarray(crop[::-1, ::-1]), 1)):
            return Verdict("upside down")
        if face.raw[2, 1] <= face.raw[[263, 362, 33, 133], 1].max():
            return Verdict("upside down")  # the nose above an eye corner
        return Verdict("undecided")

    def embedding(self, image_bgr: np.ndarray) -> np.ndarray | None:
        """dlib's own pipeline: its detector, 5-point shape, chip and descriptor (largest face)."""
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        rects = self.detector(rgb, 1)
        if not len(rects):
            return None
        rect = max(rects, key=lambda r: r.width() * r.height())
        chip = self.dlib.get_face_chip(rgb, self.shape(rgb, rect), size=150, padding=0.25)
        return np.asarray(self.descriptor.compute_face_descriptor(chip), np.float64)


def stills() -> list[tuple[str, np.ndarray]]:
    """(name, BGR image): the pictures, then every Nth frame of each clip (and the issue's frames)."""
    out = []
    clips = sorted(SAMPLES.glob("*.mp4"))
    if SHARED.is_dir():
        out += [(p.name, cv2.imread(str(p))) for p in sorted(SHARED.glob("*.jpg"))]
        clips = sorted(SHARED.glob("*.mp4")) + clips
    for clip in clips:
        every, named = EVERY.get(clip.name, 10), NAMED.get(clip.name, ())
        capture = cv2.VideoCapture(str(clip))
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % every == 0 or index in named:
                out.append((f"{clip.name} frame {index}", frame))
            index += 1
        capture.release()
    return out


@pytest.fixture(scope="module")
def finder():
    found = FaceFinder()
    yield found
    found.close()


@pytest.fixture(scope="module")
def judge():
    return DlibJudge()


def test_every_still_is_fitted_right_way_up(finder, judge):
    options = TrackOptions(images=True, small_faces=True)
    tracker = Tracker(finder, options)
    counts: dict[str, list[str]] = {"agrees": [], "upside down": [], "disagrees": [], "undecided": []}
    pictures = stills()
    faces = 0
    for name, image in pictures:
        for face in tracker.step(0, 0.0, image):
            faces += 1
            verdict = judge.verdict(image, face, options.size)
            counts[verdict.kind].append(f"{name} face {face.track}" +
                                        (f" ({verdict.error:.2f})" if not math.isnan(verdict.error) else ""))
    summary = (f"{len(pictures)} stills, {faces} faces: {len(counts['agrees'])} agree with dlib, "
               f"{len(counts['upside down'])} upside down, {len(counts['disagrees'])} disagree "
               f"(mirrored or off), {len(counts['undecided'])} not seen by dlib (nose under the eyes); "
               f"{tracker.unfit} dropped as unfit")
    print(summary)
    assert not counts["upside down"] and not counts["disagrees"], \
        f"{summary}: upside down {counts['upside down']}, disagree {counts['disagrees']}"
    # The judge must have seen most faces, or it proved nothing.
    assert len(counts["agrees"]) >= 0.5 * faces, f"{summary}: undecided {counts['undecided']}"
