"""Face sets for training: aligned crops in memory, with their face mask and eyes-and-mouth mask.

Each set is one uint8 tensor ``N x 5 x R x R`` (R = the model's resolution): BGR, the face mask,
and the eyes-and-mouth mask, ready to be indexed by batch and augmented on the device. Holding the
set as uint8 at training resolution keeps 20 000 faces at 128 px in 1.6 GB; on a GPU it lives in
device memory when it fits (no host-to-device copy per batch), otherwise in pinned host memory.

The crops come from the extraction step: ``engine.faces.split.training_faces(ws, side)`` gives
the records (crop file, landmarks in crop coordinates, mask polygon) of every crop the user kept.
Until the extraction records exist, or for a plain folder of aligned faces (pretraining sets),
the crop files in the folder are used without landmarks: the face mask is then the whole crop and
the eyes-and-mouth weighting is off, and the trainer says so. Where the segmenter has written a mask
for a crop (``swapwizard segment``; a mask the user painted first), the face mask is that visible face
instead of the landmark outline, so the masked loss never learns a hand or a microphone.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from engine.errors import UserError
from engine.faces.landmarks import LIP_OUTLINE
from engine.faces.records import face_mask, load_header
from engine.faces.split import training_faces
from engine.segment.store import mask_for, visible
from engine.train.store import StoredFaces, open_or_build, store_key
from engine.workspace import IMAGE_EXTENSIONS, Workspace

# MediaPipe face-mesh indices (468-point topology) of the eye contours (the lips: engine.faces.landmarks).
EYES = ([33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246],
        [263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466])
#: The folder of the workspace's face stores, under .swapwizard/.
STORE_DIR = "faces"


@dataclass
class FaceItem:
    path: Path
    landmarks: np.ndarray | None  # (468, 2+) in crop pixels
    mask: np.ndarray | None  # uint8 HxW at crop size, from the extraction's mask polygon
    #: The segmenter's (or a painted) mask of this face (engine.segment.store): the visible face, so the
    #: masked loss never learns an occluder; used instead of ``mask`` when it can be read.
    mask_file: Path | None = None
    #: The extraction record: ``landmarks`` and ``mask`` are made from it when the face is decoded (a set
    #: of 100 000 faces never holds them all at once).
    record: Any = None

    def resolved(self) -> FaceItem:
        if self.record is None or (self.landmarks is not None and self.mask is not None):
            return self
        record = self.record
        landmarks = self.landmarks if self.landmarks is not None else np.asarray(record.aligned_landmarks(),
                                                                                   np.float32)
        mask = self.mask if self.mask is not None else np.asarray(face_mask(record, record.size), np.uint8)
        return replace(self, landmarks=landmarks, mask=mask, record=None)


@dataclass
class FaceSet:
    name: str
    #: N x 5 x R x R uint8: B, G, R, face mask, eyes-and-mouth mask; in memory, or on disk
    #: (``engine.train.store.StoredFaces``: rows read per batch).
    data: torch.Tensor | StoredFaces
    files: list[str]
    has_landmarks: bool

    def __len__(self) -> int:
        return int(self.data.shape[0])


def eyes_mouth_mask(landmarks: np.ndarray, size: int, scale: float) -> np.ndarray:
    """Filled hulls of both eyes and the mouth, dilated a little, at ``size`` pixels."""
    mask = np.zeros((size, size), np.uint8)
    points = np.asarray(landmarks)[:, :2] * scale
    for group in (*EYES, LIP_OUTLINE):
        hull = cv2.convexHull(points[group].astype(np.float32)).astype(np.int32)
        cv2.fillConvexPoly(mask, hull, 255)
    grow = max(1, size // 32)
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))


def _load_one(item: FaceItem, res: int) -> np.ndarray | None:
    image = cv2.imread(str(item.path), cv2.IMREAD_COLOR)
    if image is None:
        return None
    item = item.resolved()
    size = image.shape[0]
    out = np.zeros((res, res, 5), np.uint8)
    interp = cv2.INTER_AREA if size > res else cv2.INTER_CUBIC
    out[..., :3] = cv2.resize(image, (res, res), interpolation=interp)
    segmented = cv2.imread(str(item.mask_file), cv2.IMREAD_GRAYSCALE) if item.mask_file is not None else None
    if segmented is not None:
        segmented = cv2.resize(segmented, (res, res), interpolation=cv2.INTER_AREA if segmented.shape[0] > res
                               else cv2.INTER_LINEAR)
        out[..., 3] = np.round(visible(segmented) * 255).astype(np.uint8)
    elif item.mask is not None:
        out[..., 3] = cv2.resize(item.mask, (res, res), interpolation=cv2.INTER_LINEAR)
    else:
        out[..., 3] = 255
    if item.landmarks is not None:
        out[..., 4] = eyes_mouth_mask(item.landmarks, res, res / size)
    return out


def _items_from_records(ws: Workspace, side: str) -> list[FaceItem] | None:
    """Items from the extraction records, or None when there are no records."""
    if not ws.alignments_path(side).is_file():
        return None
    records = training_faces(ws, side)
    if not records:
        return None
    items = []
    for record in records:
        path = ws.side_dir(side) / record.file
        if path.is_file():  # the user may have deleted the crop after extraction
            items.append(FaceItem(path, None, None, mask_for(ws.side_dir(side), record.file), record=record))
    return items


def _items_from_folder(folder: Path) -> list[FaceItem]:
    if not folder.is_dir():
        return []
    return [FaceItem(p, None, None) for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")]


def _has_landmarks(item: FaceItem) -> bool:
    return item.landmarks is not None or item.record is not None


def load_items(items: list[FaceItem], name: str, res: int, where: str,
               progress: Callable[[int, int], None] | None = None, store: Path | None = None,
               key_extra: tuple[Path, ...] = (), store_name: str | None = None) -> FaceSet:
    """The faces of ``items`` at ``res``: in memory, or with ``store`` (a folder) from an on-disk store
    there (``engine.train.store``), built first if missing or stale (``key_extra``: more files its key
    covers, such as the extraction records)."""
    if not items:
        raise UserError(f"There are no {name} faces to train on in {where}.",
                        "Give a folder of aligned face crops (such as a workspace's data_src/aligned) or an extracted "
                        "workspace." if name == "pretraining" else
                        "Run extraction first (swapwizard extract WS), or check the folder.")
    if store is not None:
        key = store_key([(str(item.path), item.mask_file) for item in items], res, key_extra)
        stored, manifest = open_or_build(store, store_name or name, res, key, items, lambda item: _load_one(item, res),
                                         lambda item: str(item.path), _has_landmarks, progress)
        if not len(stored):
            raise UserError(f"None of the {name} face images in {where} could be read.",
                            "Check that they are PNG or JPG files; run extraction again if needed.")
        return FaceSet(name, stored, list(manifest["files"]), bool(manifest["has_landmarks"]))
    arrays = []
    # Decoding releases the GIL, so threads load a big face set several times faster.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for array in pool.map(lambda item: _load_one(item, res), items):
            arrays.append(array)
            if progress is not None:
                progress(len(arrays), len(items))
    kept = [(item, a) for item, a in zip(items, arrays) if a is not None]
    if not kept:
        raise UserError(f"None of the {name} face images in {where} could be read.",
                        "Check that they are PNG or JPG files; run extraction again if needed.")
    data = torch.from_numpy(np.stack([a for _, a in kept])).permute(0, 3, 1, 2).contiguous()
    has_landmarks = all(_has_landmarks(item) for item, _ in kept)
    return FaceSet(name, data, [str(item.path) for item, _ in kept], has_landmarks)


def face_type(ws: Workspace, side: str) -> str | None:
    """What the side's crops cover, from the extraction header (None without records)."""
    if not ws.alignments_path(side).is_file():
        return None
    return load_header(ws, side).get("face_type")


