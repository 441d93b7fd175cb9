"""Fixtures for the mask tests: the sample destination with an occluder composited over the mouth."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.media.decode import iter_frames
from engine.media.probe import ffmpeg_exe
from tests.helpers import SAMPLES

#: Frames of the sample destination (75, 25 fps) with the occluder in front of the mouth: 1.2 s.
OCCLUDED = range(20, 50)


def occluder_at(index: int, shape: tuple[int, int]) -> np.ndarray:
    """The occluder's alpha (float32 0..1) in frame ``index``: a microphone (a head and a handle) over
    the mouth of the sample destination, moving left to right across the occluded frames."""
    alpha = np.zeros(shape, np.float32)
    if index not in OCCLUDED:
        return alpha
    t = (index - OCCLUDED.start) / (len(OCCLUDED) - 1)
    centre = (int(215 + 80 * t), 330)
    cv2.circle(alpha, centre, 46, 1.0, -1, cv2.LINE_AA)
    cv2.line(alpha, centre, (centre[0] + 30, 512), 1.0, 72, cv2.LINE_AA)
    return alpha


def microphone_texture(shape: tuple[int, int]) -> np.ndarray:
    """A dark mesh texture (BGR float32)."""
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    mesh = ((xs // 6 + ys // 6) % 2).astype(np.float32)
    base = np.stack([60 + 30 * mesh, 55 + 25 * mesh, 50 + 20 * mesh], -1)
    return base


def make_occluded(out: Path) -> Path:
    """The sample destination with the moving microphone composited, encoded near-losslessly by ffmpeg."""
    src = SAMPLES / "dst.mp4"
    frames = list(iter_frames(src))
    height, width = frames[0][2].shape[:2]
    texture = microphone_texture((height, width))
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
           "-s", f"{width}x{height}", "-r", "25", "-i", "-", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "12",
           "-pix_fmt", "yuv420p", str(out)]
    process = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    for index, _, frame in frames:
        alpha = occluder_at(index, (height, width))[..., None]
        composed = frame.astype(np.float32) * (1 - alpha) + texture * alpha
        process.stdin.write(np.clip(composed + 0.5, 0, 255).astype(np.uint8).tobytes())
    process.stdin.close()
    assert process.wait(timeout=120) == 0
    return out


@pytest.fixture(scope="session")
def occluded_video(tmp_path_factory) -> Path:
    return make_occluded(tmp_path_factory.mktemp("occluded") / "dst_occluded.mp4")


#: A segmenter small and quick enough for the review's tests (its masks only need to exist and differ).
QUICK_SEGMENT = {"resolution": 64, "iters": 60, "threads": 1}


def segmented_workspace(root: Path, dst: Path | None = None):
    """A workspace with the destination extracted (128-pixel PNG crops) and segmented by a quick segmenter,
    through a real engine (left running: stop it with tests.helpers.stop_engine)."""
    from tests.helpers import make_workspace, run_job

    ws = make_workspace(root, src=None, dst=dst or SAMPLES / "dst.mp4")
    ws.record_consent("tests")
    ws.update_settings("extract", {"size": 128, "crop_format": "png"})
    ws.update_settings("segment", QUICK_SEGMENT)
    end, _ = run_job(ws, "extract", {"side": "dst"}, timeout=300)
    assert end.TYPE == "job_finished", end
    end, _ = run_job(ws, "segment", {"side": "dst"}, timeout=300)
    assert end.TYPE == "job_finished", end
    return ws
