"""Pack a side's face set into one file, and unpack one into a workspace: a zip, never a pickle.

The archive holds ``faceset.json`` (format version, face type, crop size, face count),
``alignments.jsonl`` (the header and the target person's records, as in engine.faces.records) and
``aligned/<crop>`` files. Only faces whose crop is still in ``aligned/`` are packed, so a cleaned set
stays clean. Unpacking checks every entry (only those three kinds of names; no ``..``, no absolute
paths, no links, a size limit), unpacks into a temporary folder and moves it into place; it refuses
to replace a side that already has faces unless ``force``. A side that came from a face set is not
re-extracted from footage unless forced.

Standard library only (plus the records module), so it is cheap to call from anywhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from engine.atomic import atomic_open
from engine.errors import UserError
from engine.faces.records import present_faces, read_alignments, write_alignments
from engine.workspace import Workspace

FORMAT = 1
MAX_BYTES = 64 * 1024**3
_CROP_NAME = re.compile(r"aligned/[A-Za-z0-9_.-]{1,128}\.(jpg|jpeg|png)")


def pack(ws: Workspace, side: str, file: str | os.PathLike[str]) -> dict[str, Any]:
    header, _ = read_alignments(ws.alignments_path(side))
    faces = present_faces(ws, side)
    if not faces:
        raise UserError(f"{side} has no aligned faces to pack.", f"Run: swapwizard extract WS --side {side}")
    target = Path(file).expanduser()
    if target.suffix.lower() != ".zip":
        target = target.with_suffix(target.suffix + ".zip") if target.suffix else target.with_suffix(".zip")
    header = {**header, "tracks": [t for t in header.get("tracks", []) if t.get("id") == header.get("target_track")]}
    manifest = {"format": FORMAT, "kind": "swapwizard-faceset", "side": side, "faces": len(faces),
                "face_type": header.get("face_type"), "size": header.get("size"),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "source": header.get("source", {}).get("name")}
    side_dir = ws.side_dir(side)
    with tempfile.TemporaryDirectory() as tmp:
        alignments = Path(tmp) / "alignments.jsonl"
        write_alignments(alignments, header, faces)
        with atomic_open(target) as handle, zipfile.ZipFile(handle, "w") as archive:
            archive.writestr("faceset.json", json.dumps(manifest, indent=2))
            archive.write(alignments, "alignments.jsonl", compress_type=zipfile.ZIP_DEFLATED)
            for record in faces:
                # Crops are JPEG/PNG already: storing them is as small and much faster.
                archive.write(side_dir / record.file, record.file, compress_type=zipfile.ZIP_STORED)
    return {"side": side, "file": str(target), "faces": len(faces), "bytes": target.stat().st_size}


def _check_entries(archive: zipfile.ZipFile) -> None:
    total = 0
    for info in archive.infolist():
        name = info.filename
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UserError(f"The face set holds a link ({name}); refusing it.", "Pack the face set again with swapwizard.")
        if info.is_dir() and name in ("aligned/",):
            continue
        if name not in ("faceset.json", "alignments.jsonl") and not _CROP_NAME.fullmatch(name):
            raise UserError(f"The face set holds an unexpected entry {name!r}; refusing it.",
                            "Only face sets made by swapwizard faceset pack can be unpacked.")
        total += info.file_size
    if total > MAX_BYTES:
        raise UserError("The face set unpacks to more than 64 GiB; refusing it.", "Check where the file came from.")


def unpack(ws: Workspace, side: str, file: str | os.PathLike[str], force: bool = False) -> dict[str, Any]:
    path = Path(file).expanduser()
    if not path.is_file():
        raise UserError(f"{path} does not exist.", "Check the path (quote it if it has spaces).")
    side_dir = ws.side_dir(side)
    has_faces = ws.alignments_path(side).exists() or any((side_dir / "aligned").glob("*"))
    if has_faces and not force:
        raise UserError(f"{side} already has extracted faces.", "Add --force to replace them with the face set.")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise UserError(f"{path.name} is not a face set (not a zip file).", "Give a file made by swapwizard faceset pack.") from None
    with archive, tempfile.TemporaryDirectory(dir=side_dir, prefix=".unpack-") as tmp:
        _check_entries(archive)
        try:
            manifest = json.loads(archive.read("faceset.json"))
        except (KeyError, ValueError):
            raise UserError(f"{path.name} is not a swapwizard face set (no valid faceset.json).",
                            "Give a file made by swapwizard faceset pack.") from None
        if manifest.get("kind") != "swapwizard-faceset" or int(manifest.get("format", 0)) > FORMAT:
            raise UserError(f"{path.name} is not a face set this swapwizard can read.", "Upgrade swapwizard or pack it again.")
        archive.extractall(tmp)
        header, records = read_alignments(Path(tmp) / "alignments.jsonl")
        missing = [r.file for r in records if not (Path(tmp) / r.file).is_file()]
        if missing:
            raise UserError(f"The face set lacks {len(missing)} of its crops (e.g. {missing[0]}).", "Pack it again.")
        header = {**header, "from_faceset": path.name}
        write_alignments(Path(tmp) / "alignments.jsonl", header, records)
        for name in ("aligned", "alignments.jsonl", ".extract", "tracks"):
            old = side_dir / name
            if old.is_dir():
                shutil.rmtree(old)
            elif old.exists():
                old.unlink()
        os.replace(Path(tmp) / "aligned", side_dir / "aligned")
        os.replace(Path(tmp) / "alignments.jsonl", ws.alignments_path(side))
    return {"side": side, "faces": len(records), "face_type": header.get("face_type"), "size": header.get("size")}
