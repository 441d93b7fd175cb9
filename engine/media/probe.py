"""Probe a video or an image folder: size, frame rate, duration, frame count, codec, rotation, audio.

Uses the ffmpeg binary that imageio-ffmpeg ships (there is no ffprobe in it): ``ffmpeg -i`` prints the
container and stream description, and ``ffmpeg -i X -map 0:v:0 -c copy -f framecrc -`` counts the video
packets without decoding (fast even on long clips; the only exact count for variable-frame-rate files).

Light on purpose (standard library and imageio-ffmpeg only: no cv2, no numpy) so the CLI can call it.

    python -m engine.media.probe FILE_OR_FOLDER       # prints the MediaInfo as JSON
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import UserError
from engine.workspace import IMAGE_EXTENSIONS


@dataclass
class AudioStream:
    index: int
    codec: str
    sample_rate: int | None
    channels: str
    #: Seconds; differs from the video's start when the audio is offset (keep it when muxing).
    start: float


@dataclass
class MediaInfo:
    path: str
    kind: str  # "video" or "images"
    #: Displayed size: rotation metadata already applied (what ``decode.iter_frames`` yields).
    width: int
    height: int
    fps: float
    #: True when packet timing is irregular: use each frame's timestamp, not index / fps.
    variable_fps: bool
    duration: float
    frame_count: int
    codec: str
    #: Display-matrix rotation in degrees counter-clockwise, as ffmpeg prints it (0, 90, 180, 270).
    rotation: int = 0
    audio: list[AudioStream] = field(default_factory=list)
    video_start: float = 0.0
    audio_start: float | None = None
    pixel_format: str = ""
    #: Every frame's presentation time is the first one's plus index / fps (checked on every packet):
    #: a decoder may seek to frame N by its time (``decode.iter_frames(seek=True)``) instead of
    #: decoding the N frames before it.
    seekable: bool = False
    #: Image folders: the image files, sorted by name; names of files skipped as not images.
    images: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _ffmpeg(args: list[str], timeout: float = 120) -> str:
    """Run ffmpeg and return its stderr (where it prints the stream description)."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", *args], capture_output=True,
                          timeout=timeout)
    return proc.stderr.decode("utf-8", "replace")


def _count_packets(path: Path) -> tuple[int, bool]:
    """Video packets of ``path``, counted without decoding (``framecrc`` writes one line per packet:
    stream, dts, pts, duration, size, checksum), and whether their presentation times, in order, are
    evenly spaced (to a tick of the stream's time base: a 1 ms base rounds 33.37 ms to 33 or 34).

    (The ``frame=`` statistics line is no good here: ffmpeg 7 prints none when streams are copied.)
    """
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path),
                           "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"], capture_output=True, timeout=600)
    times = []
    for line in proc.stdout.splitlines():
        if line and not line.startswith(b"#"):
            fields = line.split(b",")
            try:
                times.append(int(fields[2]))
            except (IndexError, ValueError):  # no presentation time: counted, but not evenly spaced
                times.append(None)
    if None in times or len(times) < 2:
        return len(times), False
    times.sort()
    steps = [b - a for a, b in zip(times, times[1:])]
    return len(times), min(steps) > 0 and max(steps) - min(steps) <= 1


def _seconds(text: str) -> float | None:
    match = re.match(r"(\d+):(\d+):(\d+(?:\.\d+)?)", text)
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _rate(text: str | None) -> float:
    if not text:
        return 0.0
    return float(text[:-1]) * 1000 if text.endswith("k") else float(text)


