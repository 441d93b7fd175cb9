"""Extraction on the shipped samples with the real mediapipe models and the real ffmpeg."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from engine.errors import UserError
from engine.faces.extract import ExtractSettings, extract_side
from engine.faces.records import load_header, load_records, present_faces
from engine.faces.split import training_faces
from engine.report import CallbackReporter, NullReporter
from engine.workspace import Workspace
from tests.extract.conftest import cut, ffmpeg
from tests.helpers import REPO, SAMPLES, make_workspace

pytestmark = pytest.mark.timeout(180)


def test_every_frame_of_the_talking_head_has_its_face(extracted):
    ws, results = extracted
    for side in ("src", "dst"):
        header = load_header(ws, side)
        records = load_records(ws, side)
        assert header["complete"] and header["frames_with"] == {"1": 75}
        assert [r.frame for r in records] == list(range(75))
        assert {r.track for r in records} == {header["target_track"]}
        assert len(present_faces(ws, side)) == 75
        # Training leaves out a held-out stretch (engine.faces.split), never more than a fifth.
        assert 60 <= len(training_faces(ws, side)) <= 75
        first = records[0]
        crop = cv2.imread(str(ws.side_dir(side) / first.file))
        assert crop.shape == (512, 512, 3) and first.size == 512 and first.face_type == "whole_face"
        # The aligned landmarks put the eyes where the template does, level and in the upper half.
        eyes = first.aligned_landmarks()[[33, 263]]
        assert abs(eyes[0, 1] - eyes[1, 1]) < 15 and 150 < eyes[:, 1].mean() < 280
        assert eyes[0, 0] < eyes[1, 0]
        assert first.landmarks.shape == (468, 2) and first.transform.shape == (2, 3)
        assert first.blur > 0 and 0 < first.brightness < 255 and abs(first.yaw) < 30
        assert (ws.side_dir(side) / header["tracks"][0]["thumb"]).is_file()
        jitter = results[side]["jitter"]
        assert jitter["pairs"] == 74 and jitter["smoothed_px"] < jitter["raw_px"]


def test_finished_side_is_skipped_and_track_choice_is_checked(extracted):
    ws, _ = extracted
    before = ws.alignments_path("src").stat().st_mtime_ns
    result = extract_side(ws, "src", ExtractSettings(), NullReporter())
    assert result["skipped"] and ws.alignments_path("src").stat().st_mtime_ns == before
    with pytest.raises(UserError, match="no track 7"):
        extract_side(ws, "src", ExtractSettings(), NullReporter(), track=7)
    # The user cleaned the set; other settings must not silently replace it.
    crop = ws.side_dir("src") / load_records(ws, "src")[3].file
    data = crop.read_bytes()
    crop.unlink()
    try:
        with pytest.raises(UserError, match="cleaned since"):
            extract_side(ws, "src", ExtractSettings(size=256), NullReporter())
        assert ws.alignments_path("src").stat().st_mtime_ns == before
    finally:
        crop.write_bytes(data)


def test_two_people_get_two_tracks_and_the_choice_sticks(tmp_path):
    # Two copies of the talking head side by side: two tracks; the larger one is the target.
    clip = tmp_path / "two.mp4"
    ffmpeg("-i", str(SAMPLES / "src.mp4"), "-i", str(SAMPLES / "dst.mp4"), "-filter_complex",
           "[1:v]scale=384:384,pad=512:512:64:64[b];[0:v][b]hstack", "-frames:v", "12", "-an",
           "-c:v", "libx264", "-preset", "ultrafast", str(clip))
    ws = make_workspace(tmp_path / "ws", src=clip, dst=None)
    result = extract_side(ws, "src", ExtractSettings(size=128, write_frames=True), NullReporter())
    assert len(list((ws.side_dir("src") / "frames").glob("*.png"))) == 12
    tracks = result["tracks"]
    assert len(tracks) == 2 and all(t["faces"] == 12 for t in tracks)
    assert tracks[0]["size"] > tracks[1]["size"] and result["target_track"] == tracks[0]["id"]
    other = tracks[1]["id"]
    again = extract_side(ws, "src", ExtractSettings(size=128, write_frames=True), NullReporter(), track=other)
    assert again["retargeted"] and load_header(ws, "src")["target_track"] == other
    assert {r.track for r in present_faces(ws, "src")} == {other}


def test_no_face_means_a_clear_error_and_no_records(tmp_path):
    clip = tmp_path / "no face.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-frames:v", "8", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(clip))
    ws = make_workspace(tmp_path / "ws", src=clip, dst=None)
    with pytest.raises(UserError, match="No face was found"):
        extract_side(ws, "src", ExtractSettings(), NullReporter())
    assert not ws.alignments_path("src").exists()


def test_hard_frames_4k_cut_by_the_border_and_rotated(tmp_path):
    frames = [f for i, _, f in __import__("engine.media.decode", fromlist=["x"]).iter_frames(SAMPLES / "dst.mp4")
              if i in (0, 40)]
    folder = tmp_path / "hard frames"
    folder.mkdir()
    big = cv2.resize(frames[0], (2160, 2160), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(folder / "a_4k.jpg"), cv2.copyMakeBorder(big, 0, 0, 840, 840, cv2.BORDER_CONSTANT))
    cv2.imwrite(str(folder / "b_cut.png"), frames[1][:, 200:])  # the left part of the face is outside
    cv2.imwrite(str(folder / "c_sideways.png"), cv2.rotate(frames[1], cv2.ROTATE_90_CLOCKWISE))
    ws = make_workspace(tmp_path / "ws", src=folder, dst=None)
    result = extract_side(ws, "src", ExtractSettings(size=256), NullReporter())
    records = load_records(ws, "src")
    assert sorted(r.frame for r in records if r.track == 0) == [0, 1, 2]
    assert result["frames_with"] == {"1": 3}
    sideways = next(r for r in records if r.frame == 2)
    # Found on the frame turned back upright: the crop is upright (roll about -90 in the frame).
    assert abs(abs(sideways.roll) - 90) < 20
    crop = cv2.imread(str(ws.side_dir("src") / sideways.file))
    eyes = sideways.aligned_landmarks()[[33, 263]]
    assert crop.shape == (256, 256, 3) and eyes[0, 0] < eyes[1, 0] and abs(eyes[0, 1] - eyes[1, 1]) < 12


RESUME_SCRIPT = """
import sys
import engine.faces.pipeline as pipeline
pipeline.CHECKPOINT_EVERY_S = 0.1
from engine.faces.extract import ExtractSettings, extract_side
from engine.report import NullReporter
from engine.workspace import Workspace
extract_side(Workspace.open(sys.argv[1]), "src", ExtractSettings(size=128), NullReporter())
"""


def test_kill_9_resumes_from_the_checkpoint(tmp_path):
    clip = cut(SAMPLES / "src.mp4", tmp_path / "long.mp4", 225, "-vf", "loop=loop=2:size=75:start=0")
    ws = make_workspace(tmp_path / "ws", src=clip, dst=None)
    checkpoint = ws.side_dir("src") / ".extract" / "checkpoint.json"
    child = subprocess.Popen([sys.executable, "-c", RESUME_SCRIPT, str(ws.root)], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (checkpoint.exists() and json.loads(checkpoint.read_text())["next_frame"] > 20):
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert checkpoint.exists() and not ws.alignments_path("src").exists()
    events = []
    result = extract_side(ws, "src", ExtractSettings(size=128), CallbackReporter(events.append))
    assert result["resumed_from"] > 20
    records = load_records(ws, "src")
    assert [r.frame for r in records] == list(range(225))
    assert all((ws.side_dir("src") / r.file).is_file() for r in records)
    progress = [e for e in events if e["type"] == "progress"]
    assert progress[-1]["done"] == 225 and progress[-1]["total"] == 225 and progress[-1]["rate"] > 0
    assert not (ws.side_dir("src") / ".extract").exists()


def test_missing_source(tmp_path):
    ws = Workspace.create(tmp_path / "empty ws")
    with pytest.raises(UserError, match="no src footage"):
        extract_side(ws, "src", ExtractSettings(), NullReporter())
    assert np is not None


def test_small_faces_finds_the_distant_pianist():
    from engine.faces.detect import FaceFinder
    from engine.media.decode import iter_frames

    frame = next(iter_frames(SAMPLES / "hamilton.mp4"))[2]
    finder = FaceFinder()
    try:
        whole = finder.detect(frame)
        tiled = finder.detect_tiled(frame)
    finally:
        finder.close()
    # The singer (right) is found either way; the pianist (left, about 25 px) only with tiles.
    assert [d.box[0] > 400 for d in whole] == [True]
    assert any(d.box[0] < 150 and d.box[2] - d.box[0] < 40 for d in tiled)
    assert sum(d.box[0] > 400 for d in tiled) == 1  # the tiles' copies of the singer are merged


def test_head_pose_signs_follow_the_picture():
    from engine.faces.detect import FaceFinder, roi_from_detection
    from engine.faces.quality import head_pose
    from engine.media.decode import iter_frames

    frame = [f for i, _, f in iter_frames(SAMPLES / "src.mp4") if i == 40][0]
    finder = FaceFinder()
    try:
        def pose(image):
            det = finder.detect(image)[0]
            return head_pose(finder.landmarks(image, roi_from_detection(det))[0])
        yaw, pitch, roll = pose(frame)
        m_yaw, m_pitch, m_roll = pose(np.ascontiguousarray(frame[:, ::-1]))
        tilted = cv2.warpAffine(frame, cv2.getRotationMatrix2D((256, 256), -20, 1.0), (512, 512))
        t_yaw, _, t_roll = pose(tilted)
    finally:
        finder.close()
    assert abs(yaw) > 5 and m_yaw == pytest.approx(-yaw, abs=4)  # a mirror turns the head the other way
    assert m_pitch == pytest.approx(pitch, abs=4) and m_roll == pytest.approx(-roll, abs=4)
    assert t_roll - roll == pytest.approx(20, abs=5)  # turned 20 degrees clockwise in the picture
