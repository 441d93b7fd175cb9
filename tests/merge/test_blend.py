"""Pasting one face: only the face's box changes, masks behave, every blend mode and knob runs."""

from __future__ import annotations

import numpy as np
import pytest

from engine.merge import masks
from engine.merge.blend import FaceGeometry, crop_face, paste_face
from engine.merge.settings import BLEND_MODES, MASK_MODES, MergeSettings


def _scene(height: int = 1080, width: int = 1920):
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    k = height / 1080.0
    cx, cy, side, size = 900.0 * k, 500.0 * k, 400.0 * k, 256
    s = size / side
    transform = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]])
    angles = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    landmarks = np.stack([cx + 120 * k * np.cos(angles), cy + 160 * k * np.sin(angles)], axis=1)
    return frame, FaceGeometry(transform, size, landmarks), (cx, cy, side)


def _predict(crop: np.ndarray) -> np.ndarray:
    return (255 - crop).astype(np.float32) / 255.0


@pytest.mark.parametrize("blend", BLEND_MODES)
@pytest.mark.parametrize("resolution", [64, 128])
def test_only_the_face_box_changes(blend, resolution):
    frame, face, (cx, cy, side) = _scene()
    crop = crop_face(frame, face, resolution)
    out = frame.copy()
    box = paste_face(out, face, _predict(crop), None, None, crop, MergeSettings(blend=blend))
    x0, y0, x1, y1 = box
    assert cx - side / 2 - 2 <= x0 < cx < x1 <= cx + side / 2 + 2
    assert cy - side / 2 - 2 <= y0 < cy < y1 <= cy + side / 2 + 2
    outside = np.ones(frame.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(out[outside], frame[outside])
    centre = np.abs(out[int(cy) - 20:int(cy) + 20, int(cx) - 20:int(cx) + 20].astype(int)
                    - frame[int(cy) - 20:int(cy) + 20, int(cx) - 20:int(cx) + 20]).mean()
    assert centre > 20


def test_learned_masks_and_the_mask_frame():
    frame, face, _ = _scene(540, 960)
    crop = crop_face(frame, face, 64)
    learned = np.zeros((64, 64), np.float32)
    learned[16:48, 16:48] = 1.0
    for mode in MASK_MODES:
        out = frame.copy()
        mask_frame = np.zeros(frame.shape[:2], np.uint8)
        paste_face(out, face, _predict(crop), learned, learned, crop, MergeSettings(mask=mode), mask_frame)
        assert mask_frame.max() == 255, mode
        assert (mask_frame > 0).sum() < frame.shape[0] * frame.shape[1] / 4


def test_empty_mask_changes_nothing():
    frame, face, _ = _scene(540, 960)
    crop = crop_face(frame, face, 64)
    out = frame.copy()
    paste_face(out, face, _predict(crop), np.zeros((64, 64), np.float32), None, crop,
               MergeSettings(mask="learned-prd"))
    assert np.array_equal(out, frame)


def test_face_scale_and_sharpen_change_the_result():
    frame, face, _ = _scene()
    crop = crop_face(frame, face, 128)
    results = {}
    for name, settings in {"plain": MergeSettings(), "small": MergeSettings(face_scale=0.8),
                           "sharp": MergeSettings(sharpen=1.0)}.items():
        out = frame.copy()
        results[name] = (out, paste_face(out, face, _predict(crop), None, None, crop, settings))
    plain_box, small_box = results["plain"][1], results["small"][1]
    assert (small_box[2] - small_box[0]) < (plain_box[2] - plain_box[0])
    assert not np.array_equal(results["plain"][0], results["sharp"][0])


def test_refine_erodes_blurs_and_fades():
    base = np.zeros((128, 128), np.float32)
    base[20:108, 20:108] = 1.0
    eroded = masks.refine(base, erode=16)
    dilated = masks.refine(base, erode=-16)
    assert eroded.sum() < base.sum() < dilated.sum()
    blurred = masks.refine(base, blur=32)
    assert 0.0 < blurred[20, 64] < 1.0
    faded = masks.refine(np.ones((128, 128), np.float32), edge_fade=16)
    assert faded[0].max() == 0.0 and faded[:, -1].max() == 0.0 and faded[64, 64] == 1.0


def test_settings_are_checked():
    from engine.errors import UserError

    with pytest.raises(UserError):
        MergeSettings(colour="purple").check()
    with pytest.raises(UserError):
        MergeSettings(face_scale=3.0).check()