def probe(path: str | Path) -> MediaInfo:
    """Describe a video file or an image folder; ``UserError`` if it cannot be read."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist.", "Check the path (quote it if it has spaces).")
    if path.is_dir():
        return probe_images(path)
    if path.stat().st_size == 0:
        raise UserError(f"{path.name} is empty (0 bytes).", "Copy the video again; the copy was probably cut short.")
    return probe_video(path)


_REMEMBERED: dict[tuple[str, int, int], MediaInfo] = {}


def probe_cached(path: str | Path) -> MediaInfo:
    """``probe``, remembered while the file keeps its size and modification time (a preview of one
    frame asks for every frame it shows; counting a film's packets takes seconds)."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return probe(path)  # says what is wrong
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _REMEMBERED:
        if len(_REMEMBERED) > 16:
            _REMEMBERED.clear()
        _REMEMBERED[key] = probe(path)
    return _REMEMBERED[key]


def probe_video(path: Path) -> MediaInfo:
    text = _ffmpeg(["-i", str(path)])
    video = re.search(r"Stream #0:(\d+)[^\n]*?: Video: ([^\n]*)", text)
    if "Invalid data found" in text or "moov atom not found" in text or video is None:
        reason = "has no video stream" if video is None and "Input #0" in text else "is not a readable video"
        raise UserError(f"{path.name} {reason}.",
                        "Check that it plays in a video player; re-export or re-download it if it does not.")
    line = video.group(2)
    codec = line.split()[0].rstrip(",")
    size = re.search(r"(?:^|[ ,])(\d{2,5})x(\d{2,5})(?:[ ,]|$)", line)
    if not size:
        raise UserError(f"{path.name}: could not read the video's size.", "Re-encode it with a common codec (H.264).")
    width, height = int(size.group(1)), int(size.group(2))
    fps_match = re.search(r"([\d.]+k?) fps", line)
    tbr_match = re.search(r"([\d.]+k?) tbr", line)
    fps = _rate(fps_match.group(1) if fps_match else None) or _rate(tbr_match.group(1) if tbr_match else None)
    tbr = _rate(tbr_match.group(1) if tbr_match else None)
    start_match = re.search(r"start ([-\d.]+)", line)
    container_start = re.search(r"start: ([-\d.]+)", text)
    video_start = float(start_match.group(1)) if start_match else (
        float(container_start.group(1)) if container_start else 0.0)
    pix = re.search(r"Video: [^,]+, (\w+)", "Video: " + line)
    rotation_match = re.search(r"rotation of (-?[\d.]+) degrees", text[video.end():].split("Stream #")[0])
    rotation = int(round(float(rotation_match.group(1)))) % 360 if rotation_match else 0
    if rotation in (90, 270):
        width, height = height, width
    duration_match = re.search(r"Duration: ([\d:.]+)", text)
    duration = _seconds(duration_match.group(1)) if duration_match else None

    audio = []
    for match in re.finditer(r"Stream #0:(\d+)[^\n]*?: Audio: ([^\n]*)", text):
        a_line = match.group(2)
        rate = re.search(r"(\d+) Hz", a_line)
        parts = [p.strip() for p in a_line.split(",")]
        a_start = re.search(r"start ([-\d.]+)", a_line)
        audio.append(AudioStream(index=int(match.group(1)), codec=a_line.split()[0].rstrip(","),
                                 sample_rate=int(rate.group(1)) if rate else None,
                                 channels=parts[2] if len(parts) > 2 else "",
                                 start=float(a_start.group(1)) if a_start else (
                                     float(container_start.group(1)) if container_start else 0.0)))

    frame_count, evenly_spaced = _count_packets(path)
    if frame_count == 0:
        raise UserError(f"{path.name} has no video frames.",
                        "The file may be cut short or audio-only; check it in a video player.")
    if duration is None or duration <= 0:
        duration = frame_count / fps if fps else 0.0
    # Variable frame rate: ffmpeg's average rate and its base-rate guess (tbr) disagree, or the
    # packet count does not fit duration x rate.
    variable = bool(fps and tbr and abs(fps - tbr) / tbr > 0.01)
    if fps and duration:
        video_duration = duration - max(0.0, video_start - (float(container_start.group(1)) if container_start else 0))
        expected = video_duration * fps
        variable = variable or abs(frame_count - expected) > max(2.0, 0.02 * expected)
    return MediaInfo(path=str(path), kind="video", width=width, height=height, fps=round(fps, 3),
                     variable_fps=variable, duration=round(duration, 3), frame_count=frame_count, codec=codec,
                     rotation=rotation, audio=audio, video_start=video_start,
                     audio_start=audio[0].start if audio else None, pixel_format=pix.group(1) if pix else "",
                     seekable=evenly_spaced and not variable)


def list_images(folder: Path) -> tuple[list[Path], list[str]]:
    """Image files of a folder sorted by name, and the names of other files (skipped)."""
    images, ignored = [], []
    for item in sorted(folder.iterdir()):
        if not item.is_file() or item.name.startswith("."):
            continue
        (images if item.suffix.lower() in IMAGE_EXTENSIONS else ignored).append(item)
    return images, [p.name for p in ignored]


def probe_images(folder: Path) -> MediaInfo:
    images, ignored = list_images(folder)
    if not images:
        raise UserError(f"The folder {folder} holds no images.",
                        f"Put {', '.join(IMAGE_EXTENSIONS)} files in it, or give a video.")
    text = _ffmpeg(["-i", str(images[0])])
    match = re.search(r"Video: ([^\n]*)", text)
    size = re.search(r"(?:^|[ ,])(\d{1,5})x(\d{1,5})(?:[ ,]|$)", match.group(1)) if match else None
    width, height = (int(size.group(1)), int(size.group(2))) if size else (0, 0)
    return MediaInfo(path=str(folder), kind="images", width=width, height=height, fps=0.0, variable_fps=False,
                     duration=0.0, frame_count=len(images), codec=match.group(1).split()[0].rstrip(",") if match else "",
                     images=[p.name for p in images], ignored=ignored)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m engine.media.probe FILE_OR_FOLDER", file=sys.stderr)
        return 2
    try:
        info = probe(args[0])
    except UserError as exc:
        print(f"error: {exc.message}\nhint: {exc.hint}", file=sys.stderr)
        return 2
    print(json.dumps(info.to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
