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

from engine.errors import UserError
from engine.faces import identity
from engine.faces.align import apply, resize_transform
from engine.faces.detect import FaceFinder
from engine.faces.extract import ExtractSettings, extract_side
from engine.faces.identity import MESH_5, model_paths
from engine.faces.records import read_alignments, target_track_ids
from engine.faces.track import Found, Tracker, TrackOptions
from engine.report import CallbackReporter, NullReporter
from tests.extract.conftest import ffmpeg
from tests.helpers import SAMPLES, make_workspace

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


def photo_of(clip: Path, frame: int, out: Path, side: int = 480) -> Path:
    """A frame of a clip saved as a photo: a ``side`` square around its middle (the issue's case)."""
    capture = cv2.VideoCapture(str(clip))
    capture.set(cv2.CAP_PROP_POS_FRAMES, frame)
    ok, image = capture.read()
    capture.release()
    assert ok, (clip, frame)
    h, w = image.shape[:2]
    side = min(side, h, w)
    y, x = (h - side) // 2, (w - side) // 2
    cv2.imwrite(str(out), image[y:y + side, x:x + side], [cv2.IMWRITE_JPEG_QUALITY, 92])
    return out


def test_a_photo_picks_its_own_person_as_dlib_would(tmp_path, judge):
    """A two-person clip (A, a hard cut, B) and a photo of each made from a frame outside it: the
    reference picks the photo's person, at a distance in line with dlib's own pipeline (its detector,
    shape and chip on the photo and on the clip's frames). Then the pictures among themselves."""
    if SHARED.is_dir():
        a, b, frames, later = SHARED / "WDA_KatieHill_000.mp4", SHARED / "WDA_AlexandriaOcasioCortez_000.mp4", 20, 150
    else:
        a, b, frames, later = SAMPLES / "src.mp4", SAMPLES / "dst.mp4", 20, 60
    joined = tmp_path / "a_b.mp4"
    ffmpeg("-i", str(a), "-i", str(b), "-filter_complex",
           f"[0:v]trim=end_frame={frames},setpts=PTS-STARTPTS[p];[1:v]trim=end_frame={frames},setpts=PTS-STARTPTS[q];"
           "[p][q]concat=n=2:v=1:a=0[v]", "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", str(joined))
    ws = make_workspace(tmp_path / "ws", dst=joined)
    settings = ExtractSettings(hands=False)
    lines = []
    for who, clip in (("A", a), ("B", b)):
        photo = photo_of(clip, later, tmp_path / f"{who}.jpg")
        result = extract_side(ws, "dst", settings, NullReporter(), reference=str(photo))
        header, records = read_alignments(ws.alignments_path("dst"))
        chosen = {"A" if r.frame < frames else "B" for r in records if r.track in target_track_ids(header)}
        person = next(p for p in header["people"] if p["id"] == result["target_person"])
        ours = float(identity.distance(identity.reference_from_photo(photo).embedding, person["embedding"]))
        theirs = [judge.embedding(frame) for frame in clip_frames(clip, range(0, frames, 5))]
        dlib_photo = judge.embedding(cv2.imread(str(photo)))
        dlib = float(np.mean([identity.distance(dlib_photo, t) for t in theirs if t is not None]))
        lines.append(f"{photo.name} ({clip.name} frame {later}): person {result['target_person']}, ours "
                     f"{ours:.2f}, dlib's pipeline {dlib:.2f}, chose {sorted(chosen)}")
        assert chosen == {who}, "; ".join(lines)
        assert ours < identity.THRESHOLD and abs(ours - dlib) < 0.2, "; ".join(lines)
    pictures = sorted(SHARED.glob("*.jpg")) if SHARED.is_dir() else []
    ours = {p: identity.reference_from_photo(p).embedding for p in pictures}
    theirs = {p: judge.embedding(cv2.imread(str(p))) for p in pictures}
    for i, p in enumerate(pictures):
        for q in pictures[i + 1:]:
            mine, dlib = float(identity.distance(ours[p], ours[q])), float(identity.distance(theirs[p], theirs[q]))
            lines.append(f"{p.name} - {q.name}: ours {mine:.2f}, dlib's pipeline {dlib:.2f}")
            assert (mine < identity.THRESHOLD) == (dlib < identity.THRESHOLD) and abs(mine - dlib) < 0.2, \
                "; ".join(lines)
    print("\n".join(lines))


def clip_frames(clip: Path, indices) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(clip))
    out = []
    for index in indices:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        if ok:
            out.append(frame)
    capture.release()
    return out


def test_faces_fitted_only_the_wrong_way_are_dropped_and_told(tmp_path):
    """hamilton.mp4 frames 43 and 44 show a dark face the mesh fits only a quarter turn off: as pictures
    of an image folder they are left out with a count and a warning, and as a reference photo they
    are refused as badly fitted, not as 'nobody matches'."""
    folder = tmp_path / "stills"
    folder.mkdir()
    for index, frame in zip((0, 43, 44), clip_frames(SAMPLES / "hamilton.mp4", (0, 43, 44))):
        cv2.imwrite(str(folder / f"frame_{index:03d}.png"), frame)
    ws = make_workspace(tmp_path / "ws", src=folder)
    events: list[dict] = []
    result = extract_side(ws, "src", ExtractSettings(hands=False, small_faces=True), CallbackReporter(events.append))
    header, records = read_alignments(ws.alignments_path("src"))
    assert result["unfit_faces"] == header["unfit_faces"] == 2
    assert {r.frame for r in records} == {0}
    warned = [e["message"] for e in events if e.get("level") == "warning"]
    assert any("2 faces were left out" in w and "upside down" in w for w in warned), warned
    with pytest.raises(UserError) as caught:
        identity.reference_from_photo(folder / "frame_043.png")
    assert "could only be fitted badly" in caught.value.message and caught.value.hint


def test_the_reference_error_says_how_alike_the_nearest_is_and_when_the_fit_was_rough():
    rng = np.random.default_rng(0)
    photo = rng.normal(size=128)
    photo /= np.linalg.norm(photo)
    away = rng.normal(size=128)
    away -= (away @ photo) * photo
    away /= np.linalg.norm(away)
    people = [{"id": 0, "embedding": (photo + 0.65 * away).tolist()}, {"id": 1, "embedding": (photo + 0.9 * away).tolist()}]
    with pytest.raises(UserError) as caught:
        identity.match_reference(people, identity.Reference(photo, "me.jpg"))
    message = caught.value.message
    assert "Nobody in this side is close enough" in message and "person 0" in message, message
    assert "a little alike, but probably someone else (distance 0.65" in message and caught.value.hint
    with pytest.raises(UserError) as caught:
        identity.match_reference(people, identity.Reference(photo, "me.jpg", rough="the landmark model is unsure"))
    assert "could only be fitted roughly" in caught.value.message and "cannot be trusted" in caught.value.message
    assert identity.match_reference(people, identity.Reference(photo + 0.3 * away, "me.jpg")) == (0, pytest.approx(0.35))
    assert [identity.likeness(d) for d in (0.3, 0.5, 0.65, 0.9)] == [
        "very likely the same person", "probably the same person", "a little alike, but probably someone else",
        "not alike: someone else"]
