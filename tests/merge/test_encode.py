"""Export: exact frame rate, audio kept in sync with its start offset, the synthetic label, atomic files."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.errors import UserError
from engine.media.encode import (
    VideoWriter,
    ffmpeg_exe,
    fps_text,
    join_segments,
    png_text,
    png_with_text,
    synthetic_label,
    temp_name,
)
from tests.helpers import SAMPLES


def describe(path: Path) -> str:
    """What ``ffmpeg -i`` prints about a file (the imageio-ffmpeg build has no ffprobe)."""
    return subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr


def count_frames(path: Path) -> int:
    text = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f",
                           "null", "-"], capture_output=True, text=True).stderr
    return int(re.findall(r"frame=\s*(\d+)", text)[-1])


def video_start(text: str) -> float:
    line = next(line for line in text.splitlines() if "Video:" in line)
    match = re.search(r"start ([-\d.]+)", line)
    return float(match.group(1)) if match else 0.0


def hamilton_frames() -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(SAMPLES / "hamilton.mp4"))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def test_rates_are_exact():
    assert fps_text(29.97) == "30000/1001"
    assert fps_text(23.976) == "24000/1001"
    assert fps_text(25.0) == "25"
    assert fps_text("30000/1001") == "30000/1001"


def test_hamilton_keeps_rate_audio_offset_and_label(tmp_path):
    frames = hamilton_frames()
    out = tmp_path / "out.mp4"
    with VideoWriter(out, 640, 360, 29.97, audio_source=SAMPLES / "hamilton.mp4", video_start_s=0.834168,
                     label=synthetic_label(), mark=True) as writer:
        for frame in frames:
            writer.write(frame)
    assert not temp_name(out).exists()
    text = describe(out)
    source = describe(SAMPLES / "hamilton.mp4")
    assert count_frames(out) == len(frames) == count_frames(SAMPLES / "hamilton.mp4")
    assert "29.97 fps" in text and "Audio: aac" in text
    # The video still starts 0.83 s after the audio, as in the source: lips stay in sync.
    assert abs(video_start(text) - video_start(source)) < 0.01
    assert re.search(r"synthetic_media\s*: true", text)
    assert re.search(r"comment\s*: Synthetic media: face-swapped with swapwizard", text)


def test_segments_join_into_one_labelled_file(tmp_path):
    frames = hamilton_frames()[:50]
    segments = []
    for start in range(0, 50, 20):
        path = tmp_path / f"seg{start}.mp4"
        with VideoWriter(path, 640, 360, 29.97) as writer:
            for frame in frames[start:start + 20]:
                writer.write(frame)
        segments.append(path)
    out = join_segments(segments, tmp_path / "joined.mp4", audio_source=SAMPLES / "hamilton.mp4",
                        video_start_s=0.834168, label=synthetic_label())
    assert count_frames(out) == 50
    text = describe(out)
    assert "synthetic_media" in text and "Audio: aac" in text and "29.97 fps" in text
    assert abs(video_start(text) - video_start(describe(SAMPLES / "hamilton.mp4"))) < 0.01


def test_png_text_chunks_survive_and_the_image_still_reads(tmp_path):
    image = np.random.default_rng(1).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    data = png_with_text(image, synthetic_label())
    assert png_text(data)["synthetic_media"] == "true"
    path = tmp_path / "x.png"
    path.write_bytes(data)
    assert np.array_equal(cv2.imread(str(path)), image)


def test_bad_frame_and_ffmpeg_failure_are_clear(tmp_path):
    writer = VideoWriter(tmp_path / "a.mp4", 64, 64, 25)
    with pytest.raises(ValueError):
        writer.write(np.zeros((32, 32, 3), np.uint8))
    writer.abort()
    assert not (tmp_path / "a.mp4").exists() and not temp_name(tmp_path / "a.mp4").exists()
    with pytest.raises(UserError):
        VideoWriter(tmp_path / "b.mp4", 64, 64, 25, preset="warp-speed")


@pytest.fixture
def tiny_disk(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("needs permission to mount a tiny tmpfs (root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_full_disk_gives_a_clear_error_and_no_file(tiny_disk):
    rng = np.random.default_rng(0)
    out = tiny_disk / "result.mp4"
    with pytest.raises(UserError) as caught:
        with VideoWriter(out, 320, 240, 25, crf=0) as writer:
            for _ in range(200):
                writer.write(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    assert "disk is full" in caught.value.message
    assert not out.exists() and not temp_name(out).exists()
