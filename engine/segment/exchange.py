"""Masks out for editing and back in as labels: ``swapwizard masks export`` / ``masks import``.

Export writes, per face, ``<name>.png`` (the aligned crop) and ``<name>_mask.png`` (its current mask:
the painted one, else the segmenter's, else the landmark outline), greyscale, 255 = face, at the crop's
size, plus ``README.txt``. Edit the masks in any image editor (paint the occluder black, the face white)
and import the folder: every ``*_mask.png`` becomes a painted label of its face, which outranks the
automatic labels (in training the segmenter, in the face model's masked loss, and in merging).

Import checks the whole folder before it changes anything: an unknown name, a mask of the wrong size
or not greyscale is one sentence and a hint, and nothing is imported. The labels then go in by one
folder rename (``masks_user/``), so an interrupted import leaves the old labels whole.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.atomic import atomic_write_bytes, fsync_dir
from engine.errors import UserError
from engine.faces.records import FaceRecord, face_mask
from engine.segment import review, store
from engine.segment.data import read_mask, side_records
from engine.segment.painted import SUFFIX, check_folder

README = """Face crops and their masks from swapwizard (side {side}).

<name>.png is the aligned face; <name>_mask.png is its mask: white = face, black = not face (a hand,
a microphone, hair, the background). Paint the masks in any image editor, keep their size
({size} x {size}) and greyscale, delete the pairs you do not want to change, then:

    swapwizard masks import {root} {folder} --side {side}

The imported masks outrank the automatic ones, and the segmenter retrains with them.
"""


def parse_frames(text: str) -> set[int] | None:
    """``"10-50,80"`` -> {10..50, 80}; "" -> None (all)."""
    text = (text or "").strip()
    if not text:
        return None
    frames: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match:
            raise UserError(f"--frames {text!r} is not a list of frames.", "For example: --frames 10-50,80")
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
        if high < low:
            raise UserError(f"--frames {part.strip()!r} runs backwards.", "Write the lower frame first: 10-50.")
        frames.update(range(low, high + 1))
    return frames


def current_mask(side_dir: Path, record: FaceRecord) -> np.ndarray:
    """The mask a face uses now (painted > segmenter's > the landmark outline), at its crop size."""
    path = store.mask_for(side_dir, record.file)
    mask = read_mask(path, record.size) if path is not None else None
    return mask if mask is not None else face_mask(record, record.size)


def worst_first(side_dir: Path, records: list[FaceRecord]) -> list[FaceRecord]:
    """Faces ordered by how much the segmenter doubts them (``store.doubt``), worst first."""
    faces = store.index(side_dir)["faces"]
    return sorted(records, key=lambda r: -store.doubt(faces.get(store.stem(r.file), {})))


MARKED = ("", "rejected", "accepted", "unmarked")


def export_masks(ws: Any, side: str, folder: Path, frames: str = "", worst: int = 0,
                 progress: Any = None, marked: str = "") -> dict[str, Any]:
    """Write crop + mask pairs; ``marked`` keeps only the faces with that mark in the wizard's mask review
    (``rejected``: the ones to paint)."""
    records = side_records(ws, side)
    if marked not in MARKED:
        raise UserError(f"--marked {marked} is not one of rejected, accepted, unmarked.", "For example: --marked rejected")
    if marked:
        side_dir = ws.side_dir(side)
        kinds = {name: mark.get("mark") for name, mark in store.marks(side_dir).items()}
        want = {"rejected": store.REJECT, "accepted": store.ACCEPT, "unmarked": None}[marked]
        records = [r for r in records if kinds.get(store.stem(r.file)) == want]
        if not records:
            raise UserError(f"No {side} face is marked {marked} in the mask review.",
                            "Mark faces in the wizard's mask review (m), or leave out --marked.")
    wanted = parse_frames(frames)
    if wanted is not None:
        records = [r for r in records if r.frame in wanted]
        if not records:
            raise UserError(f"No {side} face is in frames {frames}.", "Choose frames that show the face "
                            f"(swapwizard check {ws.root} lists them).")
    side_dir = ws.side_dir(side)
    if worst:
        records = worst_first(side_dir, records)[:worst]
    folder.mkdir(parents=True, exist_ok=True)
    for number, record in enumerate(records, 1):
        crop = cv2.imread(str(side_dir / record.file), cv2.IMREAD_COLOR)
        if crop is None:
            continue
        name = store.stem(record.file)
        for path, image in ((folder / f"{name}.png", crop), (folder / f"{name}{SUFFIX}", current_mask(side_dir, record))):
            ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 3])
            if not ok:
                raise OSError(f"could not encode {path.name}")
            atomic_write_bytes(path, data.tobytes())
        if progress is not None:
            progress(number, len(records))
    (folder / "README.txt").write_text(README.format(side=side, size=records[0].size, root=ws.root, folder=folder),
                                       encoding="utf-8")
    return {"side": side, "faces": len(records), "folder": str(folder)}


