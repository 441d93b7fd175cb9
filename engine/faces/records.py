"""Face records: one alignments file per side, JSON lines, no pickle.

File: ``WS/data_<side>/alignments.jsonl`` (``ws.alignments_path(side)``), written atomically when an
extraction finishes (while it runs, records go to ``data_<side>/.extract/partial.jsonl``).

Line 1, the header (a JSON object with ``"kind": "header"``)::

    version        1
    side           "src" | "dst"
    source         {"name", "kind" ("video"|"images"), "width", "height", "fps", "frame_count",
                    "video_start", "variable_fps"}       frames the extraction saw
    face_type      "whole_face" (see engine.faces.align)
    size           crop side in pixels (512)
    crop_format    "png" | "jpg"
    target_track   the target person's most important track (older files: the only target)
    target_tracks  every track of the target person        target_person  that person's id
    people         [{"id", "tracks", "faces", "first", "last", "size", "score", "embedding" (128-d mean,
                     engine.faces.identity), "samples", "thumb" ("people/person_N.jpg")}]
    identity       {"model", "splits", "embedded", "ms_per_face", "threshold"}  what linking cost
    tracks         [{"id", "faces", "first", "last", "size" (median face size, px), "score",
                     "thumb" (side-relative path of a crop)}]   most important first
    frames_with    {"0": n, "1": n, "2+": n}     frames by number of faces found
    smoothing      {"min_cutoff", "beta"}       One Euro filter applied to the landmarks
    hands          {"frames", "checked", "frames_with_hands", "ms_per_check", "ms_per_frame", "every"}
                   what looking for hands near the faces cost (engine.faces.hands); null when off
    unfit_faces    faces left out because the mesh fitted them only upside down, a quarter turn off or
                   mirrored (engine.faces.orientation)
    complete       true

Every other line is one face (``FaceRecord``), in frame order::

    frame       frame index (0-based, decode order)      time  seconds from the first frame
    face        index of the face within its frame       track id of the track it belongs to
    box         [x0, y0, x1, y1] frame pixels (landmark bounds)
    landmarks   468 [x, y] pairs, frame pixels, smoothed (mediapipe face mesh order)
    transform   2x3 matrix, frame pixels -> aligned crop of ``size`` (engine.faces.align)
    size        crop side (pixels)                       face_type  as in the header
    mask        face outline polygon [[x, y], ...] in crop pixels (forehead raised for
                whole_face and head); ``face_mask`` rasterises it
    blur        variance of the Laplacian of the crop at 256 px (higher is sharper)
    brightness  mean grey level (0-255) inside the mask
    yaw, pitch, roll  degrees; yaw > 0 the face turns to the image's right, pitch > 0 looks up
    presence    the mesh's face-presence score (0-1)
    file        crop path relative to the side folder, "aligned/000012_0.png"
    person      id of the person (tracks of one identity linked, engine.faces.identity)
    occluders   hands in front of the face: polygons [[[x, y], ...], ...] in crop pixels (engine.faces.hands)

Deleting a crop from ``aligned/`` removes that face from training (``engine.faces.split.training_faces``,
which also leaves out the held-out frames) and from check, sort and pack
(``present_faces``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_open
from engine.errors import UserError
from engine.faces.landmarks import landmarks68
from engine.paths import check_name
from engine.workspace import Workspace

VERSION = 1


@dataclass
class FaceRecord:
    frame: int
    time: float
    face: int
    track: int
    box: list[float]
    landmarks: np.ndarray  # (468, 2) float32, frame pixels
    transform: np.ndarray  # (2, 3) float64
    size: int
    face_type: str
    mask: list[list[float]] = field(default_factory=list)
    blur: float = 0.0
    brightness: float = 0.0
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    presence: float = 1.0
    file: str = ""
    #: The person the face belongs to (engine.faces.identity links tracks into people); None in
    #: records written before people existed.
    person: int | None = None
    #: Occluders in front of the face found at extraction (hands, engine.faces.hands): polygons
    #: [[x, y], ...] in crop pixels; the segmenter leaves them out of the face's automatic label.
    occluders: list[list[list[float]]] = field(default_factory=list)

    def aligned_landmarks(self, size: int | None = None) -> np.ndarray:
        """The landmarks in crop pixels (of a ``size`` crop; the record's own size by default)."""
        matrix = self.transform if size is None else self.transform * (size / self.size)
        return self.landmarks @ matrix[:, :2].T + matrix[:, 2]

    def landmarks68(self) -> np.ndarray:
        return landmarks68(self.landmarks)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["landmarks"] = np.round(np.asarray(self.landmarks, dtype=np.float64), 2).tolist()
        data["transform"] = np.round(np.asarray(self.transform, dtype=np.float64), 6).tolist()
        data["box"] = [round(float(v), 2) for v in self.box]
        data["mask"] = [[round(float(x), 1), round(float(y), 1)] for x, y in self.mask]
        data["occluders"] = [[[round(float(x), 1), round(float(y), 1)] for x, y in poly] for poly in self.occluders]
        for key in ("time", "blur", "brightness", "yaw", "pitch", "roll", "presence"):
            data[key] = round(float(data[key]), 3)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaceRecord:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["landmarks"] = np.asarray(values["landmarks"], dtype=np.float32).reshape(-1, 2)
        values["transform"] = np.asarray(values["transform"], dtype=np.float64).reshape(2, 3)
        if "occluders" in values:  # each a polygon of [x, y] points, or the record is damaged
            values["occluders"] = [np.asarray(poly, dtype=np.float64).reshape(-1, 2).tolist()
                                   for poly in values["occluders"]]
        return cls(**values)


def face_mask(record: FaceRecord, size: int | None = None) -> np.ndarray:
    """The record's mask polygon rasterised: uint8 (size, size), 255 inside the face, 0 outside."""
    import cv2

    size = size or record.size
    mask = np.zeros((size, size), dtype=np.uint8)
    if record.mask:
        poly = np.asarray(record.mask, dtype=np.float64) * (size / record.size)
        cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
    return mask


# -- reading and writing ------------------------------------------------------------------------
def read_alignments(path: Path) -> tuple[dict[str, Any], list[FaceRecord]]:
    """Header and records of one alignments file; ``UserError`` if it is missing or damaged."""
    if not path.is_file():
        raise UserError(f"There are no face records at {path}.", "Run the extraction first: swapwizard extract WS")
    header: dict[str, Any] | None = None
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if header is None:
                    if data.get("kind") != "header":
                        raise ValueError("first line is not a header")
                    if int(data.get("version", 0)) > VERSION:
                        raise UserError(f"{path.name} was written by a newer swapwizard.",
                                        "Upgrade swapwizard, or extract again.")
                    _check_header_paths(path, number, data)
                    header = data
                else:
                    record = FaceRecord.from_json(data)
                    if record.file:  # a crop outside the side folder refuses the whole file (zip-slip, sort, pack)
                        check_name(record.file, f"{path} (line {number}, file)", _UNSAFE_HINT)
                    records.append(record)
            except UserError:
                raise
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise UserError(f"{path} is damaged at line {number} ({exc}).",
                                "Extract that side again: swapwizard extract WS --side SIDE --force") from None
    if header is None:
        raise UserError(f"{path} is empty.", "Extract that side again: swapwizard extract WS --side SIDE --force")
    return header, records


_UNSAFE_HINT = ("The face records were edited or come from elsewhere: extract that side again, or unpack a "
                "face set made by swapwizard faceset pack.")


def _check_header_paths(path: Path, number: int, header: dict[str, Any]) -> None:
    """The thumbnails the header names (tracks, people) must be inside the side folder."""
    for key in ("tracks", "people"):
        for entry in header.get(key) or []:
            if isinstance(entry, dict) and entry.get("thumb") is not None:
                check_name(entry["thumb"], f"{path} (line {number}, {key} thumb)", _UNSAFE_HINT)


class DamagedRecords(UserError):
    """A partial records file with a bad line that whole lines follow: damaged, not torn by a crash."""


def read_partial(path: Path) -> list[FaceRecord]:
    """The records an extraction appended to ``path`` (JSON lines, no header), in file order.

    A crash mid-append can tear only the last line: it is dropped (the run resumes before it). A bad
    line with whole lines after it means the file was damaged some other way: ``DamagedRecords`` is
    raised rather than any frame skipped, and the caller extracts that part again.
    """
    records: list[FaceRecord] = []
    if not path.is_file():
        return records
    with open(path, "rb") as handle:
        bad = 0
        for number, line in enumerate(handle, 1):
            if bad:
                if line.strip():
                    raise DamagedRecords(f"{path} is damaged at line {bad} (whole records follow it, so a "
                                         "crash did not tear it).",
                                         "Run the extraction again: the damaged part is extracted again.")
                continue
            try:
                records.append(FaceRecord.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError, AttributeError):
                bad = number
    return records


def write_alignments(path: Path, header: dict[str, Any], records: list[FaceRecord]) -> None:
    """Write header + records atomically (a reader sees the old file or the whole new one)."""
    header = {**header, "kind": "header", "version": VERSION}
    with atomic_open(path) as handle:
        handle.write((json.dumps(header) + "\n").encode("utf-8"))
        for record in records:
            handle.write((json.dumps(record.to_json()) + "\n").encode("utf-8"))


def load_header(ws: Workspace, side: str) -> dict[str, Any]:
    return read_alignments(ws.alignments_path(side))[0]


def load_records(ws: Workspace, side: str) -> list[FaceRecord]:
    """Every face record of a side (all tracks), in frame order."""
    return read_alignments(ws.alignments_path(side))[1]


def save_records(ws: Workspace, side: str, header: dict[str, Any], records: list[FaceRecord]) -> None:
    write_alignments(ws.alignments_path(side), {**header, "side": side}, records)


def target_track_ids(header: dict[str, Any]) -> set[int]:
    """The tracks of the side's target person (``target_tracks``; files written before people were
    linked name one ``target_track``)."""
    tracks = header.get("target_tracks")
    if isinstance(tracks, list) and tracks:
        return {int(t) for t in tracks}
    target = header.get("target_track")
    return set() if target is None else {int(target)}


def target_records(ws: Workspace, side: str) -> list[FaceRecord]:
    """Records of the side's target person (all their tracks), whether or not their crop still exists."""
    header, records = read_alignments(ws.alignments_path(side))
    targets = target_track_ids(header)
    return [r for r in records if r.track in targets]


def present_faces(ws: Workspace, side: str) -> list[FaceRecord]:
    """Target-track records whose aligned crop is still on disk (the user may delete bad crops):
    the face set that check, sort and faceset pack work on."""
    side_dir = ws.side_dir(side)
    return [r for r in target_records(ws, side) if r.file and (side_dir / r.file).is_file()]
