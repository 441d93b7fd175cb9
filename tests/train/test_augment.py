"""Augmentation on the device: targets and masks move together, the input carries the extra warp,
colour transfer matches statistics, and the same generator state draws the same batch."""

from __future__ import annotations

import torch

from engine.train.augment import Augmenter
from engine.train.colour import bgr_to_lab, lab_to_bgr, rct
from engine.train.options import TrainOptions


def raw_faces(n=4, res=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = (torch.rand(n, 3, res, res, generator=g) * 255).to(torch.uint8)
    # The mask channels copy image channels, so any misalignment between them would show.
    return torch.cat([image, image[:, :1], image[:, 2:3]], 1)


def test_target_and_masks_share_one_affine_and_the_input_is_warped_further():
    aug = Augmenter(32, TrainOptions(random_warp=True, flip_src=True), torch.device("cpu"), seed=1)
    inp, target, mask, em = aug.side(raw_faces(), flip=True)
    assert torch.allclose(target[:, :1], mask, atol=1e-6) and torch.allclose(target[:, 2:3], em, atol=1e-6)
    assert (inp - target).abs().mean() > 0.01
    plain = Augmenter(32, TrainOptions(random_warp=False), torch.device("cpu"), seed=1)
    inp, target, _, _ = plain.side(raw_faces(), flip=False)
    assert torch.equal(inp, target)


def test_same_generator_state_gives_the_same_batch():
    options = TrainOptions(hsv_power=0.1, colour_transfer="rct")
    a = Augmenter(32, options, torch.device("cpu"), seed=5)
    b = Augmenter(32, options, torch.device("cpu"), seed=99)
    a(raw_faces(seed=1), raw_faces(seed=2))
    b.load_state(a.state())
    first, second = a(raw_faces(seed=1), raw_faces(seed=2)), b(raw_faces(seed=1), raw_faces(seed=2))
    assert torch.equal(first.src_in, second.src_in) and torch.equal(first.dst_target, second.dst_target)


def test_lab_round_trip_and_rct_matches_statistics():
    image = torch.rand(2, 3, 16, 16) * 0.8 + 0.1
    assert torch.allclose(lab_to_bgr(bgr_to_lab(image)), image, atol=1e-4)
    source, target = torch.rand(3, 3, 16, 16) * 0.5, torch.rand(3, 3, 16, 16) * 0.5 + 0.4
    mask = torch.ones(3, 1, 16, 16)
    out = rct(source, target, mask, mask)
    lab_out, lab_target = bgr_to_lab(out), bgr_to_lab(target)
    assert torch.allclose(lab_out.mean(dim=(2, 3)), lab_target.mean(dim=(2, 3)), atol=1.0)