def import_masks(ws: Any, side: str, folder: Path) -> dict[str, Any]:
    records = {store.stem(r.file): r for r in side_records(ws, side)}
    # all checked first (the CLI ran the same check on the crops before submitting this job)
    painted = check_folder(Path(folder), side, {name: int(r.size) for name, r in records.items()}, ws.root)
    side_dir = ws.side_dir(side)
    final = side_dir / store.USER
    staging = side_dir / (store.USER + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    if final.is_dir():
        shutil.copytree(final, staging)
    else:
        staging.mkdir()
    for name, mask in painted.items():
        ok, data = cv2.imencode(".png", mask, [cv2.IMWRITE_PNG_COMPRESSION, 3])
        if not ok:
            raise OSError(f"could not encode the mask of {name}")
        with open(staging / f"{name}.png", "wb") as handle:
            handle.write(data.tobytes())
            handle.flush()
            os.fsync(handle.fileno())
    fsync_dir(staging)
    old = side_dir / (store.USER + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.rename(final, old)
    os.rename(staging, final)
    fsync_dir(side_dir)
    shutil.rmtree(old, ignore_errors=True)
    settled = review.painted_over(ws, side, set(painted))  # a rejected face painted now is no longer rejected
    return {"side": side, "imported": len(painted), "painted": len(list(final.glob("*.png"))), "unrejected": settled}


REVIEW_PATH = ".swapwizard/previews/masks_review_{side}.jpg"


def review_sheet(ws: Any, side: str, count: int = 24, thumb: int = 112) -> str | None:
    """A JPEG of the ``count`` faces the segmenter doubts most (worst first), each with its mask over it
    (red: not face) and its frame number, for the wizard and the job's preview; returns its workspace path."""
    side_dir = ws.side_dir(side)
    faces = store.index(side_dir)["faces"]
    if not faces:
        return None
    records = worst_first(side_dir, side_records(ws, side))[:count]
    columns = 6
    rows = max(1, -(-len(records) // columns))
    sheet = np.full((rows * thumb, columns * thumb, 3), 32, np.uint8)
    for i, record in enumerate(records):
        crop = cv2.imread(str(side_dir / record.file), cv2.IMREAD_COLOR)
        if crop is None:
            continue
        crop = cv2.resize(crop, (thumb, thumb), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(current_mask(side_dir, record), (thumb, thumb), interpolation=cv2.INTER_AREA)
        hidden = (255 - mask).astype(np.float32)[..., None] / 255.0 * 0.55
        tile = (crop * (1 - hidden) + np.array([40, 40, 230], np.float32) * hidden).astype(np.uint8)
        info = faces.get(store.stem(record.file), {})
        cv2.putText(tile, f"{record.frame} u{info.get('uncertainty', 0):.2f}", (3, thumb - 5),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 255, 255), 1, cv2.LINE_AA)
        y, x = (i // columns) * thumb, (i % columns) * thumb
        sheet[y:y + thumb, x:x + thumb] = tile
    ok, data = cv2.imencode(".jpg", sheet, [cv2.IMWRITE_JPEG_QUALITY, 88])
    if not ok:
        raise OSError("could not encode the mask review sheet")
    relative = REVIEW_PATH.format(side=side)
    atomic_write_bytes(Path(ws.root) / relative, data.tobytes())
    return relative
