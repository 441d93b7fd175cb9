"""[merge] mouth (engine.merge.mouth): the swap's lips moved with the destination's (follow), the
destination's mouth over the swap (destination), and auto's decision.

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
from engine.merge.mouth import ANCHORS, follow, mouth_mask, restore, seam_visibility, swap_mesh
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
    for mode in ("swap", "destination", "follow", "auto"):
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
    ({"expr_mouth_corr": 0.43, "expr_mouth_spread": 0.25}, "follow", "does not follow the destination's at "
     "iteration 3000 (correlation 0.43, 0.25x as far)"),
    ({"expr_mouth_corr": 0.85, "expr_mouth_spread": 0.95}, "swap", "it follows the destination's at iteration 3000"),
    ({"expr_mouth_corr": 0.85, "expr_mouth_spread": 0.95, "expr_mouth_dst_spread": 0.004}, "swap",
     "the destination's mouth hardly moves in the measured faces"),
])
def test_auto_moves_the_swaps_lips_when_the_models_mouth_does_not_follow(tmp_path, figures, used, said):
    model = tmp_path / "model"
    assert merge_mouth(model, "auto")[0] == "swap"  # never measured: the model's own, and why
    assert "not measured with the motion figures yet" in merge_mouth(model, "auto")[1]
    history.append(model, 500, "training", {"expr_faces": 16, "expr_mouth_corr": -0.5, "expr_mouth_spread": 0.1,
                                            "expr_mouth_dst_spread": 0.03})
    history.append(model, 3000, "training", {"expr_faces": 16, "expr_mouth_dst_spread": 0.03, **figures})
    mode, sentence = merge_mouth(model, "auto")  # the latest record decides
    assert mode == used and said in sentence, sentence
    assert merge_mouth(model, "swap") == ("swap", "") and merge_mouth(model, "destination") == ("destination", "")


def test_follow_moves_the_swaps_own_lips_with_the_destinations(extracted_ws):  # noqa: F811
    """A swap whose mouth never moves, its lips moved to each destination face's (the real mesh reads
    the swap's lips): the mouth follows again, and nothing outside the ring round the mouth changes."""
    crops, points = dst_crops(extracted_ws)
    soft = np.stack([cv2.GaussianBlur(c, (3, 3), 0.8) for c in crops])
    frozen = frozen_mouth(soft, points)
    finder = FaceFinder(min_presence=0.0)
    try:
        moved, used = [], 0
        for f, c, p in zip(frozen, soft, points):
            swap = f.astype(np.float32) / 255
            out = follow(swap, c, p, swap_mesh(finder, swap, p))
            used += out is not None
            moved.append(np.clip((swap if out is None else out) * 255 + 0.5, 0, 255).astype(np.uint8))
        moved = np.stack(moved)
        before = measure_crops(finder, crops, frozen, soft, points)
        after = measure_crops(finder, crops, moved, soft, points)
    finally:
        finder.close()
    assert used >= 0.9 * len(crops)  # the mesh read the swap's lips on (nearly) every face
    keys = ("expr_mouth_corr", "expr_mouth_spread", "expr_mouth_ratio")
    assert states(before)["mouth"] == "fails", {k: before.get(k) for k in keys}
    # It opens as far as the destination's and in step with it (the verdict's two motion figures); the
    # lips' shape error (after each path's average shape is set aside) is smaller than the frozen one's.
    assert 0.7 < after["expr_mouth_spread"] < 1.4 and after["expr_mouth_corr"] > 0.8, {k: after.get(k) for k in keys}
    assert after["expr_mouth_ratio"] < before["expr_mouth_ratio"]
    for out, f, p in zip(moved, frozen, points):
        ring = np.zeros((RES, RES), np.uint8)
        cv2.fillConvexPoly(ring, cv2.convexHull(np.round(p[ANCHORS, :2]).astype(np.int32)), 1)
        ring = cv2.dilate(ring, np.ones((5, 5), np.uint8))  # a pixel of interpolation at the ring
        changed = np.abs(out.astype(int) - f.astype(int)).max(axis=2) > 8
        assert not (changed & (ring == 0)).any()


def test_follow_refuses_a_swap_mesh_that_is_not_the_mouth(extracted_ws):  # noqa: F811
    crops, points = dst_crops(extracted_ws)
    swap = crops[0].astype(np.float32) / 255
    off = points[0].copy()
    off[:, 1] += 0.5 * np.linalg.norm(points[0][291, :2] - points[0][61, :2])  # half a mouth lower: misread
    assert follow(swap, crops[0], points[0], off) is None and follow(swap, crops[0], points[0], None) is None
    assert follow(swap, crops[0], points[0], points[0][:, :2]) is not None
