"""Which destination frames are measured, and those frames merged by one or more models.

The measured frames are the held-out destination frames (``engine.faces.split``), at most ``limit``
of them from the start of the held-out stretch, so they are consecutive (flicker needs neighbours).
Without held-out frames (holding out is off, or the clip is short) the last ``limit`` frames with a
face are used, and the result says that the model saw them in training.

``swapped_frames`` decodes each measured frame once and merges it with every model the same way the
merge step does (the workspace's ``[merge]`` settings, ``engine.merge``), or takes the frame from an
already merged video.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import UserError
from engine.faces.records import target_track_ids
from engine.faces.split import held_out, read_alignments_cached
from engine.media.decode import iter_frames
from engine.media.probe import probe_cached
from engine.merge.blend import crop_face
from engine.merge.merger import merge_one
from engine.merge.targets import target_faces
from engine.workspace import Workspace


@dataclass
class MeasuredFrames:
    frames: list[int]
    held_out: bool
    note: str


def measured_frames(ws: Workspace, limit: int) -> MeasuredFrames:
    if limit < 2:
        raise UserError("At least 2 frames are needed to measure quality.", "Use --frames 2 or more.")
    records = target_records(ws, "dst")
    if not records:
        raise UserError("The destination has no faces of its target person.", "Run extraction first: swapwizard extract WS.")
    holdout = held_out(ws, "dst", records)
    if holdout.frames:
        return MeasuredFrames(holdout.frames[:limit], True, f"held-out destination frames: {holdout.rule}")
    frames = sorted({int(r.frame) for r in records})[-limit:]
    return MeasuredFrames(frames, False, "no held-out frames (holding out is off, or the clip has under "
                          "20 faces): measured on frames the model trained on, which flatters it")


def target_records(ws: Workspace, side: str = "dst") -> list[Any]:
    """The side's target-person face records (read once while the alignments file is unchanged)."""
    header, records = read_alignments_cached(ws.alignments_path(side))
    targets = target_track_ids(header)
    return [r for r in records if r.track in targets]


def records_by_frame(ws: Workspace) -> dict[int, Any]:
    """The destination's target-track record per frame (the first face if there were several)."""
    found: dict[int, Any] = {}
    for record in target_records(ws, "dst"):
        found.setdefault(int(record.frame), record)
    return found


#: Frames apart beyond which ``frames_at`` seeks to the next wanted frame instead of decoding on.
SEEK_GAP = 250


def frames_at(path: Path, frames: list[int]) -> Iterator[tuple[int, np.ndarray]]:
    """The frames with these indices (sorted) from a video or image folder; in a clip that can be
    seeked (``MediaInfo.seekable``), each run of nearby frames is decoded from a seek to its first."""
    ordered = sorted(set(frames))
    if not ordered:
        return
    seek = Path(path).is_file() and probe_cached(path).seekable
    runs = [[ordered[0]]]
    for index in ordered[1:]:
        if seek and index - runs[-1][-1] > SEEK_GAP:
            runs.append([index])
        else:
            runs[-1].append(index)
    for run in runs:
        wanted, last = set(run), run[-1]
        for index, _, frame in iter_frames(path, start=run[0], seek=seek):
            if index in wanted:
                yield index, frame
            if index >= last:
                break


def swapped_frames(ws: Workspace, frames: list[int], models: list[Any], settings: Any,
                   video: Path | None = None) -> Iterator[tuple[int, np.ndarray, list[np.ndarray]]]:
    """``(index, destination frame, [merged frame per model])``; with ``video``, its frame instead."""
    dst = ws.source("dst")
    if dst is None:
        raise UserError("The workspace has no destination video.",
                        f"Add one with: swapwizard sources {ws.root} --dst VIDEO")
    faces_by_type: dict[str | None, dict[int, list]] = {}
    for model in models:
        face_type = getattr(model, "face_type", None)
        if face_type not in faces_by_type:
            faces_by_type[face_type] = target_faces(ws, face_type)
    others = frames_at(video, frames) if video is not None else None
    for index, frame in frames_at(dst, frames):
        merged = []
        if others is not None:
            other_index, other = next(others, (None, None))
            if other_index != index or other is None:
                raise UserError(f"{video.name} has no frame {index}.", "Measure a video merged from this destination.")
            if other.shape != frame.shape:
                raise UserError(f"{video.name} is {other.shape[1]}x{other.shape[0]}, the destination "
                                f"{frame.shape[1]}x{frame.shape[0]}.", "Measure a video merged from this destination.")
            merged.append(other)
        for model in models:
            faces = faces_by_type[getattr(model, "face_type", None)].get(index, [])
            crops = [crop_face(frame, face, model.resolution) for face in faces]
            predictions = model.predict(crops) if crops else []
            out, _, _ = merge_one(frame.copy(), faces, predictions, crops, settings)
            merged.append(out)
        yield index, frame, merged
