"""Media for the identity tests, made from the shipped samples with the ffmpeg imageio-ffmpeg ships.

engine/samples/src.mp4 shows person A (75 frames), dst.mp4 person B (75 frames), hamilton.mp4 two
other people (small faces). Nothing is committed: each clip, photo and image folder is cut here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from engine.media.probe import ffmpeg_exe
from tests.helpers import SAMPLES

A, B, OTHERS = SAMPLES / "src.mp4", SAMPLES / "dst.mp4", SAMPLES / "hamilton.mp4"
#: The joined destination: A frames 0-29, B frames 0-29, A frames 40-74 (hard cuts at 30 and 60).
SEGMENTS = (("A", 0, 30), ("B", 0, 30), ("A", 40, 75))


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=120)


def grab(video: Path, frame: int, out: Path, scale: int = 1) -> Path:
    """One frame of ``video`` as an image file (a "photo"), ``scale`` times its size."""
    ffmpeg("-i", str(video), "-vf", f"select=eq(n\\,{frame}),scale=iw*{scale}:ih*{scale}", "-frames:v", "1", str(out))
    return out


def person_of(frame: int) -> str:
    """Who the joined clip shows at ``frame``."""
    start = 0
    for who, first, end in SEGMENTS:
        if frame < start + end - first:
            return who
        start += end - first
    raise ValueError(frame)


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("identity-media")
    joined = root / "a_b_a.mp4"
    parts = [f"[{0 if who == 'A' else 1}:v]trim=start_frame={first}:end_frame={end},setpts=PTS-STARTPTS[p{i}]"
             for i, (who, first, end) in enumerate(SEGMENTS)]
    ffmpeg("-i", str(A), "-i", str(B), "-filter_complex",
           ";".join(parts) + ";" + "".join(f"[p{i}]" for i in range(len(SEGMENTS))) + f"concat=n={len(SEGMENTS)}:v=1:a=0[v]",
           "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(joined))
    # Images of A with a stretch of B among them: a polluted source face set (an image folder).
    polluted = root / "polluted"
    polluted.mkdir()
    ffmpeg("-i", str(A), "-vf", "select=not(mod(n\\,2))", "-fps_mode", "vfr", "-frames:v", "30",
           str(polluted / "a_%03d.jpg"))
    ffmpeg("-i", str(B), "-vf", "select=not(mod(n\\,5))", "-fps_mode", "vfr", "-frames:v", "8",
           str(polluted / "b_%03d.jpg"))
    not_a_photo = root / "notes.jpg"
    not_a_photo.write_text("this is not an image\n")
    blank = root / "blank.png"
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=320x240", "-frames:v", "1", str(blank))
    return {"joined": joined, "polluted": polluted, "photo_a": grab(A, 60, root / "a.jpg"),
            "photo_b": grab(B, 50, root / "b.jpg"), "others": grab(OTHERS, 0, root / "others.jpg", scale=2),
            "not_a_photo": not_a_photo, "blank": blank}
