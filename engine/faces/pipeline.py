"""The extraction's three overlapping stages: decode -> find faces -> crop and write.

On 2 cores: a decoder thread (``engine.media.decode.DecodeAhead``; OpenCV/FFmpeg release the GIL
while decoding), the caller's thread running detection, mesh and tracking (mediapipe releases the
GIL inside its graph), and a writer thread that warps the crops, scores them, encodes JPEG/PNG and
appends the records. Bounded queues between them keep memory flat and let the slowest stage set the
pace.

Resumable: the writer appends records to ``partial.jsonl`` and, every couple of seconds, flushes and
fsyncs it, then writes ``checkpoint.json`` atomically with the next frame to do, the byte length of
the partial file at that point and the tracker's state. After a kill -9 the next run truncates the
partial file to that length, restores the tracker and decodes on from that frame; the crops of the
frames after it are simply written again.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_write_json
from engine.faces.quality import blur_score, brightness, head_pose, mask_polygon
from engine.faces.records import FaceRecord
from engine.faces.track import Found, Tracker, bounds
from engine.media.decode import DecodeAhead, iter_frames
from engine.report import Reporter

CHECKPOINT_EVERY_S = 2.0
_END = object()


@dataclass
class WriteOptions:
    face_type: str
    size: int
    crop_format: str = "jpg"   # "jpg" (fast, small) or "png" (lossless, about 20x slower to encode)
    jpeg_quality: int = 95
    write_frames: bool = False


@dataclass
class FrameWork:
    index: int
    timestamp: float
    frame: np.ndarray
    faces: list[Found]
    checkpoint: dict[str, Any] | None
    #: Per face, the outlines (frame pixels) of hands near it (engine.faces.hands); None: not looked for.
    hands: list[list[np.ndarray]] | None = None


class Writer(threading.Thread):
    """Crops, scores and writes the faces of each frame; records go to the partial file."""

    def __init__(self, side_dir: Path, work_dir: Path, options: WriteOptions, partial_bytes: int) -> None:
        super().__init__(name="extract-writer", daemon=True)
        self.side_dir, self.work_dir, self.options = side_dir, work_dir, options
        self.inbox: queue.Queue = queue.Queue(maxsize=8)
        self.error: BaseException | None = None
        self.faces_written = 0
        self.cpu_s = 0.0
        (side_dir / "aligned").mkdir(parents=True, exist_ok=True)
        if options.write_frames:
            (side_dir / "frames").mkdir(exist_ok=True)
        partial = work_dir / "partial.jsonl"
        self.handle = open(partial, "r+b" if partial.exists() else "w+b")  # noqa: SIM115 - closed in run()
        self.handle.truncate(partial_bytes)
        self.handle.seek(partial_bytes)

    def run(self) -> None:
        try:
            while True:
                work = self.inbox.get()
                if work is _END:
                    break
                self._write(work)
                if work.checkpoint is not None:
                    self._checkpoint(work.checkpoint)
        except BaseException as exc:  # handed to the main thread, which re-raises it
            self.error = exc
            while self.inbox.get() is not _END:
                pass
        finally:
            self.handle.close()
            self.cpu_s = time.thread_time()

    def _write(self, work: FrameWork) -> None:
        import cv2

        o = self.options
        params = [cv2.IMWRITE_JPEG_QUALITY, o.jpeg_quality] if o.crop_format == "jpg" else \
            [cv2.IMWRITE_PNG_COMPRESSION, 1]
        lines = []
        for face_index, found in enumerate(work.faces):
            # Linear, not cubic: cubic costs 7 ms a 512 crop here (5x), and training warps and
            # blurs the crops anyway.
            crop = cv2.warpAffine(work.frame, found.transform, (o.size, o.size), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
            polygon = mask_polygon(found.landmarks, found.transform, o.face_type)
            mask = np.zeros((o.size, o.size), dtype=np.uint8)
            cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 255)
            name = f"aligned/{work.index:06d}_{face_index}.{o.crop_format}"
            ok, data = cv2.imencode(f".{o.crop_format}", crop, params)
            if not ok:
                raise OSError(f"could not encode {name}")
            with open(self.side_dir / name, "wb") as handle:
                handle.write(data.tobytes())
            yaw, pitch, roll = head_pose(found.raw)
            occluders = []
            for outline in (work.hands[face_index] if work.hands else []):
                inside = outline @ found.transform[:, :2].T + found.transform[:, 2]  # frame -> crop pixels
                occluders.append(np.clip(inside, -o.size, 2 * o.size).tolist())
            record = FaceRecord(
                frame=work.index, time=work.timestamp, face=face_index, track=found.track,
                box=bounds(found.landmarks).tolist(), landmarks=found.landmarks.astype(np.float32),
                transform=found.transform, size=o.size, face_type=o.face_type, mask=polygon.tolist(),
                blur=blur_score(crop), brightness=brightness(crop, mask), yaw=yaw, pitch=pitch, roll=roll,
                presence=found.presence, file=name, occluders=occluders)
            lines.append(json.dumps(record.to_json()))
        if o.write_frames:
            cv2.imwrite(str(self.side_dir / "frames" / f"{work.index:06d}.png"), work.frame,
                        [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if lines:
            self.handle.write(("\n".join(lines) + "\n").encode("utf-8"))
            self.faces_written += len(lines)

    def _checkpoint(self, state: dict[str, Any]) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        atomic_write_json(self.work_dir / "checkpoint.json", {**state, "partial_bytes": self.handle.tell()})


def run_pipeline(source: Path, side_dir: Path, work_dir: Path, tracker: Tracker, options: WriteOptions,
                 start: int, total: int, fps: float, counts: dict[str, int], report: Reporter,
                 stage: str, partial_bytes: int = 0, hands: Any = None, end: int | None = None,
                 record_from: int = 0, seek: bool = False) -> dict[str, Any]:
    """Extract frames ``start``.. of ``source`` (up to ``end``, exclusive, if given: one segment of a
    split run, ``engine.faces.workers``, whose tracker first follows the frames before ``record_from``
    without recording them); returns timing figures. Raises what a stage raised.

    ``hands`` (an ``engine.faces.hands.HandWatcher``, or None) records the hands near each face;
    ``seek`` (``MediaInfo.seekable``) lets the decoder seek to ``start`` (``engine.media.decode``)."""
    import cv2

    # One OpenCV thread per stage: our three threads already fill the two cores.
    cv2.setNumThreads(1)
    skipped: list[str] = []
    decoded = DecodeAhead(iter_frames(source, start=start, fps=fps, on_skip=skipped.append, seek=seek), depth=16,
                          name="extract-decoder")
    writer = Writer(side_dir, work_dir, options, partial_bytes)
    writer.start()
    began = time.monotonic()
    main_cpu = time.thread_time()
    process_cpu = time.process_time()
    last_checkpoint = began
    done = start
    faces = 0
    try:
        for index, timestamp, frame in decoded:
            if end is not None and index >= end:
                break
            if writer.error is not None:
                raise writer.error
            found = tracker.step(index, timestamp, frame)
            if index < record_from:
                continue  # warming the tracker up on the frames before a segment
            faces += len(found)
            key = "0" if not found else ("1" if len(found) == 1 else "2+")
            counts[key] = counts.get(key, 0) + 1
            now = time.monotonic()
            checkpoint = None
            if now - last_checkpoint >= CHECKPOINT_EVERY_S:
                last_checkpoint = now
                checkpoint = {"next_frame": index + 1, "tracker": tracker.state(), "counts": dict(counts)}
            near = hands.step(frame, [bounds(f.landmarks) for f in found]) if hands is not None else None
            writer.inbox.put(FrameWork(index, timestamp, frame, found, checkpoint, near))
            done = index + 1
            report.progress(stage, done, total, unit="frames")
            report.check_cancelled()
    finally:
        main_cpu = time.thread_time() - main_cpu
        decoded.close()
        # The writer finishes what it was given (so a cancelled run resumes from its last checkpoint).
        writer.inbox.put(_END)
        writer.join()
    if writer.error is not None:
        raise writer.error
    for message in skipped:
        report.warning(message)
    elapsed = time.monotonic() - began
    process_cpu = time.process_time() - process_cpu
    frames = max(1, done - start)
    # CPU milliseconds per frame of each stage's own thread (mediapipe's inference threads not
    # included): tells which stage limits the rate when the machine is shared and wall time is noisy.
    cpu_ms = {"main": round(main_cpu / frames * 1000, 2), "writer": round(writer.cpu_s / frames * 1000, 2),
              "decoder": round(decoded.cpu_s / frames * 1000, 2),
              "process": round(process_cpu / frames * 1000, 2)}
    return {"frames": done - start, "faces": faces, "seconds": round(elapsed, 3),
            "fps": round((done - start) / elapsed, 2) if elapsed > 0 else 0.0, "skipped": skipped,
            "next_frame": done, "cpu_ms_per_frame": cpu_ms,
            "hands": hands.stats() if hands is not None else None, "unfit": tracker.unfit}
