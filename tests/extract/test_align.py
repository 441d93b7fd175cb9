"""Alignment maths, the record format and its helpers (no models needed)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import UserError
from engine.faces.align import (
    CROPS,
    FACE_TYPES,
    TEMPLATE_68,
    apply,
    invert,
    resize_transform,
    transform_for,
    umeyama,
)
from engine.faces.landmarks import ALIGN_68, MESH_TO_68, MIRROR_68
from engine.faces.records import (
    FaceRecord,
    face_mask,
    present_faces,
    read_alignments,
    write_alignments,
)
from engine.faces.smooth import OneEuro, pair_jitter
from engine.faces.split import training_faces

pytestmark = pytest.mark.timeout(60)


def similarity(scale, angle, tx, ty):
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    return np.array([[c, -s, tx], [s, c, ty]])


def mesh_from_template(matrix):
    """A fake 468-point mesh whose 68-point subset is the template placed by ``matrix`` (frame coords)."""
    mesh = np.zeros((468, 2))
    mesh[MESH_TO_68] = apply(matrix, TEMPLATE_68)
    return mesh


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, (30, 2))
    truth = similarity(2.5, 0.3, 10, -4)
    assert np.allclose(umeyama(points, apply(truth, points)), truth, atol=1e-9)


def test_template_is_symmetric():
    mirrored = TEMPLATE_68[MIRROR_68] * [-1, 1] + [1, 0]
    assert np.allclose(mirrored, TEMPLATE_68, atol=1e-3)


@pytest.mark.parametrize("face_type", FACE_TYPES)
def test_transform_puts_the_face_where_the_face_type_says(face_type):
    placed = similarity(180, 0.2, 300, 200)  # template -> frame
    mesh = mesh_from_template(placed)
    matrix = transform_for(mesh, face_type, 256)
    centre_y, side = CROPS[face_type]
    in_crop = apply(matrix, mesh[MESH_TO_68[ALIGN_68]])
    expected = (TEMPLATE_68[ALIGN_68] - [0.5 - side / 2, centre_y - side / 2]) * 256 / side
    assert np.allclose(in_crop, expected, atol=1e-6)
    # Larger face types see more: the same face is smaller in the crop.
    assert np.sqrt(abs(np.linalg.det(matrix[:, :2]))) == pytest.approx(256 / side / 180, rel=1e-6)


def test_resize_and_invert():
    mesh = mesh_from_template(similarity(100, -0.1, 50, 60))
    m512 = transform_for(mesh, "whole_face", 512)
    m256 = resize_transform(m512, 512, 256)
    assert np.allclose(m256, transform_for(mesh, "whole_face", 256))
    points = np.array([[10.0, 20.0], [300.0, 40.0]])
    assert np.allclose(apply(invert(m512), apply(m512, points)), points)


def test_unknown_face_type():
    with pytest.raises(UserError, match="not a face type"):
        transform_for(np.zeros((468, 2)), "nose", 256)


def make_record(frame, file, track=0):
    mesh = mesh_from_template(similarity(100, 0.0, 100 + frame, 80))
    matrix = transform_for(mesh, "whole_face", 128)
    square = [[20.0, 20.0], [100.0, 20.0], [100.0, 100.0], [20.0, 100.0]]
    return FaceRecord(frame=frame, time=frame / 25, face=0, track=track, box=[0, 0, 1, 1],
                      landmarks=mesh.astype(np.float32), transform=matrix, size=128, face_type="whole_face",
                      mask=square, blur=10.0, yaw=5.0, file=file)


def test_records_round_trip_and_training_faces(workspace):
    side_dir = workspace.side_dir("src")
    (side_dir / "aligned").mkdir(parents=True)
    records = [make_record(i, f"aligned/{i:06d}_0.jpg", track=0 if i < 3 else 1) for i in range(4)]
    for r in records:
        (side_dir / r.file).write_bytes(b"jpeg")
    write_alignments(workspace.alignments_path("src"), {"target_track": 0, "size": 128}, records)
    header, loaded = read_alignments(workspace.alignments_path("src"))
    assert header["version"] == 1 and header["kind"] == "header"
    assert [r.frame for r in loaded] == [0, 1, 2, 3]
    assert np.allclose(loaded[1].transform, records[1].transform, atol=1e-5)
    assert np.allclose(loaded[1].landmarks, records[1].landmarks, atol=0.01)
    # The user deletes a bad crop: training no longer sees it; track 1 is not the target.
    (side_dir / "aligned/000001_0.jpg").unlink()
    assert [r.frame for r in present_faces(workspace, "src")] == [0, 2]
    assert [r.frame for r in training_faces(workspace, "src")] == [0, 2]  # too few faces to hold any out
    aligned = loaded[0].aligned_landmarks()
    assert np.allclose(aligned[MESH_TO_68[ALIGN_68]], apply(loaded[0].transform, loaded[0].landmarks[MESH_TO_68[ALIGN_68]]))
    mask = face_mask(loaded[0])
    assert mask.shape == (128, 128) and mask[60, 60] == 255 and mask[5, 5] == 0
    assert face_mask(loaded[0], 64)[30, 30] == 255


def test_damaged_alignments_file(workspace):
    path = workspace.alignments_path("src")
    path.write_text('{"kind": "header", "version": 1}\n{"frame": 1, "landm\n')
    with pytest.raises(UserError, match="damaged at line 2"):
        read_alignments(path)


def test_one_euro_removes_noise_but_follows_motion():
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 100, (468, 2))
    filt = OneEuro()
    raw_jitter, smooth_jitter = [], []
    prev_raw = prev_smooth = None
    for i in range(50):
        raw = base + rng.normal(0, 0.8, base.shape)
        smooth = filt(raw, i / 25, 100.0)
        if prev_raw is not None:
            raw_jitter.append(pair_jitter(prev_raw, raw, 1.0))
            smooth_jitter.append(pair_jitter(prev_smooth, smooth, 1.0))
        prev_raw, prev_smooth = raw, smooth
    assert np.mean(smooth_jitter) < 0.5 * np.mean(raw_jitter)
    # A big jump (a head turn) is followed within a few frames.
    for i in range(50, 56):
        smooth = filt(base + 40, i / 25, 100.0)
    assert np.abs(smooth - (base + 40)).mean() < 4


def test_coverage_names_the_poses_src_lacks():
    from engine.faces.check import coverage

    def faces(poses):
        out = []
        for i, (yaw, pitch) in enumerate(poses):
            record = make_record(i, f"aligned/{i:06d}_0.jpg")
            record.yaw, record.pitch = yaw, pitch
            out.append(record)
        return out

    src = faces([(0, 0)] * 50 + [(-40, 0)] * 3)
    dst = faces([(0, 0)] * 80 + [(-40, 0)] * 20)
    result = coverage(src, dst)
    assert result["score"] == 1.0  # 3 src faces at -40 are just enough neighbours
    assert result["warnings"] == ["dst has 20 faces turned left more than 30 degrees; src has 3."]
    thinner = coverage(src[:-1], dst)
    assert thinner["score"] == 0.8 and thinner["covered_faces"] == 80
    assert coverage(faces([(0, 0)] * 10), dst)["groups"]["turned left more than 30 degrees"] == {"dst": 20, "src": 0}
