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
    WS/data_<side>/masks_user/<crop>.png masks the user painted (swapwizard masks import, or accepted
                                         in the wizard's mask review): they outrank the segmenter's,
                                         in training the segmenter, in training the face model and
                                         in merging
    WS/data_<side>/masks_marks.json      the mask review's marks per crop (engine.segment.review):
                                         "accept" or "reject"

``mask_for(side_dir, crop_file)`` is the mask a face uses: the painted one if any, else the
segmenter's unless the user rejected it, else None (the landmark hull). No OpenCV or torch here:
the wizard reads masks and marks through this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.atomic import read_json

if TYPE_CHECKING:  # the wizard reads this module (engine.segment.decision): no numpy at its start
    import numpy as np

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
    """The mask file a face uses (painted > segmenter's, unless rejected in the review), or None."""
    if not crop_file:
        return None
    painted = user_path(side_dir, crop_file)
    if painted.is_file():
        return painted
    if stem(crop_file) in rejected(side_dir):
        return None
    path = mask_path(side_dir, crop_file)
    return path if path.is_file() else None


MARKS = "masks_marks.json"
ACCEPT, REJECT = "accept", "reject"
_marks_cache: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}


def marks(side_dir: Path) -> dict[str, Any]:
    """The review's marks ``{stem: {"mark": "accept" | "reject", ...}}`` (cached until the file changes)."""
    path = Path(side_dir) / MARKS
    try:
        st = path.stat()
    except OSError:
        return {}
    stamp = (st.st_mtime_ns, st.st_ino, st.st_size)
    cached = _marks_cache.get(str(path))
    if cached is not None and cached[0] == stamp:
        return cached[1]
    data = read_json(path, default=None)
    faces = data.get("faces") if isinstance(data, dict) else None
    faces = {k: v for k, v in faces.items() if isinstance(k, str) and isinstance(v, dict)} \
        if isinstance(faces, dict) else {}
    _marks_cache[str(path)] = (stamp, faces)
    return faces


def rejected(side_dir: Path) -> set[str]:
    """The faces whose segmenter mask the user rejected (stems)."""
    return {name for name, mark in marks(side_dir).items() if mark.get("mark") == REJECT}


def doubt(info: dict[str, Any]) -> float:
    """How much the segmenter doubts a face (its ``index`` entry): uncertainty plus disagreement with the
    hull. Worst first everywhere (``masks export --worst``, the review sheet, the wizard's review)."""
    return float(info.get("uncertainty", 0.0)) + (1.0 - float(info.get("hull_iou", 1.0)))


def masks_identity(side_dir: Path) -> dict[str, Any]:
    """What a side's masks are now, for caches and resumes: the segmenter that made them, the painted
    labels (names, sizes, times) and the rejected faces, each as a short digest."""
    import hashlib

    side_dir = Path(side_dir)
    painted = hashlib.sha1()
    folder = side_dir / USER
    if folder.is_dir():
        for path in sorted(folder.glob("*.png")):
            st = path.stat()
            painted.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return {"segmenter": index(side_dir).get("segmenter"), "painted": painted.hexdigest()[:16],
            "rejected": hashlib.sha1("\n".join(sorted(rejected(side_dir))).encode()).hexdigest()[:16]}


#: The segmenter's probability is its certainty, not a blend weight: masks that cut a face use it through a
#: steep ramp (0 below LOW, 1 above HIGH), so an occluder the segmenter is fairly sure of stays wholly in front.
LOW, HIGH = 0.3, 0.7


def visible(mask: np.ndarray) -> np.ndarray:
    """A stored mask (uint8 probability) as the float32 0..1 face mask that merging and training use."""
    import numpy as np

    return np.clip((mask.astype(np.float32) * (1.0 / 255.0) - LOW) * (1.0 / (HIGH - LOW)), 0.0, 1.0)


def index(side_dir: Path) -> dict[str, Any]:
    """The masks' index (``{"segmenter": {...}, "faces": {stem: {...}}}``), empty when absent."""
    data = read_json(Path(side_dir) / MASKS / INDEX, default=None)
    return data if isinstance(data, dict) and isinstance(data.get("faces"), dict) else {"faces": {}}


def config(ws: Any) -> dict[str, Any] | None:
    data = read_json(segmenter_dir(ws) / CONFIG, default=None)
    return data if isinstance(data, dict) else None


#: The generic segmenter shipped in the package (trained by ``python -m engine.segment.generic``).
GENERIC = Path(__file__).resolve().parent.parent / "assets" / "segmenter"


def generic_dir() -> Path | None:
    """The shipped generic segmenter's folder, or None when this install has none."""
    return GENERIC if (GENERIC / WEIGHTS).is_file() and (GENERIC / CONFIG).is_file() else None


def has_masks(ws: Any, side: str) -> bool:
    return bool(index(ws.side_dir(side))["faces"])


def occluded_count(ws: Any, side: str) -> dict[str, Any]:
    """How many of a side's faces have an occluder: by the segmenter's masks (visible face
    ``OCCLUDED_FRACTION`` smaller than the hull) and by the hands recorded at extraction."""
    faces = index(ws.side_dir(side))["faces"]
    by_masks = sum(1 for info in faces.values() if float(info.get("occluded", 0.0)) >= OCCLUDED_FRACTION)
    return {"masked_faces": len(faces), "occluded_by_mask": by_masks}
