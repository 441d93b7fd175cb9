"""Reuse a trained model on another clip: ``swapwizard merge WS --dst other.mp4``.

The other destination lives in its own folder of the workspace, ``extra_dst/<name>/`` (``name`` from
the clip's file name), with the same layout as the workspace's own destination::

    WS/extra_dst/<name>/data_dst.<ext>        a copy of the clip
    WS/extra_dst/<name>/data_dst/aligned/     its aligned faces, alignments.jsonl
    WS/extra_dst/<name>/output/result.mp4     the merged result (labelled and signed like any output)

``OtherDestination`` is a view of the workspace in which the destination side and the output folder
are that folder's, and everything else (settings, consent, models, the source side) the workspace's:
extraction (``engine.faces.extract.extract_side``) and merging (``engine.merge.render.render``) run on
it unchanged, so the workspace's own destination, its faces and its result are never touched. Both
steps resume like their usual selves (an extraction resumes at its checkpoint, a merge after its last
whole segment).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from engine.atomic import atomic_open
from engine.errors import UserError
from engine.workspace import VIDEO_EXTENSIONS, Workspace, check_source

EXTRA_DIR = "extra_dst"


def folder_name(clip: Path) -> str:
    """A safe folder name for ``clip`` (letters, digits, '-', '_', '.'; never empty or hidden)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", clip.stem if clip.is_file() else clip.name).strip("._") or "clip"
    return stem[:64]


class OtherDestination(Workspace):
    """The workspace with ``extra_dst/<name>/`` as its destination side and output folder."""

    def __init__(self, ws: Workspace, name: str) -> None:
        super().__init__(ws.root)
        self.name = name
        self.folder = ws.root / EXTRA_DIR / name

    def side_dir(self, side: str) -> Path:
        return self.folder / "data_dst" if side == "dst" else super().side_dir(side)

    def source(self, side: str) -> Path | None:
        if side != "dst":
            return super().source(side)
        for candidate in sorted(self.folder.glob("data_dst.*")):
            if candidate.suffix.lower() in VIDEO_EXTENSIONS and candidate.exists():
                return candidate
        return None

    @property
    def output_dir(self) -> Path:
        return self.folder / "output"


def prepare(ws: Workspace, clip: str | Path) -> OtherDestination:
    """The view for ``clip`` (a video file), its copy made once (again when the clip changed)."""
    given = Path(clip).expanduser()
    path = given if given.is_absolute() else ws.root / given
    if not path.exists():
        raise UserError(f"There is no video at {clip}.", "Give the path of the clip to merge, for example "
                        "--dst /data/other.mp4 (relative paths are taken from the workspace folder).")
    if path.is_dir():
        raise UserError(f"{clip} is a folder; --dst takes a video file.", "Give a video file such as other.mp4.")
    check_source(path, "dst")
    view = OtherDestination(ws, folder_name(path))
    view.folder.mkdir(parents=True, exist_ok=True)
    ws.restrict(view.folder.parent)
    copy = view.folder / f"data_dst{path.suffix.lower()}"
    if path.resolve() != copy.resolve():
        stale = [p for p in view.folder.glob("data_dst.*") if p != copy]
        same = copy.is_file() and copy.stat().st_size == path.stat().st_size and \
            int(copy.stat().st_mtime) == int(path.stat().st_mtime)
        if not same:
            for old in stale:
                old.unlink()
            copy_file(path, copy)  # whole or not there: a cut-short copy is never taken for the clip
            stat = path.stat()
            os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return view


def copy_file(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` atomically (a temp name renamed into place when whole)."""
    with source.open("rb") as reading, atomic_open(target) as writing:
        shutil.copyfileobj(reading, writing, 1 << 20)


def describe(view: OtherDestination) -> dict[str, Any]:
    """Where the other destination's pieces are (workspace-relative), for the job's result."""
    return {"name": view.name, "folder": view.rel(view.folder), "faces": view.rel(view.alignments_path("dst"))}
