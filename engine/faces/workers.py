"""Extraction on every core: a long video cut into segments, each extracted by its own worker process.

``extract_segments`` plans N contiguous frame ranges (``segments.json`` in the side's work folder),
runs the ordinary pipeline (``engine.faces.pipeline``: decode, detect, track, write) on each in a
spawned process, at most ``workers`` at a time, and joins the records in frame order. Each segment
has its own folder (``seg-NN/``: ``partial.jsonl``, ``checkpoint.json``, and ``done.json`` once
finished), so a run killed with ``kill -9`` resumes segment by segment: finished ones are kept, the
others continue from their last checkpoint. A worker whose parent died stops at its next frame.

Each segment's tracker first follows the ``WARMUP_FRAMES`` frames before its segment without
recording them, so that at the border it holds the faces, smoothing and detection rhythm one tracker
running through would hold. It still numbers its own tracks, so the same person has a new number after
each border; ``stitch`` joins a track that ends at a border with the one that starts there (the boxes of the two
neighbouring frames overlap, within the tracker's own gap), then numbers tracks in order of first
appearance, as one tracker would. Where the warm-up has not converged (a face found a
detection cycle earlier or later), records near a border can differ slightly from a single run's (the
tests bound how much).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from engine import workerpool
from engine.atomic import atomic_write_json, read_json
from engine.faces.records import DamagedRecords, FaceRecord, read_partial
from engine.report import Reporter

SEGMENTS = "segments.json"
#: A segment is never shorter than this (a worker's start-up, about 2 s, must stay small beside it).
MIN_SEGMENT_FRAMES = 500
#: Resident memory one worker needs (mediapipe's models, decoded frames in flight, 1080p): about 0.7 GB.
WORKER_BYTES = 800 << 20
#: Frames a segment's tracker follows before its first recorded frame (2 s at 25 fps: several detection
#: cycles and the smoothing filter's settling time).
WARMUP_FRAMES = 50
#: Boxes of a track's last face before a border and the first after it overlap at least this much to
#: be one track.
STITCH_IOU = 0.3


def default_workers() -> int:
    """Workers for this machine: one per two cores (a pipeline keeps about 1.7 busy), as many as the
    available memory holds, at most 16 (``engine.workerpool.default_workers``)."""
    return workerpool.default_workers(WORKER_BYTES)


def plan(start: int, total: int, workers: int, min_frames: int) -> list[tuple[int, int]]:
    """Frame ranges ``[a, b)`` covering ``start..total``: ``workers`` of them, fewer if they would be
    shorter than ``min_frames``."""
    frames = max(0, total - start)
    count = max(1, min(workers, frames // max(1, min_frames)))
    cuts = [start + frames * i // count for i in range(count + 1)]
    return [(cuts[i], cuts[i + 1]) for i in range(count)]


def workers_for(requested: int, kind: str, frames: int, min_frames: int | None = None) -> int:
    """How many workers a side gets: ``requested`` (0: ``default_workers()``; never more than the available
    memory holds), 1 for a folder of images or a clip too short to split."""
    return workerpool.workers_for(requested, kind, frames, min_frames or MIN_SEGMENT_FRAMES, WORKER_BYTES)


def extract_segments(source: Path, side_dir: Path, work_dir: Path, settings: Any, max_gap: int, total: int,
                     workers: int, counts: dict[str, int], report: Reporter, stage: str,
                     min_frames: int | None = None, seek: bool = False) -> dict[str, Any]:
    """Extract ``source`` in segments (planned once, resumed after any interruption) with up to ``workers``
    processes; writes the joined, stitched records to ``work_dir/partial.jsonl`` and returns the timing
    figures ``run_pipeline`` returns, with ``jitter`` and ``workers``. ``seek`` (``MediaInfo.seekable``):
    each worker seeks to its range instead of decoding the frames before it."""
    segments_path = work_dir / SEGMENTS
    stored = read_json(segments_path)
    if isinstance(stored, dict) and stored.get("total") == total:
        ranges = [tuple(r) for r in stored["ranges"]]
    else:
        ranges = plan(0, total, workers, min_frames or MIN_SEGMENT_FRAMES)
        atomic_write_json(segments_path, {"total": total, "ranges": ranges})
    values = asdict(settings)
    pending = [i for i in range(len(ranges)) if not _finished(work_dir, i, report)]
    if len(pending) < len(ranges):
        report.log(f"resuming: {len(ranges) - len(pending)} of {len(ranges)} segments were already extracted.")
    began = time.monotonic()
    tasks = []
    for i in pending:
        seg_dir = work_dir / f"seg-{i:02d}"
        seg_dir.mkdir(exist_ok=True)
        tasks.append(workerpool.Task(i, ranges[i][0], ranges[i][1],
                                     (i, str(source), str(side_dir), str(seg_dir), values, max_gap, ranges[i][0],
                                      ranges[i][1], total, stage, seek)))

    def resumed(task: workerpool.Task) -> None:
        checkpoint = read_json(work_dir / f"seg-{task.index:02d}" / "checkpoint.json")
        if isinstance(checkpoint, dict):
            report.log(f"segment {task.index + 1} of {len(ranges)}: resuming at frame {checkpoint.get('next_frame')}.")

    workerpool.run_tasks(_segment_main, tasks, workers, report, stage, total,
                         is_done=lambda task: _done(work_dir, task.index),
                         done_before=sum(b - a for i, (a, b) in enumerate(ranges) if i not in pending),
                         what="An extraction worker", again="run the extraction again to resume",
                         on_start=resumed)
    elapsed = time.monotonic() - began
    return _join(work_dir, ranges, max_gap, counts, elapsed, workers)


def _done(work_dir: Path, i: int) -> bool:
    return isinstance(read_json(work_dir / f"seg-{i:02d}" / "done.json"), dict)


def _finished(work_dir: Path, i: int, report: Reporter) -> bool:
    """Whether segment ``i`` was finished earlier and its records read whole; a finished segment whose
    records were damaged since is cleared, to be extracted again (never joined with frames missing)."""
    if not _done(work_dir, i):
        return False
    seg_dir = work_dir / f"seg-{i:02d}"
    try:
        read_partial(seg_dir / "partial.jsonl")
    except DamagedRecords as exc:
        report.log(f"segment {i + 1}: {exc.message} It is extracted again.", level="warning")
        shutil.rmtree(seg_dir)
        return False
    return True


def _join(work_dir: Path, ranges: list[tuple[int, int]], max_gap: int, counts: dict[str, int], elapsed: float,
          workers: int) -> dict[str, Any]:
    from engine.faces.smooth import JitterMeter

    parts, jitter = [], JitterMeter()
    frames = faces = 0
    cpu_s = 0.0
    skipped: list[str] = []
    hands: dict[str, Any] | None = None
    unfit = 0
    for i in range(len(ranges)):
        seg_dir = work_dir / f"seg-{i:02d}"
        parts.append(read_partial(seg_dir / "partial.jsonl"))
        done = read_json(seg_dir / "done.json")
        for key, value in done["counts"].items():
            counts[key] = counts.get(key, 0) + value
        jitter.sums = {k: jitter.sums.get(k, 0.0) + v for k, v in done["jitter"]["sums"].items()}
        jitter.pairs += done["jitter"]["pairs"]
        frames += ranges[i][1] - ranges[i][0]
        faces += len(parts[-1])
        cpu_s += done["cpu_s"]
        skipped += done["timing"].get("skipped", [])
        unfit += done["timing"].get("unfit", 0)
        if done["timing"].get("hands"):
            hands = _add_hands(hands, done["timing"]["hands"])
    records = stitch(parts, ranges, max_gap)
    with open(work_dir / "partial.jsonl", "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record.to_json()) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return {"frames": frames, "faces": faces, "seconds": round(elapsed, 3),
            "fps": round(frames / elapsed, 2) if elapsed > 0 else 0.0, "skipped": skipped, "next_frame": frames,
            "cpu_ms_per_frame": {"process": round(cpu_s / max(1, frames) * 1000, 2)}, "hands": hands,
            "jitter": jitter.result(), "workers": workers, "segments": len(ranges), "unfit": unfit}


def _add_hands(total: dict[str, Any] | None, part: dict[str, Any]) -> dict[str, Any]:
    if total is None:
        return dict(part)
    merged = dict(total)
    for key in ("frames", "checked", "frames_with_hands"):
        merged[key] = total.get(key, 0) + part.get(key, 0)
    for key in ("ms_per_check", "ms_per_frame"):  # weighted by what each segment measured over
        weight = "checked" if key == "ms_per_check" else "frames"
        n = merged[weight] or 1
        merged[key] = round((total.get(key, 0) * total.get(weight, 0) + part.get(key, 0) * part.get(weight, 0)) / n, 2)
    return merged


def _box_iou(a: list[float], b: list[float]) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def stitch(parts: list[list[FaceRecord]], ranges: list[tuple[int, int]], max_gap: int) -> list[FaceRecord]:
    """The records of consecutive segments as one run's: a track that ends near a border joined with the
    one that starts near it where their boxes overlap (``STITCH_IOU``, at most ``max_gap`` frames apart),
    then tracks numbered by first appearance."""
    parent: dict[tuple[int, int], tuple[int, int]] = {}

    def find(key: tuple[int, int]) -> tuple[int, int]:
        while parent.get(key, key) != key:
            key = parent[key]
        return key

    for i in range(len(parts) - 1):
        border = ranges[i][1]
        ends: dict[int, FaceRecord] = {}
        for record in parts[i]:
            ends[record.track] = record  # the track's last face
        starts: dict[int, FaceRecord] = {}
        for record in parts[i + 1]:
            starts.setdefault(record.track, record)
        pairs = []
        for ta, ra in ends.items():
            if border - ra.frame > max_gap:
                continue
            for tb, rb in starts.items():
                if 0 < rb.frame - ra.frame <= max_gap:
                    score = _box_iou(ra.box, rb.box)
                    if score >= STITCH_IOU:
                        pairs.append((score, ta, tb))
        used_a, used_b = set(), set()
        for _, ta, tb in sorted(pairs, reverse=True):
            if ta in used_a or tb in used_b:
                continue
            used_a.add(ta)
            used_b.add(tb)
            parent[find((i + 1, tb))] = find((i, ta))
    numbers: dict[tuple[int, int], int] = {}
    joined = []
    for i, records in enumerate(parts):
        for record in sorted(records, key=lambda r: (r.frame, r.face)):
            root = find((i, record.track))
            record.track = numbers.setdefault(root, len(numbers))
            joined.append(record)
    return joined


def _segment_main(report: Reporter, index: int, source: str, side_dir: str, seg_dir: str, values: dict[str, Any],
                  max_gap: int, start: int, end: int, total: int, stage: str, seek: bool = False) -> None:
    """One worker (``engine.workerpool``): extract frames ``start..end-1`` into ``seg_dir`` (resuming from
    its checkpoint)."""
    _segment(index, Path(source), Path(side_dir), Path(seg_dir), values, max_gap, start, end, total, stage, report,
             seek)


def _segment(index: int, source: Path, side_dir: Path, seg_dir: Path, values: dict[str, Any], max_gap: int,
             start: int, end: int, total: int, stage: str, report: Reporter, seek: bool = False) -> None:
    import cv2

    from engine.faces.detect import FaceFinder
    from engine.faces.pipeline import WriteOptions, run_pipeline
    from engine.faces.track import Tracker, TrackOptions

    cv2.setNumThreads(1)
    finder = FaceFinder(values["min_confidence"], values["min_presence"])
    hands = None
    if values.get("hands"):
        from engine.faces.hands import HandWatcher

        hands = HandWatcher(values["hands_every"])
    tracker = Tracker(finder, TrackOptions(**values, max_gap=max_gap, images=False))
    resume = read_json(seg_dir / "checkpoint.json")
    counts: dict[str, int] = {}
    begin, partial_bytes = max(0, start - WARMUP_FRAMES), 0
    if isinstance(resume, dict):
        tracker.restore(resume["tracker"])
        counts = dict(resume["counts"])
        begin, partial_bytes = resume["next_frame"], resume["partial_bytes"]
    cpu = time.process_time()
    try:
        timing = run_pipeline(source, side_dir, seg_dir, tracker,
                              WriteOptions(values["face_type"], values["size"], values["crop_format"],
                                           values["jpeg_quality"], values["write_frames"]),
                              begin, total, 25.0, counts, report, stage, partial_bytes, hands, end=end,
                              record_from=start, seek=seek)
    finally:
        finder.close()
        if hands is not None:
            hands.close()
    with open(seg_dir / "partial.jsonl", "rb") as handle:  # the writer closed it; make it durable first
        os.fsync(handle.fileno())
    atomic_write_json(seg_dir / "done.json", {
        "index": index, "range": [start, end], "counts": counts, "cpu_s": time.process_time() - cpu,
        "jitter": {"sums": tracker.jitter.sums, "pairs": tracker.jitter.pairs},
        "timing": {k: v for k, v in timing.items() if k in ("frames", "faces", "seconds", "fps", "skipped",
                                                              "hands", "cpu_ms_per_frame", "unfit")}})
