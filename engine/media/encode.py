"""Export: stream BGR frames into ffmpeg (H.264, yuv420p), copy the audio, label the file as synthetic.

Every file written here is labelled as face-swapped synthetic media: MP4 container metadata
(``comment``, ``synthetic_media``, ``generator``, ``swap_date``; ``-movflags use_metadata_tags``
keeps the custom keys so ``ffprobe -show_format`` prints them) and PNG ``tEXt`` chunks. An optional
visible corner mark says the same to a viewer. A file appears under its final name only once it
is complete: ffmpeg writes a hidden temp name beside it, which is renamed on success.

Given ``credentials`` (engine.media.credentials), a finished file is also signed with a C2PA manifest
(Content Credentials) before that rename: the complete temp file is signed into a second temp file,
which alone is renamed to the final name, so a crash never leaves an unsigned or half-signed file there.

    with VideoWriter("out.mp4", 1920, 1080, "30000/1001", audio_source="dst.mp4") as writer:
        for frame in frames:
            writer.write(frame)          # uint8 BGR, H x W x 3

Long merges write video-only segments with ``VideoWriter`` and join them with ``join_segments``
(stream copy, audio added, label written) so an interrupted merge resumes at the last segment.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import os
import re
import subprocess
import tempfile
import zlib
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from engine import __version__
from engine.errors import UserError
from engine.media.credentials import Credentials

#: Audio codecs an MP4 file can carry as they are; anything else is re-encoded to AAC.
MP4_AUDIO_CODECS = ("aac", "mp3", "ac3", "eac3", "alac", "opus", "flac")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def synthetic_label(when: _dt.datetime | None = None) -> dict[str, str]:
    """The machine-readable label every output carries (MP4 metadata keys, PNG text keys)."""
    when = when or _dt.datetime.now(_dt.timezone.utc)
    date = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "comment": (f"Synthetic media: face-swapped with swapwizard {__version__} on {date}. "
                    "The face shown is not the person originally filmed."),
        "synthetic_media": "true",
        "synthetic_media_type": "face-swap",
        "generator": f"swapwizard {__version__}",
        "swap_date": date,
    }


def _metadata_args(label: dict[str, str] | None) -> list[str]:
    args: list[str] = []
    for key, value in (label or {}).items():
        args += ["-metadata", f"{key}={value}"]
    return args


def exact_rate(fps: Fraction | str | float) -> Fraction:
    """The exact frame rate: 29.97 (as probes print it) is really 30000/1001, 23.976 is 24000/1001."""
    if isinstance(fps, Fraction):
        return fps
    rate = Fraction(fps) if isinstance(fps, str) else Fraction(float(fps))
    for base in (24, 30, 48, 60, 120, 240):
        ntsc = Fraction(base * 1000, 1001)
        if abs(float(rate - ntsc)) < 0.006 and rate != base:
            return ntsc
    return rate.limit_denominator(1001)


def fps_text(fps: Fraction | str | float) -> str:
    """``exact_rate`` as ffmpeg reads it: ``30000/1001``, or ``25``."""
    rate = exact_rate(fps)
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


def audio_codec(path: str | os.PathLike[str]) -> str | None:
    """The first audio stream's codec name in ``path`` (None when it has none)."""
    result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True,
                            errors="replace", check=False)
    match = re.search(r"Stream #\d+:\d+.*?: Audio: (\w+)", result.stderr)
    return match.group(1) if match else None


def _fail_from_log(log: str, target: Path, what: str) -> UserError:
    """Turn ffmpeg's stderr into one clear sentence, recognising a full disk."""
    if "No space left on device" in log:
        return UserError(f"The disk is full: {what} {target} could not be written.",
                         "Free some space on that disk (or choose another output folder) and run merge "
                         "again; finished parts are kept.")
    lines = [line for line in log.strip().splitlines() if line.strip()]
    tail = lines[-1] if lines else "no message"
    return UserError(f"ffmpeg failed while writing {target}: {tail}",
                     "Check the output folder is writable; the full ffmpeg log is in the engine log.")


