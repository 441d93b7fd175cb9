"""A video written as numbered segments, so an interrupted merge resumes instead of starting over.

Each segment is a complete, independently playable MP4 of ``segment_frames`` frames, written by
``VideoWriter`` under a temp name and renamed when whole: after a kill -9 the folder holds only
whole segments (plus at most one ``.part`` file, ignored and overwritten). The segments are joined
with a stream copy at the end (``encode.join_segments``), which costs seconds, not a re-encode.

Segments sit on a grid: segment k starts at frame ``k * segment_frames``. One process writes them in
order; merge workers (``engine.merge.workers``) each write a range of them, the same files one process
would; ``whole_segments`` lists what exists, so a resume does only the missing ones.

A ``manifest.json`` in the folder records what the segments were made from (settings, model,
destination); when that changes, old segments are thrown away rather than mixed into the result.
"""

from __future__ import annotations

import re
import shutil
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_write_json, read_json
from engine.media.encode import VideoWriter

_NAME = re.compile(r"^(?P<prefix>[a-z]+)-(?P<start>\d{8})-(?P<count>\d{6})\.mp4$")


def prepare_folder(folder: Path, fingerprint: dict[str, Any], restart: bool = False) -> bool:
    """Make ``folder`` hold only segments made from ``fingerprint``; True when old ones were kept."""
    manifest = folder / "manifest.json"
    if folder.is_dir() and not restart and read_json(manifest) == fingerprint:
        return True
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    atomic_write_json(manifest, fingerprint)
    return False


def whole_segments(folder: Path, prefix: str) -> list[tuple[int, int]]:
    """(start frame, frame count) of every whole segment of ``prefix`` in ``folder``, by start."""
    found = []
    for path in Path(folder).glob(f"{prefix}-*.mp4"):
        match = _NAME.match(path.name)
        if match and match["prefix"] == prefix:
            found.append((int(match["start"]), int(match["count"])))
    return sorted(found)


class SegmentedVideo:
    """Frames in, whole MP4 segments out; knows how many frames earlier runs already finished."""

    def __init__(self, folder: Path, prefix: str, width: int, height: int, fps: Fraction | str | float,
                 crf: int = 18, preset: str = "veryfast", segment_frames: int = 250, gray: bool = False) -> None:
        self.folder, self.prefix = Path(folder), prefix
        self.width, self.height, self.fps = width, height, fps
        self.crf, self.preset, self.gray = crf, preset, gray
        self.segment_frames = max(1, segment_frames)
        self._writer: VideoWriter | None = None
        self._start = 0

    def segments(self) -> list[Path]:
        """Whole segments that continue each other from frame 0, in order."""
        found: dict[int, tuple[int, Path]] = {}
        for path in self.folder.glob(f"{self.prefix}-*.mp4"):
            match = _NAME.match(path.name)
            if match and match["prefix"] == self.prefix:
                found[int(match["start"])] = (int(match["count"]), path)
        chain, position = [], 0
        while position in found:
            count, path = found[position]
            chain.append(path)
            position += count
        return chain

    def frames_done(self) -> int:
        return sum(int(_NAME.match(p.name)["count"]) for p in self.segments())

    def truncate(self, frames: int) -> None:
        """Delete segments that reach past ``frames`` (keeps two outputs in step after a crash)."""
        for path in self.folder.glob(f"{self.prefix}-*.mp4"):
            match = _NAME.match(path.name)
            if match and int(match["start"]) + int(match["count"]) > frames:
                path.unlink()

    def begin(self, start: int) -> None:
        """Next frame written is frame ``start`` (the first not covered by whole segments)."""
        self._start = start

    def write(self, frame: np.ndarray) -> None:
        if self._writer is None:
            self._writer = VideoWriter(self._pending_name(), self.width, self.height, self.fps,
                                       crf=self.crf, preset=self.preset, gray=self.gray)
        self._writer.write(frame)
        if self._writer.frames >= self.segment_frames:
            self._finish_segment()

    def _pending_name(self) -> Path:
        # The real name (with its frame count) is known only when the segment ends.
        return self.folder / f"open-{self.prefix}-{self._start:08d}.mp4"

    def _finish_segment(self) -> None:
        assert self._writer is not None
        count = self._writer.frames
        written = self._writer.close()
        written.rename(self.folder / f"{self.prefix}-{self._start:08d}-{count:06d}.mp4")
        self._start += count
        self._writer = None

    def close(self) -> None:
        if self._writer is not None:
            if self._writer.frames:
                self._finish_segment()
            else:
                self._writer.abort()
                self._writer = None

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
            self._writer = None
