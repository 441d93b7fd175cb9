"""The mask review: a side's faces worst first with their mask over them, and the user's marks on them.

What the wizard's mask review view (``tui/screens/mask_review.py``) shows and does; no OpenCV or torch
here (the wizard loads this module), pictures are drawn with Pillow.

- ``faces(ws, side)``: every masked face of the side, worst first by ``store.doubt`` (the segmenter's
  uncertainty plus its disagreement with the landmark hull: the same order as ``masks export --worst``
  and the segment job's review sheet), with its figures, its mark and whether it has a painted label.
- ``overlay(ws, side, face)``: a PNG of the crop beside the crop with its mask over it (red: not face, as
  merging reads the mask: ``store.visible``),
  cached under ``.swapwizard/previews/mask_review/<side>/`` and redrawn when the crop or mask changes.
- ``set_mark(ws, side, name, mark)``: marks live in ``data_<side>/masks_marks.json`` (JSON, written
  atomically) and change the result the way an XSeg user expects:

  * ``accept``: the mask is right. It is copied to ``masks_user/<name>.png``, a painted label, which
    outranks the segmenter's mask in merging and the face model's training, and is taught (four times
    as often as an automatic label) when the segmenter retrains. A face that already has a label
    painted in an image editor keeps it.
  * ``reject``: the mask is wrong. The segmenter's mask of this face is no longer used (merging and
    training fall back to the landmark hull for it, ``store.mask_for``), its automatic label is left
    out when the segmenter retrains, and ``masks export --marked rejected`` writes the rejected faces
    to paint; ``masks import`` of a painted mask for the face clears its mark (the painting decides).
  * ``clear``: no mark; a label that ``accept`` wrote goes with it (one painted in an editor stays).

  Any change to the marks changes the labels' fingerprint (``trainer.labels_fingerprint``), so the next
  ``segment`` job retrains, as it does after ``masks import``.
"""

from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_write_bytes, atomic_write_json
from engine.errors import UserError
from engine.segment import store

MARKS = (store.ACCEPT, store.REJECT)
OVERLAY_DIR = ".swapwizard/previews/mask_review"
#: The red drawn over what the mask calls not face, and how strongly.
TINT, TINT_ALPHA = (230, 40, 40), 0.6
CROP_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")


def _crop_files(side_dir: Path) -> dict[str, str]:
    """``{stem: "aligned/<stem>.<ext>"}`` for the crops on disk (one listing, for old indexes)."""
    folder = side_dir / "aligned"
    if not folder.is_dir():
        return {}
    return {path.stem: f"aligned/{path.name}" for path in folder.iterdir() if path.suffix.lower() in CROP_EXTENSIONS}


def _frame_of(name: str) -> int | None:
    head = name.split("_", 1)[0]
    return int(head) if head.isdigit() else None


def faces(ws: Any, side: str) -> list[dict[str, Any]]:
    """The side's masked faces whose crop is on disk, worst first (most doubted by the segmenter)."""
    side_dir = ws.side_dir(side)
    indexed = store.index(side_dir)["faces"]
    marks = store.marks(side_dir)
    painted_dir = side_dir / store.USER
    painted = {path.stem for path in painted_dir.glob("*.png")} if painted_dir.is_dir() else set()
    on_disk = _crop_files(side_dir)
    shown = []
    for name, info in indexed.items():
        if not isinstance(info, dict):
            continue
        crop = info.get("file") if isinstance(info.get("file"), str) else on_disk.get(name)
        if crop is None or store.stem(crop) != name or name not in on_disk:
            continue  # deleted since (or a name that is not a crop of this folder)
        frame = info.get("frame")
        shown.append({"name": name, "file": crop, "frame": frame if isinstance(frame, int) else _frame_of(name),
                      "doubt": round(store.doubt(info), 4), "uncertainty": info.get("uncertainty"),
                      "hull_iou": info.get("hull_iou"), "occluded": info.get("occluded"),
                      "mark": (marks.get(name) or {}).get("mark"), "painted": name in painted})
    shown.sort(key=lambda face: (-face["doubt"], face["name"]))
    return shown


def counts(found: list[dict[str, Any]]) -> dict[str, int]:
    """How many faces are accepted, rejected, unmarked and painted."""
    return {"faces": len(found), "accepted": sum(f["mark"] == store.ACCEPT for f in found),
            "rejected": sum(f["mark"] == store.REJECT for f in found),
            "unmarked": sum(f["mark"] is None for f in found), "painted": sum(bool(f["painted"]) for f in found)}


