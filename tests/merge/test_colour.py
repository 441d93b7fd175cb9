"""Colour transfer: every kind moves the face's colours to the target's, measured under the mask only."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.merge import colour


def _smooth(rng: np.random.Generator, base: tuple[float, float, float], spread: float = 0.3) -> np.ndarray:
    """A smooth random image (like skin, not noise) around a base colour, float32 BGR 0..1."""
    small = rng.random((16, 16, 3)).astype(np.float32)
    big = cv2.resize(small, (128, 128), interpolation=cv2.INTER_CUBIC)
    return np.clip((big - 0.5) * spread + np.array(base, np.float32), 0, 1).astype(np.float32)


@pytest.fixture
def images():
    rng = np.random.default_rng(7)
    source = _smooth(rng, (0.25, 0.35, 0.6))
    target = _smooth(rng, (0.6, 0.5, 0.35), spread=0.15)
    mask = np.zeros((128, 128), np.float32)
    mask[24:104, 24:104] = 1.0
    # Outside the mask the target is pure green: masked statistics must not see it.
    target[mask < 0.5] = (0.0, 1.0, 0.0)
    return source, target, mask


@pytest.mark.parametrize("kind", ["rct", "lct", "mkl", "idt", "sot"])
def test_masked_mean_moves_to_the_targets(kind, images):
    source, target, mask = images
    inside = mask > 0.5
    out = colour.transfer(kind, source, target, mask)
    assert out.shape == source.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    before = np.abs(source[inside].mean(0) - target[inside].mean(0)).max()
    after = np.abs(out[inside].mean(0) - target[inside].mean(0)).max()
    assert before > 0.2
    assert after < 0.03, f"{kind}: mean off by {after:.3f}"


def test_without_mask_the_green_border_counts(images):
    source, target, mask = images
    inside = mask > 0.5
    masked = colour.rct(source, target, mask)
    unmasked = colour.rct(source, target)
    # The unmasked transfer is pulled toward green; the masked one is not.
    assert unmasked[inside][:, 1].mean() > masked[inside][:, 1].mean() + 0.05


def test_none_and_uint8_and_bad_kind(images):
    source, target, mask = images
    assert np.array_equal(colour.transfer("none", source, target, mask), source)
    as_u8 = colour.transfer("rct", (source * 255).astype(np.uint8), (target * 255).astype(np.uint8), mask)
    assert as_u8.dtype == np.float32
    with pytest.raises(ValueError):
        colour.transfer("bogus", source, target, mask)


def test_nearly_empty_mask_falls_back_to_the_whole_image(images):
    source, target, _ = images
    out = colour.transfer("rct", source, target, np.zeros(source.shape[:2], np.float32))
    assert np.isfinite(out).all()
