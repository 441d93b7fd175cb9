"""Resumable output: whole segments survive an interruption; changed settings start over."""

from __future__ import annotations

import numpy as np

from engine.merge.segments import SegmentedVideo, prepare_folder


def _frames(n: int):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(n)]


def test_interrupted_writer_keeps_whole_segments_only(tmp_path):
    assert prepare_folder(tmp_path / "w", {"a": 1}) is False
    video = SegmentedVideo(tmp_path / "w", "video", 64, 48, 25, segment_frames=10)
    video.begin(0)
    for frame in _frames(25):
        video.write(frame)
    video.abort()  # as a crash would: the open third segment is lost
    again = SegmentedVideo(tmp_path / "w", "video", 64, 48, 25, segment_frames=10)
    assert again.frames_done() == 20
    assert [p.name for p in again.segments()] == ["video-00000000-000010.mp4", "video-00000010-000010.mp4"]
    again.begin(20)
    for frame in _frames(5):
        again.write(frame)
    again.close()
    assert again.frames_done() == 25
    again.truncate(12)
    assert again.frames_done() == 10


def test_same_fingerprint_keeps_other_starts_over(tmp_path):
    folder = tmp_path / "w"
    prepare_folder(folder, {"blur": 8})
    (folder / "video-00000000-000010.mp4").write_bytes(b"x")
    assert prepare_folder(folder, {"blur": 8}) is True
    assert (folder / "video-00000000-000010.mp4").exists()
    assert prepare_folder(folder, {"blur": 9}) is False
    assert not (folder / "video-00000000-000010.mp4").exists()
    assert prepare_folder(folder, {"blur": 9}, restart=True) is False
