"""Merge split among worker processes: the same frames as one process, and a kill -9 of the parent or of a
worker resumes with what is missing.

The sample destination (engine/samples/dst.mp4: 75 frames, 512x512, with sound), its faces extracted once,
a tiny model with fixed random weights saved as a real checkpoint (prediction cost and correctness do not
depend on training), segments of 5 frames and ranges of at least 20 frames instead of 250, so that two
workers each write several segments.
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

from engine.faces.extract import ExtractSettings, extract_side
from engine.media import credentials as cr
from engine.media.decode import iter_frames
from engine.merge import workers as merge_workers
from engine.merge.render import render
from engine.merge.settings import MergeSettings
from engine.report import CallbackReporter, NullReporter
from engine.workspace import Workspace
from tests.helpers import child_pids
from tests.merge.test_encode import count_frames, describe

REPO = Path(__file__).resolve().parents[2]
DST = REPO / "engine" / "samples" / "dst.mp4"
SEGMENT = 5
MIN_RANGE = 20


def _save_tiny_model(ws: Workspace) -> None:
    import dataclasses

    import torch

    from engine.train.checkpoint import CheckpointStore
    from engine.train.models import build_model
    from engine.train.options import preset

    torch.manual_seed(7)
    options = dataclasses.replace(preset("tiny").model, ae_dims=32, e_dims=8, d_dims=8, d_mask_dims=4)
    network = build_model(options)
    CheckpointStore(ws.model_dir("default")).save(
        3, {f"model.{k}": v for k, v in network.state_dict().items()}, {},
        {"model_options": dataclasses.asdict(options)})


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A workspace with the destination's faces and a tiny model: copied for each test."""
    root = tmp_path_factory.mktemp("merge-workers") / "ws"
    ws = Workspace.create(root, REPO / "engine" / "samples" / "src.mp4", DST)
    ws.record_consent("tests")
    extract_side(ws, "dst", ExtractSettings(size=128, crop_format="jpg", hands=False), NullReporter())
    _save_tiny_model(ws)
    return ws


def _copy(base: Workspace, target: Path) -> Workspace:
    import shutil

    shutil.copytree(base.root, target, symlinks=True)
    return Workspace.open(target)


def merge(ws: Workspace, workers: int, report=None, **extra) -> dict:
    return render(ws, MergeSettings(workers=workers, **extra), report=report or NullReporter(), restart=False,
                  segment_frames=SEGMENT)


def frames_of(path: Path) -> np.ndarray:
    return np.stack([frame for _, _, frame in iter_frames(path)]).astype(np.int16)


@pytest.fixture(scope="module")
def one(base, tmp_path_factory):
    ws = _copy(base, tmp_path_factory.mktemp("one") / "ws")
    summary = merge(ws, 1, mask_video=True)
    assert summary["workers"] == 1
    return ws, summary, frames_of(ws.output_dir / "result.mp4")


def assert_same_result(ws: Workspace, reference: np.ndarray) -> None:
    result = ws.output_dir / "result.mp4"
    frames = frames_of(result)
    assert frames.shape == reference.shape and count_frames(result) == len(reference)  # same count and size
    diff = np.abs(frames - reference)
    # The same segments from the same frames and predictions: equal up to the encoder's own rounding.
    assert float(diff.mean()) < 0.5 and int(diff.max()) <= 24, (float(diff.mean()), int(diff.max()))
    text = describe(result)
    assert "Audio: aac" in text and "synthetic_media" in text
    found = cr.read_credentials(result)
    assert found["signed"] and found["content_intact"] and found["signature_valid"], cr.verdict(found)
    assert not (ws.output_dir / ".merge").exists()


def test_two_workers_give_the_frames_of_one(base, one, tmp_path, monkeypatch):
    monkeypatch.setattr(merge_workers, "MIN_RANGE_FRAMES", MIN_RANGE)
    _, summary_one, reference = one
    assert abs(reference.shape[0] - 75) <= 1
    ws = _copy(base, tmp_path / "ws")
    logs = []
    summary = merge(ws, 2, CallbackReporter(logs.append), mask_video=True)
    assert summary["workers"] == 2
    assert any("2 worker processes" in e.get("message", "") for e in logs if e.get("type") == "log")
    progress = [e["done"] for e in logs if e.get("type") == "progress" and e.get("stage") == "merge"]
    assert progress and progress[-1] == 75
    assert summary["frames"] == summary_one["frames"]
    assert summary["faces_merged"] == summary_one["faces_merged"] > 60
    assert_same_result(ws, reference)
    masks = frames_of(ws.output_dir / "result_mask.mp4")
    assert masks.shape == frames_of(one[0].output_dir / "result_mask.mp4").shape


