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
import multiprocessing
import os
import queue as queue_module
import shutil
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from engine.atomic import atomic_write_json, read_json
from engine.errors import UserError
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
    available memory holds, at most 16."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    available = _available_memory()
    by_memory = max(1, available // WORKER_BYTES) if available else cores
    return int(max(1, min(cores // 2, by_memory, 16)))


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


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
    min_frames = min_frames or MIN_SEGMENT_FRAMES
    available = _available_memory()
    wanted = min(requested or default_workers(), max(1, available // WORKER_BYTES) if available else 64)
    if kind != "video" or frames < 2 * min_frames:
        return 1
    return max(1, min(wanted, frames // min_frames))


def extract_segments(source: Path, side_dir: Path, work_dir: Path, settings: Any, max_gap: int, total: int,
                     workers: int, counts: dict[str, int], report: Reporter, stage: str,
                     min_frames: int | None = None) -> dict[str, Any]:
    """Extract ``source`` in segments (planned once, resumed after any interruption) with up to ``workers``
    processes; writes the joined, stitched records to ``work_dir/partial.jsonl`` and returns the timing
    figures ``run_pipeline`` returns, with ``jitter`` and ``workers``."""
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
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    cancel = context.Event()
    running: dict[int, Any] = {}
    done_frames = {i: ranges[i][1] - ranges[i][0] for i in range(len(ranges)) if i not in pending}
    failure: tuple[str, str] | None = None
    try:
        while pending or running:
            while pending and len(running) < max(1, workers) and failure is None:
                i = pending.pop(0)
                seg_dir = work_dir / f"seg-{i:02d}"
                seg_dir.mkdir(exist_ok=True)
                checkpoint = read_json(seg_dir / "checkpoint.json")
                if isinstance(checkpoint, dict):
                    report.log(f"segment {i + 1} of {len(ranges)}: resuming at frame {checkpoint.get('next_frame')}.")
                proc = context.Process(target=_segment_main, name=f"extract-seg-{i}", daemon=False,
                                       args=(i, str(source), str(side_dir), str(seg_dir), values, max_gap,
                                             ranges[i][0], ranges[i][1], total, stage, messages, cancel,
                                             os.getpid()))
                proc.start()
                running[i] = proc
            try:
                message = messages.get(timeout=0.2)
            except queue_module.Empty:
                message = None
            if message is not None:
                kind, i, *rest = message
                if kind == "progress":
                    done_frames[i] = rest[0] - ranges[i][0]
                    report.progress(stage, sum(done_frames.values()), total, unit="frames")
                elif kind == "log":
                    report.log(rest[1], level=rest[0])
                elif kind == "error":
                    failure = failure or (rest[0], rest[1])
            for i, proc in list(running.items()):
                if not proc.is_alive():
                    proc.join()
                    del running[i]
                    if not _done(work_dir, i) and failure is None:
                        failure = _last_error(messages) or (
                            f"An extraction worker (frames {ranges[i][0]}-{ranges[i][1] - 1}) died unexpectedly "
                            f"(exit code {proc.exitcode}).", "It may have run out of memory: use fewer --workers.")
                    else:
                        done_frames[i] = ranges[i][1] - ranges[i][0]
            if failure is not None and not running:
                raise UserError(*failure)
            if failure is not None:
                cancel.set()
            report.check_cancelled()
    finally:
        if running:
            cancel.set()
            deadline = time.monotonic() + 30
            for proc in running.values():
                proc.join(max(0.1, deadline - time.monotonic()))
                if proc.is_alive():
                    proc.kill()
                    proc.join()
        messages.close()
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


def _last_error(messages: Any) -> tuple[str, str] | None:
    found = None
    while True:
        try:
            kind, _, *rest = messages.get(timeout=0.5)
        except (queue_module.Empty, OSError, ValueError, EOFError):
            return found
        if kind == "error":
            found = (rest[0], rest[1])


def _join(work_dir: Path, ranges: list[tuple[int, int]], max_gap: int, counts: dict[str, int], elapsed: float,
          workers: int) -> dict[str, Any]:
    from engine.faces.smooth import JitterMeter

    parts, jitter = [], JitterMeter()
    frames = faces = 0
    cpu_s = 0.0
    skipped: list[str] = []
    hands: dict[str, Any] | None = None
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
            "jitter": jitter.result(), "workers": workers, "segments": len(ranges)}


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


class _QueueReporter(Reporter):
    """A worker's reporter: progress and logs to the parent's queue; cancelled when the parent asks or dies."""

    def __init__(self, index: int, messages: Any, cancel: Any, parent: int) -> None:
        super().__init__()
        self.index, self.messages, self.cancel, self.parent = index, messages, cancel, parent

    def emit(self, event: dict[str, Any]) -> None:
        if event.get("type") == "progress":
            self.messages.put(("progress", self.index, event["done"]))
        elif event.get("type") == "log":
            self.messages.put(("log", self.index, event.get("level", "info"), event.get("message", "")))

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set() or os.getppid() != self.parent


def _segment_main(index: int, source: str, side_dir: str, seg_dir: str, values: dict[str, Any], max_gap: int,
                  start: int, end: int, total: int, stage: str, messages: Any, cancel: Any, parent: int) -> None:
    """One worker: extract frames ``start..end-1`` into ``seg_dir`` (resuming from its checkpoint)."""
    from engine.errors import JobCancelled

    report = _QueueReporter(index, messages, cancel, parent)
    try:
        _segment(index, Path(source), Path(side_dir), Path(seg_dir), values, max_gap, start, end, total, stage,
                 report)
    except JobCancelled:
        pass
    except UserError as exc:
        messages.put(("error", index, exc.message, exc.hint))
        raise SystemExit(1) from None
    except BaseException as exc:  # noqa: BLE001 - said to the parent, which fails the job in one sentence
        messages.put(("log", index, "error", traceback.format_exc()))
        messages.put(("error", index, f"An extraction worker failed ({type(exc).__name__}: {exc}).",
                      "See the job's log; run the extraction again to resume."))
        raise SystemExit(1) from None


def _segment(index: int, source: Path, side_dir: Path, seg_dir: Path, values: dict[str, Any], max_gap: int,
             start: int, end: int, total: int, stage: str, report: Reporter) -> None:
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
                              record_from=start)
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
                                                              "hands", "cpu_ms_per_frame")}})
