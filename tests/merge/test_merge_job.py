"""Merge and the whole pipeline end to end, through the real CLI and engine, on the sample pair.

One module-scoped workspace runs ``swapwizard run WS --preset tiny`` once (real extraction, a few
iterations of a tiny model, merge, export); the tests then check its result and drive further
merge, preview and pipeline jobs through the engine, including a kill -9 in the middle of a merge.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from engine.faces.records import read_alignments, write_alignments
from engine.media.decode import iter_frames
from engine.media.encode import png_text
from engine.merge.blend import FaceGeometry
from engine.merge.render import render
from engine.merge.settings import MergeSettings
from engine.merge.targets import target_faces
from engine.report import NullReporter
from engine.workspace import STEPS
from tests.helpers import cli, kill_job_when, make_workspace, run_job, stop_engine
from tests.merge.test_encode import count_frames, describe

#: Small shapes and one CPU thread so that training a few iterations takes seconds.
TINY_TRAIN = {"ae_dims": 32, "e_dims": 8, "d_dims": 8, "d_mask_dims": 4, "batch_size": 4, "threads": 1,
              "warmup_iters": 2, "preview_every_min": 60.0, "save_every_min": 60.0}


@pytest.fixture(scope="module")
def done_ws(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("merge") / "merge ws")
    ws.record_consent("tests")
    ws.update_settings("extract", {"size": 128, "crop_format": "png"})
    ws.update_settings("train", TINY_TRAIN)
    try:
        result = cli("run", str(ws.root), "--preset", "tiny", "--iters", "6", timeout=420)
        assert result.returncode == 0, result.stdout + result.stderr
        yield ws
    finally:
        stop_engine(ws)


def _boxes(faces: list[FaceGeometry], margin: int = 6) -> list[tuple[int, int, int, int]]:
    """Frame boxes of the whole crops (everything a paste may touch), with a margin."""
    boxes = []
    for face in faces:
        inverse = np.linalg.inv(np.vstack([face.crop_matrix(face.size), [0, 0, 1]]))[:2]
        corners = np.array([[0, 0], [face.size, 0], [0, face.size], [face.size, face.size]], float)
        mapped = corners @ inverse[:, :2].T + inverse[:, 2]
        x0, y0 = mapped.min(0).astype(int) - margin
        x1, y1 = mapped.max(0).astype(int) + margin
        boxes.append((max(0, x0), max(0, y0), x1, y1))
    return boxes


def _compare(ws, result_path, frames: list[int]):
    """Per frame: (mean |diff| outside the face boxes, mean |diff| in the face's centre)."""
    faces = target_faces(ws)
    source = {i: f for i, _, f in iter_frames(ws.source("dst")) if i in frames}
    merged = {i: f for i, _, f in iter_frames(result_path) if i in frames}
    found = {}
    for index in frames:
        a, b = merged[index].astype(int), source[index].astype(int)
        outside = np.ones(a.shape[:2], bool)
        centre = None
        for x0, y0, x1, y1 in _boxes(faces.get(index, [])):
            outside[y0:y1, x0:x1] = False
        for face in faces.get(index, []):
            lx0, ly0 = face.landmarks.min(0)
            lx1, ly1 = face.landmarks.max(0)
            w, h = lx1 - lx0, ly1 - ly0
            centre = (slice(int(ly0 + h * 0.3), int(ly1 - h * 0.3)), slice(int(lx0 + w * 0.3), int(lx1 - w * 0.3)))
        inside = float(np.abs(a[centre] - b[centre]).mean()) if centre else None
        found[index] = (float(np.abs(a[outside] - b[outside]).mean()), inside)
    return found


@pytest.mark.timeout(480)
def test_run_writes_a_labelled_result_with_sound(done_ws):
    ws = done_ws
    assert {step: r["status"] for step, r in ws.steps().items()} == {step: "done" for step in STEPS}
    result = ws.output_dir / "result.mp4"
    text = describe(result)
    assert abs(count_frames(result) - 75) <= 1
    assert re.search(r"Video: h264.*yuv420p.*25 fps", text)
    assert "Audio: aac" in text
    assert re.search(r"synthetic_media\s*: true", text) and "swapwizard" in text
    assert not (ws.output_dir / ".merge").exists()
    for index, (outside, inside) in _compare(ws, result, [0, 37, 74]).items():
        assert outside < 2.5, f"frame {index}: background changed by {outside:.2f}"
        assert inside is not None and inside > 6.0, f"frame {index}: face changed by only {inside}"
    # The choices used were saved for the next merge.
    assert ws.section("merge")["colour"] == "rct"


def test_faces_follow_the_models_face_type(done_ws):
    whole = target_faces(done_ws)
    full = target_faces(done_ws, "full")
    assert sorted(whole) == sorted(full) and len(whole) >= 70
    a, b = whole[10][0], full[10][0]
    # A "full" crop holds less of the head: the same frame pixels map to a larger crop scale.
    assert np.linalg.norm(b.transform[:, :2]) > np.linalg.norm(a.transform[:, :2])
    assert b.polygon is None and a.polygon is not None


@pytest.mark.timeout(120)
def test_a_second_run_skips_every_done_step(done_ws):
    end, _ = run_job(done_ws, "run", {}, timeout=100)
    assert end.TYPE == "job_finished", end
    assert end.result["skipped"] == list(STEPS) and end.result["stages"] == []


def test_asking_for_more_iterations_trains_on_and_merges_again(done_ws):
    from engine.jobs.pipeline import Params, plan

    assert plan(done_ws, Params()) == [] and plan(done_ws, Params(iters=6)) == []
    again = plan(done_ws, Params(iters=1000))
    # [merge] mask = auto (the default): the segment stage looks for occluders first and trains only if found.
    assert [kind for kind, _, _ in again] == ["segment", "train", "merge"]
    assert again[0][2]["auto"] is True


@pytest.mark.timeout(240)
def test_kill_9_during_merge_leaves_the_old_result_then_resumes(done_ws):
    ws = done_ws
    result = ws.output_dir / "result.mp4"
    before = (result.stat().st_ino, result.stat().st_size)
    params = {"blur": 24, "segment_frames": 10, "restart": True}
    killed, event = kill_job_when(ws, "merge", params, timeout=150, when=lambda e: e.TYPE == "progress" and
                                  e.stage == "merge" and e.done >= 35)
    assert killed and event.TYPE == "job_failed", event
    # The old result is untouched (same file), and finished segments wait for the resume.
    assert (result.stat().st_ino, result.stat().st_size) == before
    assert len(list((ws.output_dir / ".merge").glob("video-*.mp4"))) >= 2
    end, _ = run_job(ws, "merge", {"blur": 24, "segment_frames": 10}, timeout=150)
    assert end.TYPE == "job_finished", end
    assert end.result["resumed_from"] >= 20
    assert abs(count_frames(result) - 75) <= 1
    assert "synthetic_media" in describe(result)


@pytest.mark.timeout(120)
def test_preview_job_merges_one_frame_from_the_cache(done_ws):
    ws = done_ws
    first, _ = run_job(ws, "merge_preview", {"frame": 10, "blur": 4}, timeout=100)
    assert first.TYPE == "job_finished", first
    png = ws.root / first.result["path"]
    image_one = png.read_bytes()
    assert b"tEXtsynthetic_media" in image_one and first.result["faces"] == 1
    assert len(list((ws.root / ".swapwizard/cache/merge_preview").glob("000010-*.npz"))) == 1
    # The same frame unmerged, for the wizard's before / after: the frame's size, not a merged one.
    before = ws.root / first.result["before"]
    from PIL import Image

    with Image.open(before) as shown, Image.open(png) as merged:
        assert shown.size == merged.size and b"synthetic_media" not in before.read_bytes()
        assert shown.tobytes() != merged.tobytes()
    before_stamp = before.stat().st_mtime_ns
    second, _ = run_job(ws, "merge_preview", {"frame": 10, "blur": 40, "colour": "none"}, timeout=100)
    assert second.TYPE == "job_finished", second
    assert png.read_bytes() != image_one
    assert before.stat().st_mtime_ns == before_stamp, "the unchanged frame is not written again"


@pytest.mark.timeout(180)
def test_frames_without_a_face_pass_through(done_ws):
    ws = done_ws
    path = ws.alignments_path("dst")
    original = path.read_bytes()
    header, records = read_alignments(path)
    try:
        write_alignments(path, header, [r for r in records if not 30 <= r.frame < 35])
        summary = render(ws, MergeSettings(mask_video=True, png=True), report=NullReporter(), restart=True)
        found = _compare(ws, ws.output_dir / "result.mp4", [29, 32])
    finally:
        path.write_bytes(original)
    # The optional outputs: a labelled mask video of the same length, and labelled PNG frames.
    mask_video = ws.root / summary["outputs"]["mask_video"]
    assert abs(count_frames(mask_video) - 75) <= 1 and "synthetic_media" in describe(mask_video)
    masks = {i: f for i, _, f in iter_frames(mask_video) if i in (29, 32)}
    assert masks[29].max() > 200 and masks[32].max() < 20
    pngs = sorted((ws.output_dir / "frames").glob("*.png"))
    assert len(pngs) == summary["frames"] and png_text(pngs[0].read_bytes())["synthetic_media"] == "true"
    outside_29, inside_29 = found[29]
    whole_32, no_face = found[32]
    assert no_face is None and whole_32 < 2.5, f"frame 32 without a face changed by {whole_32:.2f}"
    assert outside_29 < 2.5 and inside_29 > 6.0