def test_png_frames_with_two_workers_are_every_frame_labelled_and_signed(base, one, tmp_path, monkeypatch):
    """``--png`` with workers: each worker writes the PNGs of its range; together every frame once, each
    the merged frame (the reference video's, up to its encoder) with the label and signed credentials."""
    import cv2

    from engine.media.encode import png_text

    monkeypatch.setattr(merge_workers, "MIN_RANGE_FRAMES", MIN_RANGE)
    _, _, reference = one
    ws = _copy(base, tmp_path / "ws")
    summary = merge(ws, 2, png=True)
    assert summary["workers"] == 2
    pngs = sorted((ws.output_dir / "frames").glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:06d}.png" for i in range(len(reference))]
    for index in (0, len(pngs) // 2, len(pngs) - 1):  # a frame of each worker's range
        frame = cv2.imread(str(pngs[index])).astype(np.int16)
        # its own frame of the reference video (2.5 here: the encoder's loss), not a neighbour (3.8-13.7)
        near = {j: float(np.abs(frame - reference[j]).mean()) for j in range(max(0, index - 2),
                                                                              min(len(reference), index + 3))}
        assert near[index] < 4.0 and min(near, key=near.get) == index, near
        assert png_text(pngs[index].read_bytes())["synthetic_media"] == "true"
        found = cr.read_credentials(pngs[index])
        assert found["signed"] and found["content_intact"] and found["signature_valid"], cr.verdict(found)
    assert not list((ws.output_dir / "frames").glob("*.tmp*"))


def test_workers_only_for_clips_long_enough():
    assert merge_workers.workers_for(2, "video", 499) == 1  # under two ranges of 250 frames
    assert merge_workers.workers_for(2, "video", 500) == 2
    assert merge_workers.workers_for(8, "video", 750) == 3
    assert merge_workers.workers_for(2, "images", 10_000) == 1
    assert 1 <= merge_workers.workers_for(0, "video", 100_000) <= 16


def test_plan_cuts_missing_cells_into_whole_segments():
    runs = merge_workers.pending({0, 10, 40}, 75, 10)
    assert runs == [(20, 40), (50, 75)]
    assert merge_workers.plan(runs, 2, 10) == [(20, 40), (50, 75)]  # 20 and 25 frames (by cells: 30 and 15)
    assert merge_workers.plan([(0, 100)], 3, 10) == [(0, 30), (30, 70), (70, 100)]
    assert merge_workers.plan([(0, 1000)], 4, 250) == [(0, 250), (250, 500), (500, 750), (750, 1000)]
    assert merge_workers.plan([(0, 75)], 2, 5) == [(0, 35), (35, 75)]
    assert merge_workers.plan([(0, 75)], 1, 5) == [(0, 75)]
    # a clip just over two cells: the short last cell joins a full one (was 500 + 25)
    assert merge_workers.plan([(0, 525)], 2, 250) == [(0, 250), (250, 525)]
    assert merge_workers.plan([(0, 525)], 3, 250) == [(0, 250), (250, 500), (500, 525)]  # 3 cells, 3 workers
    # many cells: every share within one cell of the even share, every frame once, in order
    for runs, workers in (([(0, 180_000)], 16), ([(0, 1000), (1500, 9_999)], 5), ([(250, 260)], 4)):
        pieces = merge_workers.plan(runs, workers, 250)
        frames = [f for a, b in pieces for f in range(a, b)]
        assert frames == [f for a, b in runs for f in range(a, b)]
        assert all(a % 250 == 0 or a in {r[0] for r in runs} for a, _ in pieces)
    assert merge_workers.torch_threads(2, cores=2) == 1 and merge_workers.torch_threads(1, cores=16) == 14
    assert merge_workers.torch_threads(4, cores=16) == 2


KILLED = """
import sys
from pathlib import Path
from engine.merge import workers
from engine.merge.render import render
from engine.merge.settings import MergeSettings
from engine.report import NullReporter
from engine.workspace import Workspace
workers.MIN_RANGE_FRAMES = 20
render(Workspace.open(sys.argv[1]), MergeSettings(workers=2), report=NullReporter(), segment_frames=5)
"""


def _python_children(pid: int) -> list[int]:
    found = []
    for child in sorted(child_pids(pid)):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as handle:
                if b"spawn_main" in handle.read():  # not the resource tracker
                    found.append(child)
        except OSError:
            pass
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _start_and_wait(ws: Workspace, segments: int) -> tuple[subprocess.Popen, Path]:
    work = ws.output_dir / ".merge"
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(ws.root)], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(work.glob("video-*.mp4"))) >= segments:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the merge ended before it could be killed: " + proc.stderr.read().decode()
    return proc, work


@pytest.mark.timeout(420)
def test_kill_9_of_the_parent_stops_the_workers_then_resumes(base, one, tmp_path):
    ws = _copy(base, tmp_path / "ws")
    proc, work = _start_and_wait(ws, 2)
    workers = _python_children(proc.pid)
    assert len(workers) == 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    assert not any(_alive(p) for p in workers), "no worker outlives its parent"
    kept = sorted(p.name for p in work.glob("video-*.mp4"))
    assert kept and not (ws.output_dir / "result.mp4").exists()
    logs = []
    summary = merge(ws, 2, CallbackReporter(logs.append))
    assert summary["resumed_from"] == len(kept) * SEGMENT
    assert any("Resuming the merge" in e.get("message", "") for e in logs if e.get("type") == "log")
    assert_same_result(ws, one[2])


@pytest.mark.timeout(420)
def test_kill_9_of_a_worker_fails_in_one_sentence_then_resumes(base, one, tmp_path, monkeypatch):
    ws = _copy(base, tmp_path / "ws")
    proc, work = _start_and_wait(ws, 1)
    workers = _python_children(proc.pid)
    os.kill(workers[-1], signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "A merge worker (frames" in err.decode() and "died unexpectedly" in err.decode()
    assert not (ws.output_dir / "result.mp4").exists()
    for leftover in work.glob("*.mp4"):  # whole segments or an open one, never a half-written "video-" segment
        assert leftover.name.startswith(("video-", "open-"))
    monkeypatch.setattr(merge_workers, "MIN_RANGE_FRAMES", MIN_RANGE)
    merge(ws, 1)  # any number of workers resumes: here one, filling the gaps the others left
    assert_same_result(ws, one[2])
