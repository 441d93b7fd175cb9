"""Pack a side's face set into one file, and unpack one into a workspace: a zip, never a pickle.

The archive holds ``faceset.json`` (format version, face type, crop size, face count),
``alignments.jsonl`` (the header and the target person's records, as in engine.faces.records) and
``aligned/<crop>`` files. Only faces whose crop is still in ``aligned/`` are packed, so a cleaned set
stays clean. Unpacking checks every entry (only those three kinds of names; no ``..``, no absolute
paths, no links, a size limit for all and for each, free space) and every record's ``file`` (a crop
under ``aligned/``, inside the folder: engine.paths); each crop must be the image its name says
(format, size, read from its header before it is written). It builds the new set completely in a
staging folder beside the old one and swaps it in by renames, so a face set that fails leaves the
side as it was; it refuses to replace a side that already has faces unless ``force``. Packing
refuses a record whose crop lies outside the side. A side that came from a face set is not
re-extracted from footage unless forced.

Standard library only (plus the records module, and Pillow to read crop headers when unpacking), so it
is cheap to call from anywhere.
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
import zlib
from pathlib import Path
from typing import Any

from engine.atomic import atomic_open, fsync_dir
from engine.errors import UserError
from engine.faces.records import present_faces, read_alignments, target_track_ids, write_alignments
from engine.paths import UnsafePath, inside
from engine.workspace import Workspace

FORMAT = 1
MAX_BYTES = 64 * 1024**3
_CROP_NAME = re.compile(r"aligned/[A-Za-z0-9_.-]{1,128}\.(jpg|jpeg|png)")
#: The image format each crop name promises (checked in its header before it is written).
_FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG"}
#: A crop's side at most (pixels; extraction writes up to 1024), and what its file may weigh beyond
#: its pixels stored raw (headers, metadata).
MAX_CROP_SIDE = 4096
CROP_SLACK_BYTES = 1 << 20
#: faceset.json at most, and alignments.jsonl at most (a record is about 10 kB; the header's thumbnails).
MAX_MANIFEST_BYTES = 1 << 20
RECORDS_BASE_BYTES, RECORD_BYTES = 16 << 20, 64 << 10


def pack(ws: Workspace, side: str, file: str | os.PathLike[str]) -> dict[str, Any]:
    target = Path(file).expanduser()
    if target.suffix.lower() != ".zip":
        target = target.with_suffix(target.suffix + ".zip") if target.suffix else target.with_suffix(".zip")
    if target.exists():  # it was overwritten without a word
        raise UserError(f"{target} already exists.", "Choose another file name, or remove the old face set first.")
    header, _ = read_alignments(ws.alignments_path(side))
    faces = present_faces(ws, side)
    if not faces:
        raise UserError(f"{side} has no aligned faces to pack.", f"Run: swapwizard extract WS --side {side}")
    targets = target_track_ids(header)
    header = {**header, "tracks": [t for t in header.get("tracks", []) if t.get("id") in targets],
              "people": [p for p in header.get("people", []) if p.get("id") == header.get("target_person")]}
    manifest = {"format": FORMAT, "kind": "swapwizard-faceset", "side": side, "faces": len(faces),
                "face_type": header.get("face_type"), "size": header.get("size"),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "source": header.get("source", {}).get("name")}
    side_dir = ws.side_dir(side)
    # Never ship a file from outside the side folder (a hand-edited record, or a link in aligned/).
    crops = [_crop_path(side_dir, record.file, ws.alignments_path(side)) for record in faces]
    with tempfile.TemporaryDirectory() as tmp:
        alignments = Path(tmp) / "alignments.jsonl"
        write_alignments(alignments, header, faces)
        with atomic_open(target) as handle, zipfile.ZipFile(handle, "w") as archive:
            archive.writestr("faceset.json", json.dumps(manifest, indent=2))
            archive.write(alignments, "alignments.jsonl", compress_type=zipfile.ZIP_DEFLATED)
            for record, crop in zip(faces, crops):
                # Crops are JPEG/PNG already: storing them is as small and much faster.
                archive.write(crop, record.file, compress_type=zipfile.ZIP_STORED)
    return {"side": side, "file": str(target), "faces": len(faces), "bytes": target.stat().st_size}


def _check_entries(archive: zipfile.ZipFile) -> None:
    total = 0
    crops = sum(1 for info in archive.infolist() if _CROP_NAME.fullmatch(info.filename))
    limits = {"faceset.json": MAX_MANIFEST_BYTES, "alignments.jsonl": RECORDS_BASE_BYTES + RECORD_BYTES * crops}
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
        if info.file_size > limits.get(name, MAX_BYTES):
            raise UserError(f"The face set's {name} is {info.file_size / 1e6:,.1f} MB, far more than a face set "
                            "holds; refusing it.", "Check where the file came from; pack the face set again.")
        total += info.file_size
    if total > MAX_BYTES:
        raise UserError("The face set unpacks to more than 64 GiB; refusing it.", "Check where the file came from.")


def _extract(archive: zipfile.ZipFile, staging: Path, crop_size: object) -> None:
    """Write every entry into ``staging`` after checking it: room on the disk for all of them first,
    then each crop is the image its name says (format, square, ``crop_size`` pixels when the manifest
    gives one, no bigger than its pixels allow), read from its header before a byte is written."""
    from PIL import Image, UnidentifiedImageError

    needed = sum(info.file_size for info in archive.infolist())
    free = shutil.disk_usage(staging).free
    if needed > free:
        raise UserError(f"The face set unpacks to {needed / 1e6:,.0f} MB but {staging.parent} has only "
                        f"{free / 1e6:,.0f} MB free; nothing was changed.", "Free some space (df -h), then try again.")
    side = crop_size if isinstance(crop_size, int) and 0 < crop_size <= MAX_CROP_SIDE else None
    for info in archive.infolist():
        match = _CROP_NAME.fullmatch(info.filename)
        if match:
            hint = "The file was not made by swapwizard faceset pack, or was damaged: pack the face set again."
            expected = _FORMATS[match.group(1)]
            try:
                with archive.open(info) as data, Image.open(data, formats=(expected,)) as image:
                    found, (width, height) = image.format, image.size
            except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError, zipfile.BadZipFile):
                raise UserError(f"The face set's {info.filename} is not a {expected} image; refusing it.", hint) from None
            if found != expected or width != height or width > MAX_CROP_SIDE or (side and width != side):
                wanted = f"{side} x {side}" if side else f"square, at most {MAX_CROP_SIDE} px"
                raise UserError(f"The face set's {info.filename} is {width} x {height} pixels, not {wanted}; "
                                "refusing it.", hint)
            if info.file_size > width * height * 4 + CROP_SLACK_BYTES:
                raise UserError(f"The face set's {info.filename} is {info.file_size / 1e6:,.1f} MB, more than a "
                                f"{width} x {height} image can be; refusing it.", hint)
        archive.extract(info, staging)


def _crop_path(folder: Path, name: str, source: Path) -> Path:
    """The crop a record names: a crop name under ``aligned/`` whose file (links followed) is inside ``folder``."""
    path = inside(folder, name, f"{source} (a face's file)", resolve=True)
    if not _CROP_NAME.fullmatch(name):
        raise UnsafePath(f"{source} names {name!r} as a face crop, which is not a file in aligned/; refusing it.",
                         "Extract that side again, or unpack a face set made by swapwizard faceset pack.")
    return path


#: What a side's face set consists of; a replaced set loses all of it (and its trash) together.
_SET_ITEMS = ("aligned", "alignments.jsonl", ".extract", "tracks", "people", "aligned_trash", "sort.json",
              "identity.safetensors")
_OLD = ".old"


def unpack(ws: Workspace, side: str, file: str | os.PathLike[str], force: bool = False) -> dict[str, Any]:
    """Unpack a face set into ``side``. The new set is built and checked completely in a staging folder
    beside the old one, and only then swapped in by renames: a face set that fails to unpack (a damaged
    or empty zip) leaves the side as it was, ``force`` or not."""
    path = Path(file).expanduser()
    if not path.is_file():
        raise UserError(f"{path} does not exist.", "Check the path (quote it if it has spaces).")
    side_dir = ws.side_dir(side)
    side_dir.mkdir(parents=True, exist_ok=True)
    _recover(side_dir)
    has_faces = ws.alignments_path(side).exists() or any((side_dir / "aligned").glob("*"))
    if has_faces and not force:
        raise UserError(f"{side} already has extracted faces.", "Add --force to replace them with the face set.")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise UserError(f"{path.name} is not a face set (not a zip file).", "Give a file made by swapwizard faceset pack.") from None
    staging = Path(tempfile.mkdtemp(dir=side_dir, prefix=".unpack-"))
    try:
        with archive:
            _check_entries(archive)
            try:
                manifest = json.loads(archive.read("faceset.json"))
                version = int(manifest.get("format", 0))
            except (KeyError, ValueError, TypeError, AttributeError):
                raise UserError(f"{path.name} is not a swapwizard face set (no valid faceset.json).",
                                "Give a file made by swapwizard faceset pack.") from None
            if manifest.get("kind") != "swapwizard-faceset" or version > FORMAT:
                raise UserError(f"{path.name} is not a face set this swapwizard can read.", "Upgrade swapwizard or pack it again.")
            if "alignments.jsonl" not in archive.namelist():
                raise UserError(f"{path.name} holds no face records (alignments.jsonl).", "Pack it again.")
            try:
                _extract(archive, staging, manifest.get("size"))
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise UserError(f"{path.name} is damaged ({exc}).", "Copy or pack the face set again.") from None
        records_path = staging / "alignments.jsonl"
        header, records = read_alignments(records_path)
        missing = [r.file for r in records if not _crop_path(staging, r.file, records_path).is_file()]
        if missing:
            raise UserError(f"The face set lacks {len(missing)} of its crops (e.g. {missing[0]}).", "Pack it again.")
        if not records:
            raise UserError(f"{path.name} holds no faces; data_{side} was left as it was.",
                            "Pack the face set again from a side that has faces.")
        header = {**header, "from_faceset": path.name}
        write_alignments(records_path, header, records)
        _swap_in(side_dir, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"side": side, "faces": len(records), "face_type": header.get("face_type"), "size": header.get("size")}


def _swap_in(side_dir: Path, staging: Path) -> None:
    """Move the old set aside into ``staging/.old``, the new ``aligned/`` in, and its alignments last
    (the commit point); undo everything on an error."""
    old = staging / _OLD
    old.mkdir()
    try:
        for name in _SET_ITEMS:
            if os.path.lexists(side_dir / name):
                os.replace(side_dir / name, old / name)
        os.replace(staging / "aligned", side_dir / "aligned")
        os.replace(staging / "alignments.jsonl", side_dir / "alignments.jsonl")
    except BaseException:
        _restore_old(side_dir, staging)
        raise
    fsync_dir(side_dir)


def _restore_old(side_dir: Path, staging: Path) -> None:
    """Undo an unfinished swap: drop a new ``aligned/`` already moved in, put the old set back."""
    old = staging / _OLD
    if not old.is_dir() or not (staging / "alignments.jsonl").exists():
        return  # the swap never started, or it was committed (the new alignments moved in)
    if not (staging / "aligned").exists() and (side_dir / "aligned").is_dir():
        shutil.rmtree(side_dir / "aligned")
    for item in old.iterdir():
        if not os.path.lexists(side_dir / item.name):
            os.replace(item, side_dir / item.name)


def _recover(side_dir: Path) -> None:
    """Finish what an unpack killed mid-swap left: put the old set back unless the new one was committed."""
    for staging in side_dir.glob(".unpack-*"):
        _restore_old(side_dir, staging)
        shutil.rmtree(staging, ignore_errors=True)
