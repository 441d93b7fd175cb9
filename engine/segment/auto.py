"""``[merge] mask = auto``: whether the destination's faces have something in front of them.

``scan(ws)`` looks at the destination's target faces (at most ``LIMIT``, evenly spread) two ways: the
hands recorded at extraction (``engine.faces.hands``), and the segmenter's doubt: the shipped generic
segmenter (or the workspace's own, once trained) predicts each crop, and a face whose landmark hull,
shrunk by a twelfth of the crop (the hull's own edge, where segmenter and landmarks disagree on every
face, left out), it finds ``DOUBT_FRACTION`` or more not visible counts as occluded. When at least ``MIN_FACES`` faces
(and ``MIN_SHARE`` of them) are, the merge needs the segmenter: ``auto_masks`` fine-tunes it on the
workspace's faces and writes the masks, and the merge uses ``hull*segment``; otherwise ``hull``,
nothing trained. The decision is kept in ``WS/segmenter/auto.json`` with the destination's alignments
it was made on (a new extraction scans again). The merge (``engine.merge.blend``) reads ``auto`` as
``hull*segment`` for a face with a segmenter mask and ``hull`` for one without. ``check`` records the same
decision (``decision``) and says it in one line (``engine.segment.decision.sentence``, no torch: the wizard's
Check and Merge steps read the recorded decision with it), with a rough estimate of the fine-tuning's time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from engine.atomic import atomic_write_json, read_json
from engine.segment import store
from engine.segment.decision import DECISION, alignments_id, recorded

LIMIT = 150
#: A face is occluded when this fraction of its inner hull is not visible face to the segmenter. Measured
#: with the shipped segmenter on the sample destination (128-pixel crops): 0.154 at most on the clean
#: clip (0.01 typically), 0.177-0.281 in each of the 30 frames with the microphone of tests/masks over the mouth.
DOUBT_FRACTION = 0.17
MIN_FACES, MIN_SHARE = 3, 0.03
#: What the merge waits for before it starts (the segmenter fine-tuned and its masks written: the faces loaded,
#: the steps, the held-out IoU, one mask per face), per step, in predictions of one face by the scan. One step
#: alone (16 faces warped, occluders pasted, forward and backward) measured 61-85 (1.55-1.76 s) on the 2-core
#: development machine; the whole of ``auto_masks`` on the test's occluded sample (200 steps, 75 faces, niced,
#: load 4-6) took 532 s and 418 s against scans of 23.4 and 17.3 ms a face: 113 and 120. The estimate scales
#: the scan's own time per face (this machine, this load) by it: rough, since the load moves.
STEP_PER_FACE = 115


def scan(ws: Any, limit: int = LIMIT) -> dict[str, Any]:
    """Count the destination's occluded faces (hands at extraction, the segmenter's doubt) and decide."""
    import cv2
    import numpy as np

    from engine.faces.records import face_mask, present_faces
    from engine.segment.model import Segmenter

    records = present_faces(ws, "dst")
    if len(records) > limit:
        records = [records[round(i * (len(records) - 1) / (limit - 1))] for i in range(limit)]
    hands = {r.frame for r in records if r.occluders}
    own = store.segmenter_dir(ws)
    folder = own if (own / store.WEIGHTS).is_file() and (own / store.CONFIG).is_file() else store.generic_dir()
    doubted: set[int] = set()
    predict_s = None
    if folder is not None and records:
        segmenter = Segmenter.load(folder, "cpu")
        res = segmenter.resolution
        side_dir = ws.side_dir("dst")
        crops, kept = [], []
        for record in records:
            crop = cv2.imread(str(side_dir / record.file), cv2.IMREAD_COLOR)
            if crop is not None:
                crops.append(cv2.resize(crop, (res, res), interpolation=cv2.INTER_AREA))
                kept.append(record)
        shrink = np.ones((max(3, (res // 12) | 1),) * 2, np.uint8)
        began = time.perf_counter()
        predicted = segmenter.predict(crops) if crops else []
        predict_s = (time.perf_counter() - began) / len(crops) if crops else None
        for record, probability in zip(kept, predicted):
            inner = cv2.erode((face_mask(record, res) > 127).astype(np.uint8), shrink) > 0
            if inner.any() and float((probability[inner] < 0.5).mean()) >= DOUBT_FRACTION:
                doubted.add(record.frame)
    occluded = len(hands | doubted)
    needed = bool(records) and occluded >= max(MIN_FACES, MIN_SHARE * len(records))
    found = (f"{occluded} of {len(records)} destination faces looked at have something in front of them "
             f"({len(hands)} with a hand found at extraction, {len(doubted)} where the segmenter doubts the face)")
    why = (f"Mask auto: {found}, so the merge uses hull*segment and the segmenter is fine-tuned on these faces "
           "first." if needed else
           f"Mask auto: {found}, so the merge uses the landmark hull (no segmenter needed).")
    return {"faces": len(records), "hands": len(hands), "doubted": len(doubted), "occluded": occluded,
            "segment": needed, "why": why, "alignments": alignments_id(ws),
            "predict_s": None if predict_s is None else round(predict_s, 5)}


def decision(ws: Any) -> dict[str, Any]:
    """The recorded decision, or a new scan, recorded with the estimate of its fine-tuning (``estimate``)."""
    made = recorded(ws)
    if made is None:
        made = scan(ws)
        made["estimate_s"], made["device"] = estimate(ws, made)
        atomic_write_json(store.segmenter_dir(ws) / DECISION, made)
    return made


def decide(ws: Any, log: Callable[[str], None]) -> dict[str, Any]:
    """The recorded decision, or a new scan (recorded); says why either way."""
    made = decision(ws)
    log(made["why"])
    return made


def _iterations_left(ws: Any) -> int:
    """The segmenter steps ``auto_masks`` would train now: what the workspace's segmenter lacks of its
    target, else a fine-tuning of the shipped one (``[segment] start = generic``) or one from scratch."""
    from engine import settings

    values = settings.read(ws, "segment")
    own = read_json(store.segmenter_dir(ws) / store.CONFIG, default=None)
    if isinstance(own, dict) and (store.segmenter_dir(ws) / store.WEIGHTS).is_file():
        return max(0, int(own.get("target") or 0) - int(own.get("iteration") or 0))
    generic = values["start"] == "generic" and store.generic_dir() is not None
    return values["finetune_iters"] if generic else values["iters"]


def estimate(ws: Any, made: dict[str, Any]) -> tuple[float | None, str]:
    """Seconds the segmenter's training and masks would take before the merge (0 when the hull is used or
    the masks are there), and the device; None on a GPU (no CPU figure applies) or without a scan's timing."""
    import torch

    from engine import settings
    from engine.faces.records import present_faces

    device = settings.read(ws, "segment")["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if not made["segment"] or store.has_masks(ws, "dst"):
        return 0.0, device
    if device != "cpu" or not made.get("predict_s"):
        return None, device
    faces = sum(len(present_faces(ws, side)) for side in ("src", "dst") if ws.alignments_path(side).is_file())
    return round(made["predict_s"] * (STEP_PER_FACE * _iterations_left(ws) + faces), 1), device
