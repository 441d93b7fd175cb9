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
``hull*segment`` for a face with a segmenter mask and ``hull`` for one without.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.atomic import atomic_write_json, read_json
from engine.segment import store

DECISION = "auto.json"
LIMIT = 150
#: A face is occluded when this fraction of its inner hull is not visible face to the segmenter. Measured
#: with the shipped segmenter on the sample destination (128-pixel crops): 0.154 at most on the clean
#: clip (0.01 typically), 0.177-0.281 in each of the 30 frames with the microphone of tests/masks over the mouth.
DOUBT_FRACTION = 0.17
MIN_FACES, MIN_SHARE = 3, 0.03


def _alignments_id(ws: Any) -> list[Any]:
    path = ws.alignments_path("dst")
    return [path.stat().st_size, int(path.stat().st_mtime)] if path.is_file() else []


def recorded(ws: Any) -> dict[str, Any] | None:
    """The decision made on the destination's current faces, or None (no torch: the wizard may call it)."""
    decision = read_json(store.segmenter_dir(ws) / DECISION, default=None)
    if isinstance(decision, dict) and decision.get("alignments") == _alignments_id(ws):
        return decision
    return None


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
        for record, probability in zip(kept, segmenter.predict(crops) if crops else []):
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
            "segment": needed, "why": why, "alignments": _alignments_id(ws)}


def decide(ws: Any, log: Callable[[str], None]) -> dict[str, Any]:
    """The recorded decision, or a new scan (recorded); says why either way."""
    decision = recorded(ws)
    if decision is None:
        decision = scan(ws)
        atomic_write_json(store.segmenter_dir(ws) / DECISION, decision)
    log(decision["why"])
    return decision
