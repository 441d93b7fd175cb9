"""Training keeps no face record after its set-up: the held-out split's cache holds records only while a
caller does (about 10 KB a face: 468 landmarks, the mask outline), so memory per face stays bounded.

A real alignments file of 2 000 face records (written by ``write_alignments``, read by the code training
uses: ``training_faces``, ``held_out``), memory traced with tracemalloc.
"""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np

from engine.faces import split
from engine.faces.records import FaceRecord, write_alignments
from engine.workspace import Workspace

FACES = 2000


def _workspace(root) -> Workspace:
    ws = Workspace.create(root / "ws")
    ws.side_dir("src").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    outline = [[float(x), float(y)] for x, y in rng.uniform(0, 128, (40, 2))]
    records = [FaceRecord(frame=i, time=i / 25, face=0, track=0, box=[10.0, 10.0, 100.0, 100.0],
                          landmarks=rng.uniform(0, 512, (468, 2)).astype(np.float32),
                          transform=np.array([[0.5, 0, 0], [0, 0.5, 0]]), size=128, face_type="whole_face",
                          mask=outline, file=f"aligned/{i:06d}_0.jpg") for i in range(FACES)]
    write_alignments(ws.alignments_path("src"), {"side": "src", "target_track": 0,
                                                 "source": {"name": "clip.mp4", "frame_count": FACES}}, records)
    return ws


def _retained(action) -> int:
    """Bytes allocated by ``action`` in engine/faces/ (where records are made) and still held after it.
    Only there: the whole process's total also counted what other threads of the test session (an
    engine client, a decoder some earlier test left) allocated meanwhile (7.7 MB once, in a full run)."""
    only = [tracemalloc.Filter(True, "*engine/faces/*")]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot().filter_traces(only)
        action()
        gc.collect()
        after = tracemalloc.take_snapshot().filter_traces(only)
        return sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    finally:
        tracemalloc.stop()


def test_the_split_keeps_no_record_once_training_has_its_faces(tmp_path):
    ws = _workspace(tmp_path)
    split._CACHE.clear()
    split._HEADERS.clear()

    def setup_like_training():
        # what training's set-up does per side: the target records, less the held-out frames
        from engine.faces.records import target_records

        records = target_records(ws, "src")
        held = split.held_out_frames(ws, "src", records)
        chosen = split.held_out(ws, "src", records)
        assert len(chosen.frames) == FACES // 10 and held == set(chosen.frames) | set(chosen.guard)
        header, cached = split.read_alignments_cached(ws.alignments_path("src"))  # quality's reader
        assert len(cached) == FACES and split.read_alignments_cached(ws.alignments_path("src"))[1] is cached

    kept = _retained(setup_like_training)
    # Whole records would be about 10 KB a face (20 MB here); the headers and the holdout stay.
    assert kept < 50 * FACES, f"{kept / FACES:.0f} bytes per face kept after the set-up"
    frames = split.held_out(ws, "src").frames  # read back from holdout.json: stretches spread over the clip
    assert len(frames) == FACES // 10 and frames[0] < FACES // 2 < frames[-1]
