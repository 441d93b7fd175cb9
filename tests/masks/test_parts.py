"""The mask pieces on their own (no engine): hand outlines, synthetic occluders, records, the mask
product in the merge, the segmenter's file checks. Fast; real OpenCV and torch, no mocks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.errors import UserError
from engine.faces.hands import hand_outline
from engine.faces.records import FaceRecord
from engine.merge import masks
from engine.merge.blend import FaceGeometry
from engine.segment import store, synth
from engine.segment.exchange import parse_frames


def test_a_hand_outline_covers_the_fingers_around_its_landmarks():
    rng = np.random.default_rng(0)
    points = np.cumsum(rng.normal(0, 5, (21, 2)), 0) + 100
    points[9] = points[0] + (0, 40)  # a palm 40 px long
    outline = hand_outline(points)
    import cv2

    for x, y in points:  # every landmark is well inside (a disc of 8 px around it)
        assert cv2.pointPolygonTest(outline.astype(np.float32), (float(x), float(y)), True) >= 7.5


def test_occluders_in_records_round_trip_and_bad_ones_are_refused():
    record = FaceRecord(frame=1, time=0.04, face=0, track=0, box=[0, 0, 10, 10], landmarks=np.zeros((468, 2)),
                        transform=np.eye(2, 3), size=128, face_type="whole_face",
                        occluders=[[[1.04, 2.0], [30.0, 2.0], [30.0, 40.0]]])
    data = json.loads(json.dumps(record.to_json()))
    assert data["occluders"] == [[[1.0, 2.0], [30.0, 2.0], [30.0, 40.0]]]
    assert FaceRecord.from_json(data).occluders == data["occluders"]
    with pytest.raises(ValueError):
        FaceRecord.from_json({**data, "occluders": [[[1.0, 2.0, 3.0]]]})


@pytest.mark.parametrize("kind", synth.KINDS)
def test_a_synthetic_occluder_takes_its_opaque_pixels_out_of_the_label(kind):
    rng = np.random.default_rng(3)
    res = 64
    image = np.full((res, res, 3), 150, np.uint8)
    label = np.zeros((res, res), np.uint8)
    label[8:56, 12:52] = 255
    hand = np.array([[20.0, 20], [40, 20], [40, 44], [20, 44]])
    source = synth.Source(np.stack([image, image[::-1]]), np.array([[[24.0, 26], [40, 26]]] * 2), [(1, hand)])
    changed = 0
    for _ in range(6):
        out, new, covered = synth.one(image, label, rng, source, 0, kind)
        assert out.shape == image.shape and new.dtype == np.uint8
        assert not np.any((new > 0) & (label == 0))  # an occluder never adds face
        changed += int((new != label).any())
        assert np.all(covered[new != label] > 0)  # where the label changed, the occluder lies
    assert changed >= 3


def test_hull_times_segment_is_the_product_and_a_missing_mask_falls_back(tmp_path):
    import cv2

    size, res = 128, 64
    transform = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    probability = np.full((size, size), 255, np.uint8)
    probability[:, : size // 2] = 0  # the left half is a hand
    cv2.imwrite(str(tmp_path / "m.png"), probability)
    landmarks = np.array([[20.0, 20], [108, 20], [108, 108], [20, 108]])
    face = FaceGeometry(transform, size, landmarks, None, str(tmp_path / "m.png"), transform)
    mask = masks.segment_mask(face, res)
    assert mask.shape == (res, res) and mask[:, :28].max() == 0 and mask[:, 36:].min() == 1.0
    product = masks.combine("hull*segment", masks.hull_mask(face.crop_points(res), res), None, None, mask)
    assert product[32, 5:28].max() == 0 and product[32, 40:50].min() == 1.0
    # another face type's crop: the stored mask is warped, not resized
    shifted = FaceGeometry(transform * 1.0 + [[0, 0, 10], [0, 0, 0]], size, landmarks, None, str(tmp_path / "m.png"),
                           transform)
    moved = masks.segment_mask(shifted, res)
    assert moved[:, :33].max() == 0 and moved[:, 38:60].min() == 1.0
    with pytest.raises(UserError, match="needs the segmenter's masks"):
        masks.require_segment("hull*segment", {0: [FaceGeometry(transform, size, landmarks)]})
    masks.require_segment("hull", {0: [FaceGeometry(transform, size, landmarks)]})


def test_the_stored_probability_becomes_a_steep_mask():
    values = store.visible(np.array([0, 70, 128, 190, 255], np.uint8))
    assert values[0] == 0 and values[1] == 0 and 0.4 < values[2] < 0.6 and values[3] == 1 and values[4] == 1


def test_frame_lists():
    assert parse_frames("3-5, 9") == {3, 4, 5, 9} and parse_frames("") is None
    for bad in ("5-3", "a", "1,,2"):
        with pytest.raises(UserError):
            parse_frames(bad)


def test_a_segmenter_description_is_checked():
    from engine.segment.model import Description

    good = {"format": "swapwizard-segmenter", "version": 1, "width": 8, "resolution": 128}
    assert Description.from_json(good, "x").resolution == 128
    for bad in ({**good, "format": "pickle"}, {**good, "version": 99}, {**good, "width": "8"},
                {**good, "resolution": 100}, {**good, "arch": "resnet"}, [good]):
        with pytest.raises(UserError):
            Description.from_json(bad, "x")
