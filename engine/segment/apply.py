"""The segmenter applied to every face of a side: one greyscale mask PNG per aligned crop.

Masks are written at the crop's size into ``data_<side>/.masks_work/`` and, when every face has
one, moved into ``data_<side>/masks/`` in one rename (the old folder goes only after the new one is in
place), with ``index.json``: per face its uncertainty (mean 4p(1-p) over the face's neighbourhood),
its IoU with the landmark hull and the hull's occluded fraction (how much of the hull the segmenter
calls not-face), its frame and crop file, and which segmenter made them. An interrupted run keeps the work folder and
continues where it stopped, as long as the segmenter is the same.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.atomic import atomic_write_json, fsync_dir, read_json
from engine.faces.records import face_mask
from engine.segment import store
from engine.segment.data import side_records
from engine.segment.model import Segmenter

WORK = ".masks_work"
BATCH = 32


def segmenter_id(segmenter: Segmenter) -> dict[str, Any]:
    """What made a set of masks: the segmenter's shape, iteration and a digest of its weights."""
    import hashlib

    d = segmenter.description
    digest = hashlib.sha1()
    for name, tensor in sorted(segmenter.net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    return {"iteration": d.iteration, "resolution": d.resolution, "width": d.width, "weights": digest.hexdigest()[:16]}


def up_to_date(ws: Any, side: str, segmenter: Segmenter) -> bool:
    """Whether every present face of ``side`` has a mask from this segmenter."""
    info = store.index(ws.side_dir(side))
    if info.get("segmenter") != segmenter_id(segmenter):
        return False
    faces = info["faces"]
    return all(store.stem(r.file) in faces for r in side_records(ws, side))


def face_stats(probability: np.ndarray, hull: np.ndarray) -> dict[str, float]:
    """Uncertainty, IoU with the hull, and the hull's occluded fraction, for one face."""
    inside = hull > 127
    near = cv2.dilate(inside.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    p = probability[near] if near.any() else probability.reshape(-1)
    visible = probability > 0.5
    union = np.logical_or(visible, inside).sum()
    return {"uncertainty": round(float(np.mean(4 * p * (1 - p))), 4),
            "hull_iou": round(float(np.logical_and(visible, inside).sum() / union) if union else 1.0, 4),
            "occluded": round(float(1 - np.logical_and(visible, inside).sum() / max(1, inside.sum())), 4)}


def apply_side(ws: Any, side: str, segmenter: Segmenter, progress: Callable[[int, int], None] | None = None,
               cancelled: Callable[[], None] | None = None) -> dict[str, Any]:
    """Write every present face's mask; returns counts and the figures of the index."""
    side_dir = ws.side_dir(side)
    records = side_records(ws, side)
    work = side_dir / WORK
    ident = segmenter_id(segmenter)
    stamp = work / "segmenter.json"
    if work.is_dir() and read_json(stamp, default=None) != ident:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    atomic_write_json(stamp, ident)
    partial = work / "partial.jsonl"
    faces: dict[str, Any] = {}
    if partial.is_file():
        for line in partial.read_text(encoding="utf-8").splitlines():
            try:
                name, info = json.loads(line)
            except ValueError:
                break
            if (work / f"{name}.png").is_file():
                faces[name] = info
    todo = [r for r in records if store.stem(r.file) not in faces]
    res = segmenter.resolution
    with open(partial, "a", encoding="utf-8") as log:
        for start in range(0, len(todo), BATCH):
            if cancelled is not None:
                cancelled()
            chunk = todo[start:start + BATCH]
            crops, kept = [], []
            for record in chunk:
                crop = cv2.imread(str(side_dir / record.file), cv2.IMREAD_COLOR)
                if crop is not None:
                    crops.append(crop)
                    kept.append(record)
            probabilities = segmenter.predict(crops) if crops else []
            for record, probability in zip(kept, probabilities):
                name = store.stem(record.file)
                info = {**face_stats(probability, face_mask(record, res)), "frame": int(record.frame),
                        "file": record.file}
                size = int(record.size)
                full = cv2.resize(probability, (size, size), interpolation=cv2.INTER_LINEAR) if size != res \
                    else probability
                ok, data = cv2.imencode(".png", np.clip(full * 255 + 0.5, 0, 255).astype(np.uint8),
                                        [cv2.IMWRITE_PNG_COMPRESSION, 1])
                if not ok:
                    raise OSError(f"could not encode the mask of {record.file}")
                (work / f"{name}.png").write_bytes(data.tobytes())
                faces[name] = info
                log.write(json.dumps([name, info]) + "\n")
            log.flush()
            if progress is not None:
                progress(len(faces), len(records))
        log.flush()
        os.fsync(log.fileno())
    partial.unlink()
    stamp.unlink()
    atomic_write_json(work / store.INDEX, {"segmenter": ident, "faces": faces})
    fsync_dir(work)
    _swap_in(work, side_dir / store.MASKS)
    occluded = sum(1 for info in faces.values() if info["occluded"] >= store.OCCLUDED_FRACTION)
    return {"side": side, "faces": len(faces), "occluded": occluded,
            "uncertainty": round(float(np.mean([f["uncertainty"] for f in faces.values()])), 4) if faces else None,
            "hull_iou": round(float(np.median([f["hull_iou"] for f in faces.values()])), 4) if faces else None}


def _swap_in(new: Path, final: Path) -> None:
    """Replace ``final`` with ``new`` by renames: a reader sees the old masks or the new ones."""
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.rename(final, old)
    os.rename(new, final)
    fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)
