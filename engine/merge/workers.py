"""Merge on every core: a long destination's frames merged by N worker processes, each a range of frames.

The merge already writes the result as numbered, whole segments (``engine.merge.segments``): segment k
holds frames ``k * segment_frames`` to ``(k + 1) * segment_frames - 1`` (the last one what is left), and
one process writes them in that grid. Here the grid's cells not yet written are cut into at most N
contiguous ranges of whole cells (``plan``), and each range is merged by its own process
(``engine.workerpool``: spawned, at most N at a time, stopped when the parent dies), which writes the
same segments one process would. The join at the end is the same stream copy, so the result is the
one-process result, frame for frame (``tests/scale/test_merge_workers.py``).

Resume: a cell counts as done when every stream (video, and the mask video when asked for) has its
whole segment; after a kill -9 of the parent or of a worker, the next merge plans only the missing cells
(with any number of workers, one included).

Each worker loads the model once (``load_model``), reads the destination's faces, decodes its range
(``iter_frames(start=..., seek=...)``: in a clip whose frame times are evenly spaced, the decoder
seeks to the range's first frame; otherwise the frames before it are decoded, not converted), merges
and encodes. On a CPU each worker gets
``torch_threads(N)`` threads for the model and ``cv2_threads(N)`` for OpenCV, so that N workers with
their decoder threads and ffmpeg encoders do not oversubscribe the cores. On a GPU the workers share
the device: each has its own copy of the model on it and its own CUDA context (the model is small beside
the device's memory); their batches interleave on the device while the CPU work (decode, colour,
blend, encode) runs in parallel, which is what a CPU-bound merge needs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine import workerpool

#: A range is never shorter than this many frames. A worker's start-up (spawn, import torch, load the
#: model and the destination's faces) measured 6-9 s on the busy 2-core machine (README, Merge), which
#: a 1-worker merge of the tiny model at 512x512 spends on 40-60 frames; 250 frames keep the start-up
#: under a fifth of a worker's time (more at 1080p, where a frame costs more).
MIN_RANGE_FRAMES = 250
#: Resident memory one merge worker needs at 1080p (torch, the model, 8-32 decoded frames in flight, the
#: encoder's pipe): about 1 GB.
WORKER_BYTES = 1 << 30


def workers_for(requested: int, kind: str, frames: int, min_frames: int | None = None) -> int:
    """How many workers merge a destination: ``requested`` (0: one per two cores as memory allows, at most
    16), 1 for a folder of images or a clip shorter than two ranges."""
    return workerpool.workers_for(requested, kind, frames, min_frames or MIN_RANGE_FRAMES, WORKER_BYTES)


def cells_done(folder: Path, prefixes: list[str], segment_frames: int) -> set[int]:
    """Start frames of the grid's cells whose segments exist, whole, for every one of ``prefixes``."""
    from engine.merge.segments import whole_segments

    found: set[int] | None = None
    for prefix in prefixes:
        starts = {start for start, _ in whole_segments(folder, prefix) if start % segment_frames == 0}
        found = starts if found is None else found & starts
    return found or set()


def pending(done: set[int], total: int, segment_frames: int) -> list[tuple[int, int]]:
    """The frame ranges ``[a, b)`` of ``0..total`` not yet merged, each a run of missing cells."""
    runs: list[tuple[int, int]] = []
    for start in range(0, max(0, total), segment_frames):
        if start in done:
            continue
        end = min(total, start + segment_frames)
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    return runs


def plan(runs: list[tuple[int, int]], workers: int, segment_frames: int) -> list[tuple[int, int]]:
    """``runs`` cut into pieces of whole cells for ``workers`` processes, the frames shared out as evenly
    as whole cells allow: each cut is the cell border nearest to an even share (a 525-frame clip in cells
    of 250 is 250 + 275, not 500 + 25); a run is never joined to another (the cells between are done: a
    share that crosses one is two pieces)."""
    cells = [(a, min(b, a + segment_frames)) for first, b in runs for a in range(first, b, segment_frames)]
    if workers <= 1 or not cells:
        return list(runs)
    count = min(workers, len(cells))
    ends, total = [], 0
    for a, b in cells:
        total += b - a
        ends.append(total)  # frames up to the end of each cell
    groups, first = [], 0
    for i in range(1, count):
        share = total * i / count
        # the last cell of share i: at least one cell each for it and for the shares after it
        last = min(range(first, len(cells) - (count - i)), key=lambda j: abs(ends[j] - share))
        groups.append(cells[first:last + 1])
        first = last + 1
    groups.append(cells[first:])
    pieces: list[tuple[int, int]] = []
    for group in groups:
        joined = [group[0]]
        for a, b in group[1:]:
            joined[-1:] = [(joined[-1][0], b)] if joined[-1][1] == a else [joined[-1], (a, b)]
        pieces += joined
    return pieces


def torch_threads(workers: int, cores: int | None = None) -> int:
    """Torch threads per worker: the cores shared out, two per worker left to its decoder and encoder
    (one worker: every core but two, as the one-process merge does)."""
    cores = cores or workerpool.cores()
    return max(1, (cores - 2 * workers) // max(1, workers))


def cv2_threads(workers: int, cores: int | None = None) -> int:
    """OpenCV threads per worker (warps, blurs, colour transfer): the cores shared out."""
    cores = cores or workerpool.cores()
    return max(1, cores // max(1, workers))


def add_timing(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The workers' timing figures summed (``MergeStats.as_dict`` each); ``startup_s`` is the slowest start."""
    total: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key == "startup_s":
                total[key] = max(total.get(key, 0.0), value)
            elif isinstance(value, (int, float)):
                total[key] = round(total.get(key, 0) + value, 3)
    return total


def process_age() -> float:
    """Seconds since this process started (Linux: /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/stat") as handle:
            started = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
        return max(0.0, uptime - started / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0