def store_dir(ws: Workspace) -> Path:
    """Where a workspace keeps its on-disk face stores (a cache: pack leaves it out)."""
    return ws.state_dir / STORE_DIR


def _side_items(ws: Workspace, side: str) -> list[FaceItem]:
    items = _items_from_records(ws, side)
    return _items_from_folder(ws.aligned_dir(side)) if items is None else items


def load_side(ws: Workspace, side: str, res: int, progress: Callable[[int, int], None] | None = None,
              in_memory: bool = False) -> FaceSet:
    """The faces of one side of a workspace (the crops the user kept), from the workspace's on-disk
    store (``in_memory``: decoded into memory instead, as before the store)."""
    items = _side_items(ws, side)
    return load_items(items, side, res, str(ws.aligned_dir(side)), progress,
                      store=None if in_memory else store_dir(ws), key_extra=(ws.alignments_path(side),))


def load_folder(folder: Path, res: int, store: Path | None = None,
                progress: Callable[[int, int], None] | None = None) -> FaceSet:
    """Any folder of aligned face crops (a pretraining set); a workspace path uses both its sides.
    With ``store`` (the training workspace's store folder) the set is read from disk per batch."""
    folder = Path(folder).expanduser()
    name = "pretrain-" + hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
    if (folder / "workspace.toml").is_file():
        ws = Workspace.open(folder)
        sides = [side for side in ("src", "dst") if ws.aligned_dir(side).is_dir()]
        items = [item for side in sides for item in _side_items(ws, side)]
        return load_items(items, "pretraining", res, str(folder), progress, store=store,
                          key_extra=tuple(ws.alignments_path(side) for side in sides), store_name=name)
    if (folder / "aligned").is_dir():
        folder = folder / "aligned"
    return load_items(_items_from_folder(folder), "pretraining", res, str(folder), progress, store=store,
                      store_name=name)
