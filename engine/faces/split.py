"""The held-out frames: faces kept out of training so that quality is measured on frames the model never saw.

Rule: ``fraction`` (10 % by default) of a side's target-track faces, at least ``MIN_HELD``, and only
when the side has at least ``MIN_FACES`` of them (fewer are all needed for training), held out as short
stretches of ``BLOCK`` consecutive faces spread over the whole clip: the faces are cut into as many equal
segments as there are stretches, and each segment gives the stretch whose mean mouth opening sits at its
share of the clip's range (quantiles (k + 0.5) / stretches, handed out in van der Corput order so that
neighbouring segments get distant ones). So the held-out faces cover the clip's range of expressions, not
one stretch at its end where the mouth may hardly move (issue 25: the last 10 % of the sample destination
varied so little that the mouth-opening correlation on it went 0.94, -0.24, 0.81, -0.93 from one
measurement to the next). Consecutive faces inside a stretch let temporal stability be measured; the
``GUARD`` faces either side of each stretch are kept out of training too (``guard``), so that no held-out
face has a training face 40 ms away (a near duplicate would flatter the model).

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

import numpy as np

from engine import settings
from engine.atomic import atomic_write_json, read_json
from engine.faces.landmarks import expression
from engine.faces.records import FaceRecord, read_alignments, target_records, target_track_ids
from engine.workspace import Workspace

MIN_FACES = 20
MIN_HELD = 3
#: Consecutive faces per held-out stretch, and faces either side of it that training leaves out too.
BLOCK, GUARD = 5, 1
#: Changes when the rule does, so a holdout.json chosen by an earlier rule is chosen again.
RULE_VERSION = 2
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
    #: Faces next to the held-out stretches: neither trained on nor measured.
    guard: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"side": self.side, "fraction": self.fraction, "frames": self.frames, "guard": self.guard,
                "faces": self.faces, "rule": self.rule}


def holdout_fraction(ws: Workspace) -> float:
    """``[quality] holdout`` (declared, with its range 0-0.5, in engine/settings.py)."""
    return float(settings.read(ws, "quality")["holdout"])


def _van_der_corput(k: int) -> float:
    value, base = 0.0, 0.5
    while k:
        value, k, base = value + base * (k & 1), k >> 1, base / 2
    return value


def choose(frames: list[int], fraction: float, openings: dict[int, float] | None = None) -> tuple[list[int], list[int]]:
    """(held-out frames, guard frames) among a side's target-track face frames (each sorted, unique).
    ``openings`` (frame -> mouth opening) places each stretch at its share of the range of
    expressions; without it each stretch sits in the middle of its segment."""
    frames = sorted(set(frames))
    if fraction <= 0 or len(frames) < MIN_FACES:
        return [], []
    count = max(MIN_HELD, math.ceil(len(frames) * fraction))
    blocks = max(1, math.ceil(count / BLOCK))
    sizes = [count // blocks + (1 if k < count % blocks else 0) for k in range(blocks)]
    bounds = np.linspace(0, len(frames), blocks + 1).round().astype(int)
    values = np.array([openings.get(f, np.nan) for f in frames]) if openings else None
    order = sorted(range(blocks), key=_van_der_corput)  # segment -> its quantile rank
    held: list[int] = []
    guard: list[int] = []
    for k, size in enumerate(sizes):
        lo, hi = int(bounds[k]) + GUARD, int(bounds[k + 1]) - GUARD - size  # first and last start
        starts = list(range(lo, hi + 1)) if hi >= lo else [max(0, (int(bounds[k]) + int(bounds[k + 1]) - size) // 2)]
        start = starts[len(starts) // 2]
        if values is not None and np.isfinite(values).any():
            means = np.array([np.nanmean(values[s:s + size]) if np.isfinite(values[s:s + size]).any() else np.nan
                              for s in starts])
            if np.isfinite(means).any():
                target = np.nanquantile(values, (order.index(k) + 0.5) / blocks)
                start = starts[int(np.nanargmin(np.abs(means - target)))]
        held += frames[start:start + size]
        guard += frames[max(0, start - GUARD):start] + frames[start + size:start + size + GUARD]
    held_set = set(held)
    return sorted(held_set), sorted(set(guard) - held_set)


def _stretches(frames: list[int]) -> str:
    runs: list[list[int]] = []
    for frame in frames:
        if runs and frame == runs[-1][-1] + 1:
            runs[-1].append(frame)
        else:
            runs.append([frame])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def _key(header: dict[str, Any], fraction: float, faces: int) -> dict[str, Any]:
    source = header.get("source") or {}
    return {"rule": RULE_VERSION, "fraction": fraction, "faces": faces, "target_track": header.get("target_track"),
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
        return Holdout(side, fraction, [int(f) for f in saved["frames"]], len(frames), saved.get("rule", ""),
                       [int(f) for f in saved.get("guard", [])])
    openings = {int(r.frame): float(expression(r.landmarks)[0]) for r in records
                if getattr(r, "landmarks", None) is not None and len(r.landmarks) == 468}
    chosen, guard = choose(frames, fraction, openings)
    rule = (f"{fraction:.0%} of the {len(frames)} target-track faces, in stretches spread over the clip and its "
            f"range of mouth openings (frames {_stretches(chosen)})"
            if chosen else f"none held out ({len(frames)} faces; fraction {fraction})")
    holdout = Holdout(side, fraction, chosen, len(frames), rule, guard)
    atomic_write_json(path, {**holdout.to_json(), "key": key})
    return holdout


def held_out_frames(ws: Workspace, side: str, records: list[Any] | None = None) -> set[int]:
    """Frame indices training must not use: the held-out faces and their guards (empty when holding
    out is off or the side is small)."""
    holdout = held_out(ws, side, records)
    return set(holdout.frames) | set(holdout.guard)


def training_faces(ws: Workspace, side: str) -> list[FaceRecord]:
    """Target-track records whose aligned crop is still on disk (the user may delete bad crops),
    less the held-out frames that quality is measured on."""
    side_dir = ws.side_dir(side)
    records = target_records(ws, side)
    held = held_out_frames(ws, side, records)
    return [r for r in records if r.frame not in held and r.file and (side_dir / r.file).is_file()]
