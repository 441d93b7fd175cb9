"""Extraction split among worker processes: the same records as one pipeline (tracks stitched across the
segment borders), and a run killed with kill -9 resumes segment by segment.

A short real clip (../shared/data/short_hamilton_clip.mp4: 275 frames, several people, 640x360) with
segments of at least 100 frames instead of 500, so that two workers split it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.faces import workers
from engine.faces.extract import ExtractSettings, extract_side
from engine.faces.records import read_alignments
from engine.faces.workers import _box_iou, plan, stitch, workers_for
from engine.report import CallbackReporter, NullReporter
from engine.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
CLIP = REPO.parent / "shared" / "data" / "short_hamilton_clip.mp4"
SETTINGS = dict(size=128, crop_format="jpg", hands=False)
pytestmark = pytest.mark.skipif(not CLIP.is_file(), reason="the shared sample clip is not here")


def extract(root: Path, n: int, report=None) -> tuple[dict, list, dict]:
    ws = Workspace.open(root) if (root / "workspace.toml").is_file() else \
        Workspace.create(root, CLIP, REPO / "engine" / "samples" / "src.mp4")
    result = extract_side(ws, "src", ExtractSettings(**SETTINGS, workers=n), report or NullReporter())
    header, records = read_alignments(ws.alignments_path("src"))
    return header, records, result


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(workers, "MIN_SEGMENT_FRAMES", 100)
        base = tmp_path_factory.mktemp("workers")
        return {n: extract(base / f"w{n}", n) for n in (1, 2)}


def compare(one: list, other: list) -> dict:
    """Faces matched frame by frame (box overlap): which tracks correspond, and landmark differences."""
    by_frame: dict[int, list] = {}
    for record in other:
        by_frame.setdefault(record.frame, []).append(record)
    tracks: dict[int, set[int]] = {}
    errors, unmatched, matched = [], [], {}
    for a in one:
        candidates = by_frame.get(a.frame, [])
        best = max(candidates, key=lambda b: _box_iou(a.box, b.box), default=None)
        if best is None or _box_iou(a.box, best.box) < 0.5:
            unmatched.append(a)
            continue
        matched.setdefault(a.track, []).append(a.frame)
        tracks.setdefault(a.track, set()).add(best.track)
        errors.append(float(np.abs(a.landmarks - best.landmarks).mean()))
    # how far each face found by one run only is from a face of the same track both runs found
    length = {t: sum(1 for r in one if r.track == t) for t in {r.track for r in one}}
    apart = [min((abs(a.frame - f) for f in matched.get(a.track, [])), default=-length[a.track]) for a in unmatched]
    return {"tracks": tracks, "errors": np.asarray(errors), "unmatched": len(unmatched), "apart": apart}


def test_two_workers_give_the_records_of_one(runs):
    (h1, one, r1), (h2, two, r2) = runs[1], runs[2]
    assert r1["workers"] == 1 and r2["workers"] == 2
    assert_close(h1, one, h2, two)


def assert_close(h1, one, h2, two):
    frames = sum(h1["frames_with"].values())
    assert h2["complete"] and sum(h2["frames_with"].values()) == frames
    # A fresh tracker at the border detects at once where the running one waits for its next detection
    # (every 10 frames): a second face may show up a few frames earlier or later. Within 5 % of frames.
    assert sum(abs(h2["frames_with"].get(k, 0) - v) for k, v in h1["frames_with"].items()) <= frames // 20
    assert abs(len(two) - len(one)) <= max(3, len(one) // 20)
    assert len({r.frame for r in one} ^ {r.frame for r in two}) <= frames // 20
    seen = compare(one, two)
    # The tracker detects every ``detect_every`` (10) frames, counted from its own last detection: after a
    # border its rhythm may differ from the single run's, so a new face can be picked up (or a lost one
    # found again) up to one detection cycle earlier or later. Every face one run has and the other lacks
    # is within two cycles of a face of the same track that both have (or of a track of a cycle at most: a
    # face glimpsed for a few frames, ``apart`` < 0), and they are few.
    assert seen["unmatched"] <= len(one) // 10 and all(-10 <= d <= 20 for d in seen["apart"]), seen["apart"]
    # tracks stitched: each track of the single run is one track of the split run, and the other way
    assert all(len(mapped) == 1 for mapped in seen["tracks"].values()), seen["tracks"]
    targets = [next(iter(m)) for m in seen["tracks"].values()]
    assert len(set(targets)) == len(targets)
    assert len({r.track for r in one}) - len(targets) == len({-d for d in seen["apart"] if d < 0} and
                                                               {r.track for r in one} - set(seen["tracks"]))
    # the smoothing restarts at the border: a few pixels there, nothing elsewhere
    assert np.median(seen["errors"]) < 0.5 and seen["errors"].max() < 5.0


def test_stitch_joins_a_track_across_the_border_and_keeps_people_apart(runs):
    _, one, _ = runs[1]
    ranges = plan(0, max(r.frame for r in one) + 1, 2, 100)
    border = ranges[0][1]
    parts = [[r for r in one if r.frame < border], [r for r in one if r.frame >= border]]
    crossing = {r.track for r in parts[0] if r.frame == border - 1} & {r.track for r in parts[1] if r.frame == border}
    assert crossing, "the clip has a face on both sides of the border"
    import copy
    renumbered = copy.deepcopy(parts)
    for r in renumbered[1]:
        r.track += 100  # the second worker's own numbers
    joined = stitch(renumbered, ranges, 25)
    first = {}
    for r in one:
        first.setdefault(r.track, (r.frame, r.face))
    order = sorted(first, key=first.get)
    expected = {old: new for new, old in enumerate(order)}
    assert [r.track for r in joined] == [expected[r.track] for r in sorted(one, key=lambda r: (r.frame, r.face))]


def test_workers_for_splits_only_long_videos():
    assert workers_for(4, "images", 100_000) == 1
    assert workers_for(4, "video", 999, 500) == 1
    assert workers_for(4, "video", 1000, 500) == 2
    assert workers_for(4, "video", 100_000, 500) == 4
    assert 1 <= workers_for(0, "video", 100_000, 500) <= 16
    assert plan(0, 1000, 3, 100) == [(0, 333), (333, 666), (666, 1000)]


# A script file, not ``-c``: the spawned workers import it (as ``__mp_main__``) to find ``often``. Each
# worker checkpoints every 0.1 s instead of 2 s, so that a checkpoint is there to kill after however fast
# the machine runs the segments (a segment can take under 2 s: a run ended before its first checkpoint).
KILLED = """
import sys
from pathlib import Path
from engine.faces import pipeline, workers
from engine.faces.extract import ExtractSettings, extract_side
from engine.report import NullReporter
from engine.workspace import Workspace


