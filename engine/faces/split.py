"""The held-out frames: faces kept out of training so that quality is measured on frames the model never saw.

Rule: the last ``fraction`` (10 % by default) of a side's target-track faces in frame order, at least
``MIN_HELD`` faces, and only when the side has at least ``MIN_FACES`` of them (fewer are all needed for
training). A contiguous stretch rather than every n-th frame, so that temporal stability can be measured
on consecutive frames, and so that no held-out frame has a training frame 40 ms away (a near duplicate
would flatter the model).

``[quality] holdout = 0.1`` in workspace.toml sets the fraction; 0 turns holding out off. The split is
recorded in ``data_<side>/holdout.json`` the first time it is needed (when training loads its faces) and
reused while the extraction and the fraction stay the same, so every model of the workspace is trained
without, and measured on, the same frames. ``training_faces`` (below) is the face set training loads:
the crops still on disk, less these frames.

It lives with the faces, not with quality (which measures on these frames), because training reads it
and training sits below quality (docs/architecture.md); it reads ``engine.faces.records``, never the
other way round.
"""

from __future__ import annotations

import json
import math
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import settings
from engine.atomic import atomic_write_json, read_json
from engine.faces.records import FaceRecord, read_alignments, target_records, target_track_ids
from engine.workspace import Workspace

MIN_FACES = 20
MIN_HELD = 3
FILE_NAME = "holdout.json"
#: path -> (file key, header, weak reference to the records): the records stay cached only while a caller
#: still holds them, so a long training run does not keep every face's record (about 10 KB each: 468
#: landmarks, the mask outline) after its set-up has read them (measured: README, Training).
_CACHE: dict[str, tuple[Any, dict[str, Any], Any]] = {}
#: path -> (file key, header): what ``held_out`` needs when it is given the records.
_HEADERS: dict[str, tuple[Any, dict[str, Any]]] = {}


class _Records(list):
    """The records of one alignments file (a list the cache can refer to weakly)."""


@dataclass
class Holdout:
    side: str
    fraction: float
    frames: list[int] = field(default_factory=list)
    #: Target-track faces the split was drawn from.
    faces: int = 0
    rule: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"side": self.side, "fraction": self.fraction, "frames": self.frames, "faces": self.faces,
                "rule": self.rule}


def holdout_fraction(ws: Workspace) -> float:
    """``[quality] holdout`` (declared, with its range 0-0.5, in engine/settings.py)."""
    return float(settings.read(ws, "quality")["holdout"])


def choose(frames: list[int], fraction: float) -> list[int]:
    """The held-out frames among a side's target-track face frames (sorted, unique)."""
    frames = sorted(set(frames))
    if fraction <= 0 or len(frames) < MIN_FACES:
        return []
    count = max(MIN_HELD, math.ceil(len(frames) * fraction))
    return frames[-count:]


def _key(header: dict[str, Any], fraction: float, faces: int) -> dict[str, Any]:
    source = header.get("source") or {}
    return {"fraction": fraction, "faces": faces, "target_track": header.get("target_track"),
            **({"target_tracks": header["target_tracks"]} if header.get("target_tracks") else {}),
            "source": source.get("fingerprint") or [source.get("name"), source.get("frame_count")]}


def _file_key(path: Path) -> tuple[str, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (str(path), stat.st_mtime_ns, stat.st_size)


def read_alignments_cached(path: Path) -> tuple[dict[str, Any], list[Any]]:
    """``engine.faces.records.read_alignments``, not read again while the file is unchanged and a caller
    still holds the records it returned (treat them as read-only)."""
    key = _file_key(path)
    if key is None:
        return read_alignments(path)  # raises the user-facing error
    cached = _CACHE.get(key[0])
    if cached is not None and cached[0] == key:
        records = cached[2]()
        if records is not None:
            return cached[1], records
    header, found = read_alignments(path)
    records = _Records(found)
    _CACHE[key[0]] = (key, header, weakref.ref(records))
    _HEADERS[key[0]] = (key, header)
    return header, records


def _header(path: Path) -> dict[str, Any]:
    """The alignments file's header (its first line), cached while the file is unchanged."""
    key = _file_key(path)
    cached = _HEADERS.get(key[0]) if key is not None else None
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        with open(path, encoding="utf-8") as handle:
            header = json.loads(handle.readline())
    except (OSError, ValueError):
        header = None
    if not isinstance(header, dict) or header.get("kind") != "header":
        return read_alignments_cached(path)[0]  # the whole file: its own error, in one sentence
    if key is not None:
        _HEADERS[key[0]] = (key, header)
    return header


def held_out(ws: Workspace, side: str, records: list[Any] | None = None) -> Holdout:
    """The side's held-out faces, from ``holdout.json`` when it still fits the extraction, else chosen now.

    ``records`` (the side's target-track records) saves filtering them again.
    """
    fraction = holdout_fraction(ws)
    if records is None:
        header, all_records = read_alignments_cached(ws.alignments_path(side))
        targets = target_track_ids(header)
        records = [r for r in all_records if r.track in targets]
    else:
        header = _header(ws.alignments_path(side))
    frames = sorted({int(r.frame) for r in records})
    key = _key(header, fraction, len(frames))
    path = ws.side_dir(side) / FILE_NAME
    saved = read_json(path, default=None)
    if isinstance(saved, dict) and saved.get("key") == key and isinstance(saved.get("frames"), list):
        return Holdout(side, fraction, [int(f) for f in saved["frames"]], len(frames), saved.get("rule", ""))
    chosen = choose(frames, fraction)
    rule = (f"the last {fraction:.0%} of the {len(frames)} target-track faces (frames {chosen[0]}-{chosen[-1]})"
            if chosen else f"none held out ({len(frames)} faces; fraction {fraction})")
    holdout = Holdout(side, fraction, chosen, len(frames), rule)
    atomic_write_json(path, {**holdout.to_json(), "key": key})
    return holdout


def held_out_frames(ws: Workspace, side: str, records: list[Any] | None = None) -> set[int]:
    """Frame indices training must not use (empty when holding out is off or the side is small)."""
    return set(held_out(ws, side, records).frames)


def training_faces(ws: Workspace, side: str) -> list[FaceRecord]:
    """Target-track records whose aligned crop is still on disk (the user may delete bad crops),
    less the held-out frames that quality is measured on."""
    side_dir = ws.side_dir(side)
    records = target_records(ws, side)
    held = held_out_frames(ws, side, records)
    return [r for r in records if r.frame not in held and r.file and (side_dir / r.file).is_file()]
