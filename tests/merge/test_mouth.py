"""[merge] mouth (engine.merge.mouth): the destination's mouth over the swap, and auto's decision.

Real destination crops of the sample clip (extracted for real, the quality tests' workspace), the real
mediapipe mesh reading the mouth back, a real frame pasted through ``paste_face``, real quality history
files for ``auto``.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.bench.expression import frozen_mouth
from engine.faces.detect import FaceFinder
from engine.merge.blend import crop_face, paste_face
from engine.merge.mouth import mouth_mask, restore, seam_visibility
from engine.merge.settings import MergeSettings
from engine.merge.targets import target_faces
from engine.quality import history
from engine.quality.expression import measure_crops
from engine.quality.frames import frames_at
from engine.quality.mouth_auto import merge_mouth
from engine.quality.verdict import states
from tests.quality.conftest import extracted_ws, one_thread  # noqa: F401 - the shared extracted workspace
from tests.quality.test_expression import RES, dst_crops


def test_the_destinations_mouth_follows_where_a_frozen_one_did_not(extracted_ws):  # noqa: F811
    crops, points = dst_crops(extracted_ws)
    soft = np.stack([cv2.GaussianBlur(c, (3, 3), 0.8) for c in crops])
    frozen = frozen_mouth(soft, points)  # a swap whose mouth never moves
    restored = np.stack([np.clip(restore(f.astype(np.float32) / 255, c, p) * 255 + 0.5, 0, 255).astype(np.uint8)
                         for f, c, p in zip(frozen, soft, points)])
    finder = FaceFinder(min_presence=0.0)
    try:
        before = measure_crops(finder, crops, frozen, soft, points)
        after = measure_crops(finder, crops, restored, soft, points)
    finally:
        finder.close()
    assert states(before)["mouth"] == "fails" and states(after)["mouth"] == "holds", (before, after)
    assert 0.7 < after["expr_mouth_spread"] < 1.4 and after["expr_mouth_corr"] > 0.8
    # Only the mouth region changed, and its feathered edge adds no edge of its own.
    changed = np.abs(restored.astype(int) - frozen.astype(int)).max(axis=3) > 8
    outside = np.stack([mouth_mask(p, RES) < 0.01 for p in points])
    assert not (changed & outside).any()
    seams = [seam_visibility(r.astype(np.float32) / 255, f.astype(np.float32) / 255, p)
             for r, f, p in zip(restored, frozen, points)]
    assert 0.6 < float(np.median(seams)) < 1.5, seams


def test_paste_face_takes_the_destinations_mouth_only_when_asked(extracted_ws):  # noqa: F811
    faces = target_faces(extracted_ws)
    index = sorted(faces)[10]
    frame = next(frames_at(extracted_ws.source("dst"), [index]))[1]
    face = faces[index][0]
    crop = crop_face(frame, face, RES)
    other = (255 - crop).astype(np.float32) / 255  # a "swap" that is nothing like the destination
    merged = {}
    for mode in ("swap", "destination", "auto"):
        out = frame.copy()
        paste_face(out, face, other, None, None, crop, MergeSettings(mouth=mode))
        merged[mode] = out
    assert np.array_equal(merged["auto"], merged["swap"])  # auto is decided by the merge job, not here
    differs = np.abs(merged["destination"].astype(int) - merged["swap"].astype(int)).max(axis=2) > 8
    assert differs.sum() > 50
    lips = face.landmarks[[61, 291, 0, 17]]  # mouth corners, upper and lower lip
    ys, xs = np.nonzero(differs)
    width = np.linalg.norm(lips[1] - lips[0])
    assert xs.min() > lips[:, 0].min() - width and xs.max() < lips[:, 0].max() + width
    assert ys.min() > lips[:, 1].min() - width and ys.max() < lips[:, 1].max() + width
    # Where it differs, the destination's own frame shows through (its mouth, colour-matched).
    original = frame.astype(int)
    near_dst = np.abs(merged["destination"].astype(int) - original).mean(axis=2)[differs].mean()
    near_swap = np.abs(merged["swap"].astype(int) - original).mean(axis=2)[differs].mean()
    assert near_dst < near_swap


@pytest.mark.parametrize("figures, used, said", [
    ({"expr_mouth_corr": 0.43, "expr_mouth_spread": 0.25}, "destination", "does not follow the destination's at "
     "iteration 3000 (correlation 0.43, 0.25x as far)"),
    ({"expr_mouth_corr": 0.85, "expr_mouth_spread": 0.95}, "swap", "it follows the destination's at iteration 3000"),
    ({"expr_mouth_corr": 0.85, "expr_mouth_spread": 0.95, "expr_mouth_dst_spread": 0.004}, "swap",
     "the destination's mouth hardly moves in the measured faces"),
])
def test_auto_takes_the_destinations_mouth_when_the_models_does_not_follow(tmp_path, figures, used, said):
    model = tmp_path / "model"
    assert merge_mouth(model, "auto")[0] == "swap"  # never measured: the model's own, and why
    assert "not measured with the motion figures yet" in merge_mouth(model, "auto")[1]
    history.append(model, 500, "training", {"expr_faces": 16, "expr_mouth_corr": -0.5, "expr_mouth_spread": 0.1,
                                            "expr_mouth_dst_spread": 0.03})
    history.append(model, 3000, "training", {"expr_faces": 16, "expr_mouth_dst_spread": 0.03, **figures})
    mode, sentence = merge_mouth(model, "auto")  # the latest record decides
    assert mode == used and said in sentence, sentence
    assert merge_mouth(model, "swap") == ("swap", "") and merge_mouth(model, "destination") == ("destination", "")