def _digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()[:16]


def _write_marks(side_dir: Path, marks: dict[str, Any]) -> None:
    atomic_write_json(side_dir / store.MARKS, {"version": 1, "faces": marks})


def set_mark(ws: Any, side: str, name: str, mark: str | None) -> dict[str, Any]:
    """Mark face ``name`` of ``side`` ``accept``, ``reject`` or None (clear); returns its new mark record."""
    if mark not in (*MARKS, None):
        raise UserError(f"{mark!r} is not a mask review mark.", "Use accept, reject or clear.")
    side_dir = ws.side_dir(side)
    if Path(name).name != name or name.startswith(".") or name not in store.index(side_dir)["faces"]:
        raise UserError(f"The {side} side has no masked face {name}.", f"Write the masks first: swapwizard segment {ws.root}")
    marks = dict(store.marks(side_dir))
    before = marks.get(name) or {}
    painted = side_dir / store.USER / f"{name}.png"
    ours = bool(before.get("label")) and painted.is_file() and _digest(painted.read_bytes()) == before["label"]
    record: dict[str, Any] = {"mark": mark, "time": round(time.time(), 3)}
    if mark == store.ACCEPT:
        if painted.is_file():
            record["label"] = before.get("label") if ours else None  # a label painted in an editor stays
        else:
            source = side_dir / store.MASKS / f"{name}.png"
            if not source.is_file():
                raise UserError(f"Face {name} has no segmenter mask to accept.", f"Write the masks: swapwizard segment {ws.root}")
            data = source.read_bytes()
            painted.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(painted, data)
            record["label"] = _digest(data)
    elif ours:  # reject or clear: the label an accept wrote goes (one painted in an editor stays)
        painted.unlink()
    if mark is None:
        marks.pop(name, None)
    else:
        marks[name] = record
    _write_marks(side_dir, marks)
    return record


def overlay_path(ws: Any, side: str, name: str) -> Path:
    return Path(ws.root) / OVERLAY_DIR / side / f"{name}.png"


def overlay(ws: Any, side: str, face: dict[str, Any]) -> Path | None:
    """The face's crop beside the crop with its mask over it (painted label > segmenter's mask), as a
    PNG under ``.swapwizard/previews/mask_review/``; redrawn only when the crop or the mask is newer."""
    from PIL import Image, UnidentifiedImageError

    side_dir = ws.side_dir(side)
    name = face["name"]
    crop_path = side_dir / face["file"]
    mask_file = next((p for p in (side_dir / store.USER / f"{name}.png", side_dir / store.MASKS / f"{name}.png")
                      if p.is_file()), None)
    target = overlay_path(ws, side, name)
    sources = [p for p in (crop_path, mask_file) if p is not None]
    try:
        newest = max(p.stat().st_mtime_ns for p in sources)
        if target.is_file() and target.stat().st_mtime_ns >= newest:
            return target
        with Image.open(crop_path) as image:
            crop = np.asarray(image.convert("RGB"))
        mask = None
        if mask_file is not None:
            with Image.open(mask_file) as image:
                grey = image.convert("L")
                if grey.size != (crop.shape[1], crop.shape[0]):
                    grey = grey.resize((crop.shape[1], crop.shape[0]), Image.Resampling.BILINEAR)
                mask = np.asarray(grey)
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    covered = crop.astype(np.float32)
    if mask is not None:
        hidden = (1.0 - store.visible(mask))[..., None] * TINT_ALPHA  # as merging and training read it
        covered = covered * (1 - hidden) + np.array(TINT, np.float32) * hidden
    gap = np.full((crop.shape[0], max(2, crop.shape[1] // 32), 3), 24, np.uint8)
    both = np.concatenate([crop, gap, np.clip(covered + 0.5, 0, 255).astype(np.uint8)], axis=1)
    buffer = io.BytesIO()
    Image.fromarray(both).save(buffer, format="PNG", compress_level=1)
    atomic_write_bytes(target, buffer.getvalue())
    return target


def painted_over(ws: Any, side: str, names: set[str]) -> int:
    """After ``masks import``: the imported faces' marks go (their painted label decides now); returns how many."""
    side_dir = ws.side_dir(side)
    marks = dict(store.marks(side_dir))
    gone = [name for name in names if name in marks]
    if gone:
        for name in gone:
            marks.pop(name)
        _write_marks(side_dir, marks)
    return len(gone)
