"""Interactive merge preview: one destination frame merged with given settings, fast enough to feel live.

The slow parts (decoding the frame, running the model) are done once per frame and model and
cached, in memory and on disk under ``.swapwizard/cache/merge_preview/`` (plain ``.npz`` arrays, no
pickle), so a UI moving a slider re-merges only: well under 200 ms for a 1080p frame on a CPU
(measure it with ``python -m engine.bench merge``)::

    path = preview_frame(ws, frame_index=40, settings=MergeSettings(blur=24), model_name="default")

The ``merge_preview`` job kind wraps this for clients (``engine/jobs/merge_preview.py``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_open, atomic_write_bytes
from engine.errors import UserError
from engine.media.decode import iter_frames
from engine.media.encode import draw_mark, png_with_text, synthetic_label
from engine.media.probe import probe_cached
from engine.merge.blend import FaceGeometry, crop_face
from engine.merge.merger import merge_one
from engine.merge.settings import MergeSettings
from engine.merge.targets import target_faces
from engine.segment import store

CACHE_DIR = ".swapwizard/cache/merge_preview"
PREVIEW_PNG = ".swapwizard/previews/merge_preview.png"
PREVIEW_SMALL = ".swapwizard/previews/merge_preview_small.jpg"
#: The destination frame as it is, for a before / after view (written when the frame changes).
PREVIEW_BEFORE = ".swapwizard/previews/merge_before.png"


@dataclass
class CachedPrediction:
    """The model's output for one face, kept so a re-merge need not predict again."""

    face: np.ndarray
    mask_src: np.ndarray | None
    mask_dst: np.ndarray | None


@dataclass
class CachedFrame:
    """Everything a re-merge needs: the frame, its faces, their crops and the model's predictions."""

    frame: np.ndarray
    faces: list[FaceGeometry]
    crops: list[np.ndarray]
    predictions: list[CachedPrediction]


_MEMORY: OrderedDict[str, CachedFrame] = OrderedDict()
_MEMORY_SIZE = 8
_MODELS: dict[str, Any] = {}


def _files_stamp(folder: Path) -> list[Any]:
    if not folder.is_dir():
        return []
    return sorted([p.name, p.stat().st_size, int(p.stat().st_mtime)] for p in folder.iterdir() if p.is_file())


def _masks_stamp(ws: Any) -> list[int] | None:
    """When the destination's segmenter masks (or painted ones, or the review's marks) were last written
    (engine.segment.store)."""
    stamps = [int(p.stat().st_mtime_ns) for p in (ws.side_dir("dst") / store.MASKS / store.INDEX,
                                                  ws.side_dir("dst") / store.USER,
                                                  ws.side_dir("dst") / store.MARKS) if p.exists()]
    return stamps or None


def cache_key(ws: Any, frame_index: int, model_name: str, morph: float = 1.0, runtime: str = "torch") -> str:
    """Changes when the destination, its alignments, the model's checkpoints, (AMP) the morph or the
    runtime change."""
    dst = ws.source("dst")
    alignments = ws.alignments_path("dst")
    parts = [model_name, frame_index, _files_stamp(ws.model_dir(model_name)),
             [dst.name, dst.stat().st_size, int(dst.stat().st_mtime)] if dst and dst.is_file() else str(dst),
             [alignments.stat().st_size, int(alignments.stat().st_mtime)] if alignments.exists() else None,
             _masks_stamp(ws)] + ([] if morph == 1.0 else [round(morph, 4)]) + ([] if runtime == "torch" else [runtime])
    return hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def _save(path: Path, cached: CachedFrame) -> None:
    arrays: dict[str, np.ndarray] = {"frame": cached.frame, "count": np.array(len(cached.faces))}
    for i, (face, crop, pred) in enumerate(zip(cached.faces, cached.crops, cached.predictions)):
        arrays[f"transform{i}"] = np.asarray(face.transform, np.float64)
        arrays[f"size{i}"] = np.array(face.size)
        arrays[f"landmarks{i}"] = np.asarray(face.landmarks, np.float64)
        if face.polygon is not None:
            arrays[f"polygon{i}"] = np.asarray(face.polygon, np.float64)
        if face.segment is not None and face.segment_transform is not None:  # the segmenter's mask file
            arrays[f"segment{i}"] = np.array(str(face.segment))
            arrays[f"segment_transform{i}"] = np.asarray(face.segment_transform, np.float64)
        arrays[f"crop{i}"] = crop
        arrays[f"face{i}"] = pred.face
        for name in ("mask_src", "mask_dst"):
            value = getattr(pred, name, None)
            if value is not None:
                arrays[f"{name}{i}"] = np.asarray(value, np.float32)
    with atomic_open(path) as handle:
        np.savez(handle, **arrays)


def _load(path: Path) -> CachedFrame | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            faces, crops, preds = [], [], []
            for i in range(int(data["count"])):
                faces.append(FaceGeometry(data[f"transform{i}"], int(data[f"size{i}"]), data[f"landmarks{i}"],
                                          data[f"polygon{i}"] if f"polygon{i}" in data else None,
                                          str(data[f"segment{i}"]) if f"segment{i}" in data else None,
                                          data[f"segment_transform{i}"] if f"segment_transform{i}" in data else None))
                crops.append(data[f"crop{i}"])
                preds.append(CachedPrediction(data[f"face{i}"], data[f"mask_src{i}"] if f"mask_src{i}" in data else None,
                                         data[f"mask_dst{i}"] if f"mask_dst{i}" in data else None))
            return CachedFrame(data["frame"], faces, crops, preds)
    except (OSError, ValueError, KeyError):
        return None


