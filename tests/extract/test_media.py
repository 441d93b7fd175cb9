"""Probe and decode on real files: the shipped samples, and broken or unusual ones made with ffmpeg."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from engine.errors import UserError
from engine.media.decode import DecodeAhead, iter_frames, read_image
from engine.media.probe import probe
from tests.extract.conftest import cut, ffmpeg
from tests.helpers import SAMPLES

pytestmark = pytest.mark.timeout(60)


def test_probe_sample_with_audio_offset():
    info = probe(SAMPLES / "hamilton.mp4")
    assert (info.width, info.height) == (640, 360)
    assert info.fps == pytest.approx(29.97, abs=0.01)
    assert info.frame_count == 65
    assert not info.variable_fps
    assert info.codec == "h264"
    assert info.video_start == pytest.approx(0.834, abs=0.01)
    assert len(info.audio) == 1 and info.audio[0].sample_rate == 44100
    assert info.audio_start == pytest.approx(0.0, abs=0.01)


def test_decode_streams_every_frame_with_timestamps():
    frames = list(iter_frames(SAMPLES / "src.mp4"))
    assert len(frames) == 75
    index, timestamp, frame = frames[10]
    assert index == 10 and timestamp == pytest.approx(0.4, abs=1e-3)
    assert frame.shape == (512, 512, 3) and frame.dtype == np.uint8
    resumed = next(iter_frames(SAMPLES / "src.mp4", start=70))
    assert resumed[0] == 70 and np.array_equal(resumed[2], frames[70][2])


def test_rotation_metadata_is_applied(tmp_path):
    rotated = tmp_path / "phone clip.mp4"
    ffmpeg("-display_rotation", "90", "-i", str(SAMPLES / "hamilton.mp4"), "-c", "copy", str(rotated))
    info = probe(rotated)
    assert info.rotation == 90 and (info.width, info.height) == (360, 640)
    _, _, frame = next(iter_frames(rotated))
    assert frame.shape == (640, 360, 3)


def test_variable_frame_rate_is_reported(tmp_path):
    vfr = tmp_path / "vfr.mkv"
    # Drop frames irregularly and keep their original timestamps: a variable-rate stream.
    ffmpeg("-i", str(SAMPLES / "src.mp4"), "-vf", "select='not(mod(n\\,3))+eq(n\\,1)'", "-fps_mode", "vfr",
           "-an", "-c:v", "libx264", "-preset", "ultrafast", str(vfr))
    info = probe(vfr)
    assert info.variable_fps
    stamps = [t for _, t, _ in iter_frames(vfr)]
    assert len(stamps) == info.frame_count
    gaps = np.diff(stamps)
    assert gaps.max() > 1.5 * gaps.min()


@pytest.mark.parametrize("content", [b"", b"this is not a video\n" * 50, "truncated"])
def test_bad_videos_give_a_clear_error(tmp_path, content):
    path = tmp_path / "bad clip.mp4"
    if content == "truncated":
        content = (SAMPLES / "src.mp4").read_bytes()[:20000]
    path.write_bytes(content)
    with pytest.raises(UserError) as caught:
        probe(path)
    assert caught.value.hint
    assert "\n" not in caught.value.message


def test_image_folder_converts_every_format(tmp_path):
    folder = tmp_path / "my photos"
    folder.mkdir()
    frame = next(iter_frames(SAMPLES / "src.mp4"))[2]
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(folder / "a_grey.png"), grey)
    cv2.imwrite(str(folder / "b_rgba.png"), cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(folder / "c_16bit.png"), frame.astype(np.uint16) * 257)
    cv2.imwrite(str(folder / "d_plain.jpg"), frame)
    (folder / "e_broken.jpg").write_bytes(b"not really a jpeg")
    (folder / "notes.txt").write_text("not an image")
    info = probe(folder)
    assert info.kind == "images" and info.frame_count == 5 and info.ignored == ["notes.txt"]
    skipped = []
    frames = list(iter_frames(folder, on_skip=skipped.append))
    assert [i for i, _, _ in frames] == [0, 1, 2, 3]
    assert len(skipped) == 1 and "e_broken.jpg" in skipped[0]
    for _, _, image in frames:
        assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    # 16-bit scaled down, not clipped: same picture as the 8-bit original.
    assert np.abs(frames[2][2].astype(int) - frame).max() <= 1
    assert read_image(folder / "e_broken.jpg") is None


def test_folder_without_images(tmp_path):
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(UserError, match="no images"):
        probe(tmp_path)


def test_probe_counts_frames_of_a_short_clip(tmp_path):
    clip = cut(SAMPLES / "src.mp4", tmp_path / "five.mp4", 5)
    assert probe(clip).frame_count == 5


def test_codec_opencv_cannot_decode_falls_back_to_ffmpeg(tmp_path):
    clip = tmp_path / "av1 clip.mkv"
    try:
        ffmpeg("-i", str(SAMPLES / "src.mp4"), "-frames:v", "6", "-an", "-c:v", "libaom-av1", "-cpu-used", "8",
               str(clip))
    except Exception:  # noqa: BLE001 - an ffmpeg build without the AV1 encoder
        pytest.skip("this ffmpeg cannot encode AV1")
    frames = list(iter_frames(clip))
    assert [i for i, _, _ in frames] == list(range(6)) and frames[0][2].shape == (512, 512, 3)
    assert frames[3][1] == pytest.approx(0.12, abs=1e-3)
    assert next(iter_frames(clip, start=4))[0] == 4


def test_decoding_ahead_gives_every_frame_in_order_from_its_own_thread():
    threads: set[str] = set()
    with DecodeAhead(iter_frames(SAMPLES / "src.mp4"), depth=4, name="test-decode") as decoded:
        ahead = []
        for item in decoded:
            threads.update(t.name for t in threading.enumerate())
            ahead.append(item)
    plain = list(iter_frames(SAMPLES / "src.mp4"))
    assert [i for i, _, _ in ahead] == [i for i, _, _ in plain] == list(range(75))
    assert all(np.array_equal(a[2], b[2]) and a[1] == b[1] for a, b in zip(ahead, plain))
    assert "test-decode" in threads
    assert decoded.cpu_s > 0, "the decoder thread's CPU time is measured"


def test_decoding_ahead_raises_the_decoders_error_in_the_consumer(tmp_path):
    path = tmp_path / "bad clip.mp4"
    path.write_bytes(b"this is not a video\n" * 50)
    with DecodeAhead(iter_frames(path)) as decoded, pytest.raises(UserError) as caught:
        list(decoded)
    assert "bad clip.mp4" in caught.value.message and caught.value.hint


def test_leaving_early_stops_the_decoder_and_closes_the_video():
    frames = iter_frames(SAMPLES / "src.mp4")
    with DecodeAhead(frames, depth=2, name="test-early") as decoded:
        for index, _, _ in decoded:
            if index == 3:
                break
    assert not any(t.name == "test-early" for t in threading.enumerate()), "the decoder thread ended"
    assert frames.gi_frame is None, "the frame generator was closed (the capture released)"


def test_seeking_gives_the_frame_decoding_from_the_start_gives(tmp_path):
    """A worker or a preview starting at frame N seeks there instead of decoding the N frames before it:
    on clips whose frame times are evenly spaced (long GOP with B-frames, a rotated phone clip) the
    frame and its time are those of decoding from the start; where they are not (a clip joined from
    parts, with a gap in its times: OpenCV's seek lands 25 frames off there, measured), the clip is
    not seekable and ``seek=True`` is never given for it."""
    even = tmp_path / "long gop.mp4"
    ffmpeg("-stream_loop", "2", "-i", str(SAMPLES / "src.mp4"), "-an", "-c:v", "libx264", "-preset", "veryfast",
           "-g", "120", "-bf", "3", "-x264-params", "open-gop=1", str(even))
    rotated = tmp_path / "phone.mp4"
    ffmpeg("-display_rotation", "90", "-i", str(even), "-c", "copy", str(rotated))
    for clip in (even, rotated, SAMPLES / "hamilton.mp4"):
        info = probe(clip)
        assert info.seekable, clip.name
        every = list(iter_frames(clip))
        for start in (1, 37, len(every) // 2 + 7, len(every) - 1):
            index, stamp, frame = next(iter_frames(clip, start=start, seek=True))
            assert index == start and stamp == every[start][1] and np.array_equal(frame, every[start][2]), \
                (clip.name, start)
        assert list(iter_frames(clip, start=len(every) + 5, seek=True)) == []
    joined = tmp_path / "joined.avi"
    ffmpeg("-stream_loop", "2", "-i", str(SAMPLES / "hamilton.mp4"), "-an", "-c:v", "mpeg4", "-g", "30", str(joined))
    assert not probe(joined).seekable