def _finish(tmp: Path, final: Path) -> None:
    """fsync the finished temp file and rename it over the final name (never a half file there)."""
    try:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if exc.errno == errno.ENOSPC:
            raise UserError(f"The disk is full: {final} could not be written.",
                            "Free some space and run merge again.") from None
        raise UserError(f"{final} could not be written: {exc.strerror}.",
                        "Check the output folder exists and is writable.") from None
    with contextlib.suppress(OSError):
        dir_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def temp_name(final: Path) -> Path:
    return final.with_name(f".{final.name}.part")


def _signed(tmp: Path, final: Path, credentials: Credentials | None) -> Path:
    """The finished temp file to rename over ``final``: ``tmp`` itself, or its signed copy (``tmp`` removed)."""
    if credentials is None:
        return tmp
    signed = final.with_name(f".{final.name}.signed.part")
    try:
        credentials.sign_file(tmp, signed, title=final.name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return signed


def draw_mark(frame: np.ndarray, text: str = "SYNTHETIC - face-swapped") -> np.ndarray:
    """Burn a small visible label into the bottom-right corner (in place; returns the frame)."""
    import cv2

    height, width = frame.shape[:2]
    scale = max(0.35, min(width, height) / 900.0)
    thickness = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(4, round(6 * scale))
    x0, y0 = max(0, width - tw - 2 * pad), max(0, height - th - base - 2 * pad)
    region = frame[y0:height, x0:width]
    region[:] = (region.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken the box behind the text
    cv2.putText(frame, text, (x0 + pad, height - base - pad), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), thickness, cv2.LINE_AA)
    return frame


class VideoWriter:
    """One ffmpeg process that encodes raw BGR frames from a pipe into an MP4 file."""

    def __init__(self, path: str | os.PathLike[str], width: int, height: int,
                 fps: Fraction | str | float, crf: int = 18, preset: str = "veryfast",
                 audio_source: str | os.PathLike[str] | None = None, video_start_s: float = 0.0,
                 label: dict[str, str] | None = None, mark: bool = False, gray: bool = False,
                 credentials: Credentials | None = None) -> None:
        if preset not in X264_PRESETS:
            raise UserError(f"{preset!r} is not an x264 preset.", f"Use one of: {', '.join(X264_PRESETS)}.")
        if not 0 <= crf <= 51:
            raise UserError(f"Quality (crf) must be 0..51, not {crf}.", "18 is visually lossless; 23 is smaller.")
        self.path = Path(path)
        self.tmp = temp_name(self.path)
        self.width, self.height, self.mark, self.gray = width, height, mark, gray
        self.credentials = credentials
        self.frames = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()
        args = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                "-f", "rawvideo", "-pix_fmt", "gray" if gray else "bgr24", "-s", f"{width}x{height}",
                "-framerate", fps_text(fps)]
        if video_start_s:
            args += ["-itsoffset", f"{video_start_s:.6f}"]
        args += ["-i", "pipe:0"]
        if audio_source is not None:
            codec = audio_codec(audio_source)
            if codec is not None:
                args += ["-i", str(audio_source), "-map", "0:v:0", "-map", "1:a:0",
                         "-c:a", "copy" if codec in MP4_AUDIO_CODECS else "aac"]
        if width % 2 or height % 2:
            # yuv420p needs even sizes: pad one black row/column rather than rescale the picture.
            args += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
        args += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
                 *_metadata_args(label), "-movflags", "+faststart+use_metadata_tags", "-f", "mp4", str(self.tmp)]
        self._log = tempfile.TemporaryFile()
        try:
            self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log)
        except OSError as exc:
            self._log.close()
            raise UserError(f"ffmpeg could not be started: {exc.strerror}.",
                            "Reinstall swapwizard (imageio-ffmpeg ships the ffmpeg binary).") from None

    def _log_text(self) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def write(self, frame: np.ndarray) -> None:
        expected = (self.height, self.width) if self.gray else (self.height, self.width, 3)
        if frame.shape != expected or frame.dtype != np.uint8:
            raise ValueError(f"frame is {frame.shape} {frame.dtype}, writer expects {expected} uint8")
        if self.mark and not self.gray:
            frame = draw_mark(frame.copy())
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).data)
        except (BrokenPipeError, OSError):
            self._proc.wait()
            error = _fail_from_log(self._log_text(), self.path, "the video")
            self.abort()
            raise error from None
        self.frames += 1

    def close(self) -> Path:
        """Finish the file and move it to its final name; returns that path."""
        try:
            self._proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        code = self._proc.wait()
        if code != 0:
            error = _fail_from_log(self._log_text(), self.path, "the video")
            self.abort()
            raise error
        self._log.close()
        _finish(_signed(self.tmp, self.path, self.credentials), self.path)
        return self.path

    def abort(self) -> None:
        """Stop ffmpeg and delete the temp file; the final name is never touched."""
        if self._proc.poll() is None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
            self._proc.kill()
            self._proc.wait()
        with contextlib.suppress(OSError):
            self._log.close()
        for leftover in (self.tmp, self.path.with_name(f".{self.path.name}.signed.part")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def join_segments(segments: Sequence[Path], path: str | os.PathLike[str],
                  audio_source: str | os.PathLike[str] | None = None, video_start_s: float = 0.0,
                  label: dict[str, str] | None = None, credentials: Credentials | None = None) -> Path:
    """Join video-only MP4 segments (stream copy), add the audio and the label (and sign it with
    ``credentials``); atomic like VideoWriter."""
    path = Path(path)
    tmp = temp_name(path)
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    listing = path.with_name(f".{path.name}.segments.txt")
    # The concat demuxer's list: one quoted absolute path per line ('\'' escapes a quote).
    lines = ["ffconcat version 1.0"] + [
        "file '" + str(Path(s).resolve()).replace("'", "'\\''") + "'" for s in segments]
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
    if video_start_s:
        args += ["-itsoffset", f"{video_start_s:.6f}"]
    args += ["-f", "concat", "-safe", "0", "-i", str(listing)]
    maps = ["-map", "0:v:0"]
    if audio_source is not None:
        codec = audio_codec(audio_source)
        if codec is not None:
            args += ["-i", str(audio_source)]
            maps += ["-map", "1:a:0", "-c:a", "copy" if codec in MP4_AUDIO_CODECS else "aac"]
    args += [*maps, "-c:v", "copy", *_metadata_args(label), "-movflags", "+faststart+use_metadata_tags",
             "-f", "mp4", str(tmp)]
    result = subprocess.run(args, capture_output=True, text=True, errors="replace", check=False)
    listing.unlink(missing_ok=True)
    if result.returncode != 0:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise _fail_from_log(result.stderr, path, "the video")
    _finish(_signed(tmp, path, credentials), path)
    return path


def png_with_text(image: np.ndarray, text: dict[str, str], compression: int = 3,
                  credentials: Credentials | None = None, title: str = "image.png") -> bytes:
    """Encode a BGR (or gray) image as PNG with ``tEXt`` chunks right after the header; with
    ``credentials`` also an XMP chunk and a signed C2PA manifest (``title`` names the file in it)."""
    import cv2

    ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise ValueError("PNG encoding failed")
    data = encoded.tobytes()
    chunks = b""
    for key, value in text.items():
        body = key.encode("latin-1", "replace")[:79] + b"\0" + value.encode("latin-1", "replace")
        chunks += len(body).to_bytes(4, "big") + b"tEXt" + body + \
            zlib.crc32(b"tEXt" + body).to_bytes(4, "big")
    header_end = 8 + 4 + 4 + 13 + 4  # signature, then the IHDR chunk (length, type, 13 bytes, crc)
    data = data[:header_end] + chunks + data[header_end:]
    return data if credentials is None else credentials.sign_bytes(data, "image/png", title)


def png_text(data: bytes) -> dict[str, str]:
    """Read the ``tEXt`` chunks of a PNG file's bytes (to check a label)."""
    found: dict[str, str] = {}
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        if kind == b"tEXt":
            key, _, value = data[pos + 8:pos + 8 + length].partition(b"\0")
            found[key.decode("latin-1")] = value.decode("latin-1")
        if kind == b"IEND":
            break
        pos += 12 + length
    return found