def often(*args):
    pipeline.CHECKPOINT_EVERY_S = 0.1
    segment(*args)


segment = workers._segment_main
if __name__ == "__main__":
    workers.MIN_SEGMENT_FRAMES = 100
    workers._segment_main = often
    ws = Workspace.open(Path(sys.argv[1]))
    extract_side(ws, "src", ExtractSettings(size=128, crop_format="jpg", hands=False, workers=2), NullReporter())
"""


def test_kill_9_resumes_segment_by_segment(runs, tmp_path, monkeypatch):
    monkeypatch.setattr(workers, "MIN_SEGMENT_FRAMES", 100)
    root = tmp_path / "ws"
    Workspace.create(root, CLIP, REPO / "engine" / "samples" / "src.mp4")
    work = root / "data_src" / ".extract"
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    proc = subprocess.Popen([sys.executable, str(script), str(root)], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)})
    ranges = plan(0, sum(runs[1][0]["frames_with"].values()), 2, 100)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:  # a segment under way, 20 frames checkpointed
        if any(at_least(work / f"seg-{i:02d}" / "checkpoint.json", start, 20) for i, (start, _) in enumerate(ranges)):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the extraction ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(3)  # the orphaned workers see their parent gone and stop at their next frame
    sizes = [(work / f"seg-{i:02d}" / "partial.jsonl").stat().st_size for i in range(2)]
    time.sleep(2)
    assert sizes == [(work / f"seg-{i:02d}" / "partial.jsonl").stat().st_size for i in range(2)], \
        "no worker outlives its parent"
    assert not (root / "data_src" / "alignments.jsonl").exists()
    logs = []
    header, records, result = extract(root, 2, CallbackReporter(lambda e: logs.append(e)))
    assert result["workers"] == 2
    assert any(e.get("type") == "log" and "resuming" in e.get("message", "") for e in logs)
    # The records of an uninterrupted run: the checkpoint holds the tracker's exact state, so the resumed
    # tracker asks the mesh the same questions and gets the same faces. (Rounded to 3 decimals, the
    # regions moved by a fraction of a pixel and a face at the edge of the mesh's confidence was lost
    # for the rest of the clip: 23 faces fewer, frames_with unchanged.)
    header2, two, _ = runs[2]
    assert header["frames_with"] == header2["frames_with"]
    assert [(r.frame, r.face, r.track) for r in records] == [(r.frame, r.face, r.track) for r in two]
    assert max(float(np.abs(a.landmarks - b.landmarks).max()) for a, b in zip(records, two)) < 0.01


def at_least(checkpoint: Path, start: int, frames: int) -> bool:
    """The segment starting at frame ``start`` has checkpointed ``frames`` or more of its frames."""
    import json

    try:
        return json.loads(checkpoint.read_text()).get("next_frame", 0) >= start + frames
    except (OSError, ValueError):  # not there yet (written atomically: never half)
        return False


def test_the_trackers_checkpoint_gives_back_its_exact_state():
    """What a checkpoint holds reads back bit for bit (through JSON, as ``checkpoint.json`` stores it)."""
    import json

    from engine.faces.smooth import OneEuro
    from engine.faces.track import Track, Tracker, TrackOptions

    rng = np.random.default_rng(1)
    tracker = Tracker(None, TrackOptions(max_gap=30))
    track = Track(3, 41, rng.normal(300, 80, (478, 3)).astype(np.float32), rng.normal(300, 80, (478, 2)),
                  OneEuro(tracker.options.min_cutoff, tracker.options.beta))
    track.filter(track.smooth, 1.234567, 91.3)
    track.filter(track.smooth + rng.normal(0, 1, track.smooth.shape), 1.2679, 91.3)
    tracker.tracks, tracker.next_id, tracker.last_detect = [track], 4, 40
    tracker.rejected = [(np.array([1.1, 2.2, 33.3, 44.4], dtype=np.float32), 50)]
    state = json.loads(json.dumps(tracker.state()))
    again = Tracker(None, tracker.options)
    again.restore(state)
    assert json.dumps(again.state()) == json.dumps(tracker.state())
    restored = again.tracks[0]
    assert np.array_equal(restored.raw, track.raw) and np.array_equal(restored.smooth, track.smooth)
    assert np.array_equal(restored.filter.x, track.filter.x) and np.array_equal(restored.filter.dx, track.filter.dx)
    assert np.array_equal(again.rejected[0][0], tracker.rejected[0][0]) and again.rejected[0][1] == 50