def _model(ws: Any, model_name: str, device: str, runtime: str = "torch") -> Any:
    # torch only when a frame is predicted: one from the disk cache re-merges without it, in a worker
    # that has not paid the seconds torch takes to import.
    from engine.interop.load import load_model

    key = f"{ws.root}:{model_name}:{runtime}:{_files_stamp(ws.model_dir(model_name))}"
    if key not in _MODELS:
        _MODELS.clear()
        _MODELS[key] = load_model(ws.model_dir(model_name), device=device, runtime=runtime)
    return _MODELS[key]


def _decode(ws: Any, frame_index: int) -> np.ndarray:
    dst = ws.source("dst")
    if dst is None:
        raise UserError("The workspace has no destination video.",
                        f"Add one with: swapwizard sources {ws.root} --dst VIDEO")
    # A frame late in a film: seek there rather than decode every frame before it (minutes at 1080p).
    seek = frame_index > 0 and dst.is_file() and probe_cached(dst).seekable
    for index, _, frame in iter_frames(dst, start=frame_index, seek=seek):
        if index == frame_index:
            return frame
        break
    raise UserError(f"The destination has no frame {frame_index}.", "Choose a frame inside the video.")


def load_frame(ws: Any, frame_index: int, model_name: str = "default", device: str = "auto",
               model: Any = None, morph: float = 1.0, runtime: str = "torch") -> CachedFrame:
    """The frame with its predictions: from memory, from the disk cache, or computed and cached
    (``morph``: ``[merge] morph``, which only an AMP model's prediction depends on; ``runtime``:
    ``[merge] runtime``)."""
    key = cache_key(ws, frame_index, model_name, morph, runtime)
    if key in _MEMORY:
        _MEMORY.move_to_end(key)
        return _MEMORY[key]
    path = ws.root / CACHE_DIR / f"{frame_index:06d}-{key}.npz"
    cached = _load(path) if path.exists() else None
    if cached is None:
        model = model or _model(ws, model_name, device, runtime)
        if hasattr(model, "morph"):
            model.morph = morph
        frame = _decode(ws, frame_index)
        faces = target_faces(ws, getattr(model, "face_type", None)).get(frame_index, [])
        crops = [crop_face(frame, face, model.resolution) for face in faces]
        predictions = [CachedPrediction(p.face, getattr(p, "mask_src", None), getattr(p, "mask_dst", None))
                       for p in (model.predict(crops) if crops else [])]
        cached = CachedFrame(frame, faces, crops, predictions)
        for old in path.parent.glob(f"{frame_index:06d}-*.npz") if path.parent.exists() else []:
            old.unlink(missing_ok=True)  # stale entries of this frame (older model or settings)
        _save(path, cached)
    _MEMORY[key] = cached
    while len(_MEMORY) > _MEMORY_SIZE:
        _MEMORY.popitem(last=False)
    return cached


def merge_cached(cached: CachedFrame, settings: MergeSettings) -> np.ndarray:
    """Re-merge a cached frame with ``settings`` (the part a slider move pays for)."""
    frame, _, _ = merge_one(cached.frame.copy(), cached.faces, cached.predictions, cached.crops, settings.check())
    if settings.mark:
        draw_mark(frame)
    return frame


def write_preview(ws: Any, frame: np.ndarray) -> tuple[Path, Path]:
    """The merged frame as a labelled PNG (fast compression) plus a small JPEG for terminals."""
    import cv2

    png = ws.root / PREVIEW_PNG
    atomic_write_bytes(png, png_with_text(frame, synthetic_label(), compression=1))
    small_width = min(480, frame.shape[1])
    small = cv2.resize(frame, (small_width, max(1, round(frame.shape[0] * small_width / frame.shape[1]))),
                       interpolation=cv2.INTER_AREA)
    ok, jpg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 85])
    atomic_write_bytes(ws.root / PREVIEW_SMALL, jpg.tobytes())
    return png, ws.root / PREVIEW_SMALL


_BEFORE_WRITTEN: dict[str, Any] = {}


def write_before(ws: Any, cached: CachedFrame, frame_index: int) -> Path:
    """The unmerged destination frame as a PNG (the "before" beside the preview); rewritten only when
    the frame changes, so moving a knob costs nothing more."""
    import cv2

    path = ws.root / PREVIEW_BEFORE
    key = (str(ws.root), frame_index, id(cached.frame), cached.frame.shape)
    if _BEFORE_WRITTEN.get("key") != key or not path.exists():
        ok, png = cv2.imencode(".png", cached.frame, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise UserError("Could not encode the destination frame as PNG.", "Try another frame.")
        atomic_write_bytes(path, png.tobytes())
        _BEFORE_WRITTEN["key"] = key
    return path


def preview_frame(ws: Any, frame_index: int, settings: MergeSettings, model_name: str = "default",
                  device: str = "auto") -> Path:
    """Merge one destination frame with ``settings``; returns the PNG's path (cached prediction)."""
    started = time.perf_counter()
    cached = load_frame(ws, frame_index, model_name, device, morph=settings.morph, runtime=settings.runtime)
    png, _ = write_preview(ws, merge_cached(cached, settings))
    preview_frame.last_ms = (time.perf_counter() - started) * 1000.0  # type: ignore[attr-defined]
    return png
