"""Faceset tools: order the target person's aligned faces, and move the ones to drop to a trash folder.

Methods (``by``):

* ``blur``  sharpest first; ``size`` largest face first; ``yaw`` / ``pitch`` from turned-left /
  looking-down to turned-right / looking-up (for browsing);
* ``hist``  near-duplicates: walking the faces in frame order, a face whose colour histogram
  correlates at ``similarity`` or more with one of the last faces kept is a duplicate;
* ``best``  keeps ``keep`` faces: the sharpest of each 10x10-degree yaw/pitch cell in turn, so the
  kept set covers every pose the side has, not just the frontal majority;
* ``identity``  most like the target person first (``engine.faces.identity``: distance of each
  face's embedding to the person's); faces further than ``[identity] threshold`` are someone else
  and go to the trash (with ``keep N`` only the N most alike stay);
* ``alignment``  doubtful alignments first, surest first (``engine.faces.alignment_check``: upside
  down or mirrored, landmarks the detector disagrees with, a jump against the track's neighbours, a
  face off the crop's centre), then the rest in frame order. Nothing moves: ``sort.json`` lists
  them first (with their reasons) for the wizard, the faceset tools or a look in ``aligned/``.

With ``keep N`` (blur, size, best) everything after the first N goes; ``hist`` drops its duplicates.
Rejects move to ``data_<side>/aligned_trash/<method>/``, never deleted; ``restore`` moves every
trashed face back. The order is written to ``data_<side>/sort.json`` for the wizard to show.
Training ignores faces whose crop is not in ``aligned/``, so nothing else needs rewriting.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_write_json
from engine.errors import UserError
from engine.faces import alignment_check, identity
from engine.faces.records import FaceRecord, load_header, present_faces
from engine.paths import inside
from engine.workspace import Workspace

METHODS = ("blur", "yaw", "pitch", "size", "hist", "best", "identity", "alignment")
TRASH = "aligned_trash"


def _histogram(path: Path) -> np.ndarray | None:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_4)
    if image is None:
        return None
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [16, 8, 8], [0, 180, 0, 256, 0, 256])
    return cv2.normalize(hist, hist).flatten()


def _near_duplicates(side_dir: Path, faces: list[FaceRecord], similarity: float, window: int = 8) -> list[FaceRecord]:
    import cv2

    kept: list[np.ndarray] = []
    dropped = []
    for record in sorted(faces, key=lambda r: (r.frame, r.face)):
        hist = _histogram(side_dir / record.file)
        if hist is None:
            continue
        if any(cv2.compareHist(hist, other, cv2.HISTCMP_CORREL) >= similarity for other in kept[-window:]):
            dropped.append(record)
        else:
            kept.append(hist)
    return dropped


def _best(faces: list[FaceRecord], keep: int) -> list[FaceRecord]:
    cells: dict[tuple[int, int], list[FaceRecord]] = {}
    for record in faces:
        cells.setdefault((int(record.yaw // 10), int(record.pitch // 10)), []).append(record)
    queues = [sorted(group, key=lambda r: -r.blur) for group in cells.values()]
    queues.sort(key=lambda q: -q[0].blur)
    chosen: list[FaceRecord] = []
    while len(chosen) < keep and any(queues):
        for queue in queues:
            if queue and len(chosen) < keep:
                chosen.append(queue.pop(0))
    return chosen


def order(faces: list[FaceRecord], by: str) -> list[FaceRecord]:
    keys = {"blur": lambda r: -r.blur, "size": lambda r: -max(r.box[2] - r.box[0], r.box[3] - r.box[1]),
            "yaw": lambda r: r.yaw, "pitch": lambda r: r.pitch}
    return sorted(faces, key=keys.get(by, lambda r: (r.frame, r.face)))


def _by_identity(ws: Workspace, side: str, faces: list[FaceRecord], keep: int | None,
                 progress: Any = None) -> tuple[list[FaceRecord], list[FaceRecord], dict[str, Any]]:
    """(ordered most alike first, rejected, figures): rejects are further than the threshold from
    the target person (its linked embedding, else the largest group of the set) or beyond ``keep``."""
    header = load_header(ws, side)
    person = next((p for p in header.get("people") or [] if p.get("id") == header.get("target_person")), None)
    vectors = identity.face_set_embeddings(ws.side_dir(side), faces, progress=progress)
    limit = identity.threshold(ws)
    centre = np.asarray(person["embedding"], np.float64) if person and person.get("embedding") else None
    if centre is None:
        centre = identity.largest_group_centre(vectors, limit)
    if centre is None:
        raise UserError(f"None of the {side} faces could be read.", f"Extract again: swapwizard extract WS --side {side} --force")
    dist = identity.distance(np.nan_to_num(vectors, nan=1e3), centre)
    ranked = [faces[i] for i in np.argsort(dist, kind="stable")]
    far = {id(faces[i]) for i in np.flatnonzero(dist > limit)}
    kept = [r for r in ranked if id(r) not in far][:keep] if keep is not None else \
        [r for r in ranked if id(r) not in far]
    kept_ids = {id(r) for r in kept}
    rejected = [r for r in ranked if id(r) not in kept_ids]
    figures = {"threshold": limit, "other_person": len(far),
               "median_distance": round(float(np.median(dist[dist < 1e3])), 3) if (dist < 1e3).any() else None}
    return ranked, rejected, figures


def sort_faces(ws: Workspace, side: str, by: str, keep: int | None = None, similarity: float = 0.98,
               progress: Any = None) -> dict[str, Any]:
    if by not in METHODS:
        raise UserError(f"{by!r} is not a sort method.", f"Use one of: {', '.join(METHODS)}.")
    if keep is not None and keep < 1:
        raise UserError("--keep must be at least 1.", "Give how many faces to keep, e.g. --keep 2000.")
    if keep is not None and by in ("yaw", "pitch", "hist", "alignment"):
        raise UserError(f"--keep does not apply to sorting by {by}.",
                        "Use --keep with blur, size, best or identity; hist drops near-duplicates by itself, "
                        "and alignment only puts the doubtful faces first.")
    if by == "best" and keep is None:
        raise UserError("Sorting by best needs --keep N.", "Say how many faces to keep, e.g. --keep 2000.")
    faces = present_faces(ws, side)
    if not faces:
        raise UserError(f"{side} has no aligned faces to sort.", f"Run: swapwizard extract WS --side {side}")
    side_dir = ws.side_dir(side)
    # Sorting moves files: never one outside the side folder (a hand-edited record, a link in aligned/).
    for record in faces:
        inside(side_dir, record.file, f"{ws.alignments_path(side)} (a face's file)", resolve=True)
    figures: dict[str, Any] = {}
    if by == "identity":
        ordered, rejected, figures = _by_identity(ws, side, faces, keep, progress)
    elif by == "alignment":
        header = load_header(ws, side)
        doubtful = alignment_check.doubtful_faces(side_dir, faces, header.get("source", {}).get("kind") == "images",
                                                  progress)
        by_file = {r.file: r for r in faces}
        ordered = [by_file[f["file"]] for f in doubtful]
        listed = {r.file for r in ordered}
        ordered += [r for r in order(faces, by) if r.file not in listed]
        rejected = []
        figures = {"doubtful": len(doubtful), "reasons": {f["file"]: f["reasons"] for f in doubtful}}
    elif by == "hist":
        rejected = _near_duplicates(side_dir, faces, similarity)
        ordered = [r for r in order(faces, by) if r not in rejected] + rejected
    elif by == "best":
        chosen = _best(faces, keep)
        chosen_ids = {id(r) for r in chosen}
        rejected = [r for r in faces if id(r) not in chosen_ids]
        ordered = chosen + rejected
    else:
        ordered = order(faces, by)
        rejected = ordered[keep:] if keep is not None else []
    trash = side_dir / TRASH / by
    for record in rejected:
        target = trash / record.file.split("/", 1)[-1]
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(side_dir / record.file, target)
    atomic_write_json(side_dir / "sort.json", {"by": by, "order": [r.file for r in ordered],
                                               "rejected": [r.file for r in rejected],
                                               **({"doubtful": figures["reasons"]} if by == "alignment" else {})})
    return {"side": side, "by": by, "faces": len(faces), "kept": len(faces) - len(rejected), "moved_to_trash": len(rejected),
            "trash": f"data_{side}/{TRASH}/{by}" if rejected else None,
            "first": [r.file for r in ordered[:5]], "last": [r.file for r in ordered[-5:]], **figures}


def restore(ws: Workspace, side: str) -> dict[str, Any]:
    """Move every trashed face of a side back into ``aligned/``."""
    side_dir = ws.side_dir(side)
    trash = side_dir / TRASH
    restored = 0
    if trash.is_dir():
        for path in sorted(trash.rglob("*")):
            if path.is_file():
                target = side_dir / "aligned" / path.name
                if not target.exists():
                    os.replace(path, target)
                    restored += 1
        if not any(p.is_file() for p in trash.rglob("*")):
            shutil.rmtree(trash, ignore_errors=True)
    return {"side": side, "restored": restored}
