"""Where a workspace's segmenter, masks and painted labels live, and reading them (no torch).

::

    WS/segmenter/segmenter.safetensors   the U-Net's weights (tensors only: no code runs on load)
    WS/segmenter/segmenter.json          its shape, iteration, target, what it was trained on, IoU
    WS/segmenter/optimizer.safetensors   Adam's state, for resuming
    WS/data_<side>/masks/<crop>.png      the segmenter's mask per aligned crop: greyscale PNG at the
                                         crop's size, 255 = visible face, 0 = not face (occluder,
                                         background); values between are its certainty
    WS/data_<side>/masks/index.json      per crop: uncertainty, agreement with the hull, occluded
                                         fraction; and which segmenter made them
    WS/data_<side>/masks_user/<crop>.png masks the user painted (swapwizard masks import): they
                                         outrank the segmenter's, in training the segmenter, in
                                         training the face model and in merging

``mask_for(side_dir, crop_file)`` is the mask a face uses: the painted one if any, else the
segmenter's, else None.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import read_json

SEGMENTER_DIR = "segmenter"
WEIGHTS = "segmenter.safetensors"
CONFIG = "segmenter.json"
OPTIMIZER = "optimizer.safetensors"
MASKS = "masks"
USER = "masks_user"
INDEX = "index.json"
#: A face counts as occluded when the segmenter's visible face covers this much less than the hull.
OCCLUDED_FRACTION = 0.05


def segmenter_dir(ws: Any) -> Path:
    return Path(ws.root) / SEGMENTER_DIR


def stem(crop_file: str) -> str:
    """``aligned/000012_0.jpg`` -> ``000012_0``."""
    return Path(crop_file).stem


def mask_path(side_dir: Path, crop_file: str) -> Path:
    return Path(side_dir) / MASKS / f"{stem(crop_file)}.png"


def user_path(side_dir: Path, crop_file: str) -> Path:
    return Path(side_dir) / USER / f"{stem(crop_file)}.png"


def mask_for(side_dir: Path, crop_file: str) -> Path | None:
    """The mask file a face uses (painted > segmenter's), or None."""
    if not crop_file:
        return None
    for path in (user_path(side_dir, crop_file), mask_path(side_dir, crop_file)):
        if path.is_file():
            return path
    return None


def read_mask(path: Path, size: int | None = None) -> np.ndarray | None:
    """A mask PNG as uint8 (size x size when given), or None when it cannot be read."""
    import cv2

    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        return None
    if size is not None and mask.shape[:2] != (size, size):
        interp = cv2.INTER_AREA if mask.shape[0] > size else cv2.INTER_LINEAR
        mask = cv2.resize(mask, (size, size), interpolation=interp)
    return mask


#: The segmenter's probability is its certainty, not a blend weight: masks that cut a face use it through a
#: steep ramp (0 below LOW, 1 above HIGH), so an occluder the segmenter is fairly sure of stays wholly in front.
LOW, HIGH = 0.3, 0.7


def visible(mask: np.ndarray) -> np.ndarray:
    """A stored mask (uint8 probability) as the float32 0..1 face mask that merging and training use."""
    return np.clip((mask.astype(np.float32) * (1.0 / 255.0) - LOW) * (1.0 / (HIGH - LOW)), 0.0, 1.0)


def index(side_dir: Path) -> dict[str, Any]:
    """The masks' index (``{"segmenter": {...}, "faces": {stem: {...}}}``), empty when absent."""
    data = read_json(Path(side_dir) / MASKS / INDEX, default=None)
    return data if isinstance(data, dict) and isinstance(data.get("faces"), dict) else {"faces": {}}


def config(ws: Any) -> dict[str, Any] | None:
    data = read_json(segmenter_dir(ws) / CONFIG, default=None)
    return data if isinstance(data, dict) else None


def has_masks(ws: Any, side: str) -> bool:
    return bool(index(ws.side_dir(side))["faces"])


def occluded_count(ws: Any, side: str) -> dict[str, Any]:
    """How many of a side's faces have an occluder: by the segmenter's masks (visible face
    ``OCCLUDED_FRACTION`` smaller than the hull) and by the hands recorded at extraction."""
    faces = index(ws.side_dir(side))["faces"]
    by_masks = sum(1 for info in faces.values() if float(info.get("occluded", 0.0)) >= OCCLUDED_FRACTION)
    return {"masked_faces": len(faces), "occluded_by_mask": by_masks}
