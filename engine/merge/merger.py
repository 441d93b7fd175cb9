"""The merge loop: destination frames in, merged frames out, prediction batched, decoding overlapped.

``merge_frames`` is what the merge job, the benchmark and the tests call. It knows nothing about
workspaces: it takes a frame iterator, the faces per frame index, a predict function and a sink.

- Decoding runs on a background thread (``engine.media.decode.DecodeAhead``; OpenCV releases the GIL
  while it decodes), encoding in the ffmpeg process the sink pipes into, so the three overlap on a
  multi-core machine.
- Faces of several frames are predicted in one batch (the model is much faster per face in batches
  on a GPU). Frames without a face of the target track pass through untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.media.decode import DecodeAhead, Frame
from engine.merge.blend import FaceGeometry, crop_face, paste_face
from engine.merge.settings import MergeSettings
from engine.report import NullReporter, Reporter

#: crops (uint8 BGR at the model resolution) -> objects with .face, .mask_src, .mask_dst
Predictor = Callable[[list[np.ndarray]], Sequence[Any]]
#: (frame index, merged frame uint8 BGR, mask uint8 or None) -> None
Sink = Callable[[int, np.ndarray, "np.ndarray | None"], None]


@dataclass
class MergeStats:
    frames: int = 0
    faces: int = 0
    predict_s: float = 0.0
    merge_s: float = 0.0
    sink_s: float = 0.0
    wall_s: float = 0.0
    boxes: dict[int, list[tuple[int, int, int, int]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"frames": self.frames, "faces": self.faces, "predict_s": round(self.predict_s, 3),
                "merge_s": round(self.merge_s, 3), "encode_wait_s": round(self.sink_s, 3),
                "wall_s": round(self.wall_s, 3)}


def merge_one(frame: np.ndarray, faces: Sequence[FaceGeometry], predictions: Sequence[Any],
              crops: Sequence[np.ndarray], settings: MergeSettings,
              with_mask: bool = False) -> tuple[np.ndarray, np.ndarray | None, list[tuple[int, int, int, int]]]:
    """Paste each face's prediction into ``frame`` (in place); returns it, its mask, the boxes."""
    mask = np.zeros(frame.shape[:2], np.uint8) if with_mask else None
    boxes = []
    for face, predicted, crop in zip(faces, predictions, crops):
        boxes.append(paste_face(frame, face, predicted.face, getattr(predicted, "mask_src", None),
                                getattr(predicted, "mask_dst", None), crop, settings, mask))
    return frame, mask, boxes


def merge_frames(frames: Iterable[Frame], faces_by_frame: dict[int, list[FaceGeometry]],
                 predict: Predictor, resolution: int, settings: MergeSettings, sink: Sink,
                 report: Reporter | None = None, total: int | None = None, done_before: int = 0,
                 batch_frames: int = 8, with_mask: bool = False, keep_boxes: bool = False) -> MergeStats:
    """Merge every frame from ``frames`` and hand it to ``sink`` in order."""
    report = report or NullReporter()
    stats = MergeStats()
    started = time.perf_counter()
    batch: list[Frame] = []

    def flush() -> None:
        crops, owners = [], []
        for position, (index, _, frame) in enumerate(batch):
            for face in faces_by_frame.get(index, ()):
                crops.append(crop_face(frame, face, resolution))
                owners.append(position)
        predictions: Sequence[Any] = []
        if crops:
            t0 = time.perf_counter()
            predictions = predict(crops)
            stats.predict_s += time.perf_counter() - t0
        for position, (index, _, frame) in enumerate(batch):
            report.check_cancelled()
            chosen = [i for i, owner in enumerate(owners) if owner == position]
            t0 = time.perf_counter()
            merged, mask, boxes = merge_one(frame, faces_by_frame.get(index, []), [predictions[i] for i in chosen],
                                            [crops[i] for i in chosen], settings, with_mask)
            t1 = time.perf_counter()
            sink(index, merged, mask)
            stats.sink_s += time.perf_counter() - t1
            stats.merge_s += t1 - t0
            stats.frames += 1
            stats.faces += len(chosen)
            if keep_boxes and boxes:
                stats.boxes[index] = boxes
            report.progress("merge", done_before + stats.frames, total, unit="frames")
        batch.clear()

    with DecodeAhead(frames, depth=8, name="merge-decode") as decoded:
        for item in decoded:
            batch.append(item)
            if len(batch) >= batch_frames:
                flush()
    if batch:
        flush()
    stats.wall_s = time.perf_counter() - started
    return stats
