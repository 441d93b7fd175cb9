"""The metric functions on synthetic images with known answers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.faces.split import MIN_FACES, choose
from engine.quality import metrics


def face_like(seed: int = 0, size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (0, 0), 1.0)
    cv2.circle(image, (size // 2, size // 2), size // 3, (40, 90, 200), 2)
    return image


def test_ssim_and_psnr_are_perfect_for_identical_images_and_drop_with_noise() -> None:
    a = face_like()
    mask = np.zeros(a.shape[:2], np.float32)
    mask[20:70, 20:70] = 1
    assert metrics.masked_ssim(a, a, mask) == pytest.approx(1.0, abs=1e-6)
    assert metrics.masked_psnr(a, a, mask) == metrics.PSNR_CAP
    rng = np.random.default_rng(1)
    light = np.clip(a + rng.normal(0, 5, a.shape), 0, 255).astype(np.uint8)
    heavy = np.clip(a + rng.normal(0, 30, a.shape), 0, 255).astype(np.uint8)
    assert 1.0 > metrics.masked_ssim(light, a, mask) > metrics.masked_ssim(heavy, a, mask)
    assert metrics.masked_psnr(light, a, mask) > metrics.masked_psnr(heavy, a, mask) > 10
    # Only the masked region counts: damage outside it changes nothing.
    outside = a.copy()
    outside[:10] = 0
    assert metrics.masked_ssim(outside, a, mask) == pytest.approx(1.0, abs=1e-6)


def test_landmark_error_is_zero_for_the_same_landmarks_and_scales_with_face_size() -> None:
    rng = np.random.default_rng(2)
    mesh = rng.uniform(100, 300, (468, 2))
    assert metrics.landmark_error(mesh, mesh) == {"all": 0.0, "eyes": 0.0, "mouth": 0.0}
    moved = mesh + [3.0, 4.0]  # 5 pixels everywhere
    error = metrics.landmark_error(moved, mesh)
    size = metrics.face_size(mesh[metrics.MESH_TO_68])
    assert error["all"] == pytest.approx(5.0 / size)
    # The same shift on a face twice the size is half the error.
    assert metrics.landmark_error(moved * 2, mesh * 2)["all"] == pytest.approx(5.0 / size)
    assert metrics.landmark_error(mesh * 2 + [6.0, 8.0], mesh * 2)["all"] == pytest.approx(error["all"])


def test_frame_change_and_sharpness() -> None:
    a = face_like(3)
    region = np.full(a.shape[:2], 255, np.uint8)
    assert metrics.frame_change(a, a, region) == 0.0
    brighter = np.clip(a.astype(int) + 10, 0, 255).astype(np.uint8)
    assert metrics.frame_change(a, brighter, region) == pytest.approx(10 / 255, rel=0.05)
    blurred = cv2.GaussianBlur(a, (0, 0), 2.0)
    assert metrics.high_frequency_energy(blurred, region) < 0.3 * metrics.high_frequency_energy(a, region)
    assert metrics.ratio(0.0, 0.0) == 1.0


def test_the_held_out_split_spreads_over_the_clip_and_its_expressions_and_needs_enough_faces() -> None:
    held, guard = choose(list(range(200)), 0.1)
    assert len(held) == 20 and not set(held) & set(guard)
    assert held[0] < 50 and held[-1] >= 150  # four stretches over the whole clip, not its last tenth
    assert all(g - 1 in held or g + 1 in held for g in guard)  # a guard face sits next to a stretch
    # A mouth that opens only around frames 100-120 and 180-190: a stretch goes where it is open,
    # and one where it is closed, so the held-out faces vary.
    openings = {f: (0.08 if 100 <= f < 120 or 180 <= f < 190 else 0.01) for f in range(200)}
    held, _ = choose(list(range(200)), 0.1, openings)
    measured = [openings[f] for f in held]
    assert max(measured) == 0.08 and min(measured) == 0.01
    assert choose(list(range(30)), 0.1)[0] == [14, 15, 16]  # at least 3
    assert choose(list(range(MIN_FACES - 1)), 0.1) == ([], [])  # too few to spare any
    assert choose(list(range(100)), 0.0) == ([], [])  # holding out switched off


def test_a_lead_within_the_frame_to_frame_noise_is_not_called_better() -> None:
    from engine.quality.compare import metric_table

    rng = np.random.default_rng(4)
    frames = range(20)
    base = {f: 0.5 + 0.1 * rng.standard_normal() for f in frames}  # frames differ in difficulty
    samples = {"a": {"ssim_dst": {f: base[f] + 0.03 for f in frames}},  # always 0.03 better: clear
               "b": {"ssim_dst": dict(base)},
               "c": {"ssim_dst": {f: base[f] + 0.005 * rng.standard_normal() for f in frames}}}

    def row(names: list[str]) -> dict:
        models = [{"name": n, "metrics": {"ssim_dst": float(np.mean(list(samples[n]["ssim_dst"].values())))}}
                  for n in names]
        return next(r for r in metric_table(models, samples) if r["metric"] == "ssim_dst")

    clear = row(["a", "b"])
    assert clear["best"] == ["a"] and clear["clear"]
    noisy = row(["b", "c"])
    assert len(noisy["best"]) == 1 and not noisy["clear"]


def test_the_clips_faces_thin_evenly_down_to_one(extracted_ws) -> None:
    from engine.quality.reconstruct import clip_faces

    every = clip_faces(extracted_ws, "dst", 32).frames
    n = len(every)
    assert n > 3
    assert clip_faces(extracted_ws, "dst", 32, limit=3).frames == [every[0], every[round((n - 1) / 2)], every[-1]]
    assert clip_faces(extracted_ws, "dst", 32, limit=1).frames == [every[0]]  # divided by zero before
