"""Every architecture variant runs; the optional parts (GAN, RMSprop, clipping, HSV, rct) train and save."""

from __future__ import annotations

import pytest
import torch

from engine.errors import UserError
from engine.jobs.train import run
from engine.report import CallbackReporter
from engine.train.checkpoint import CheckpointStore
from engine.train.models import SwapAutoencoder
from engine.train.options import ModelOptions, preset


@pytest.mark.parametrize("arch", ["df", "df-u", "df-d", "df-ud", "liae", "liae-u", "liae-d", "liae-ud"])
def test_every_architecture_gives_faces_and_masks_at_its_resolution(arch):
    res = 64
    model = SwapAutoencoder(ModelOptions(arch, res, 16, 4, 4, 2))
    x = torch.rand(2, 3, res, res)
    outputs = model(x, x, with_swap=True)
    assert [tuple(o.shape) for o in outputs] == [(2, 3, res, res), (2, 1, res, res)] * 3
    training = model(x, x)  # without the swap, the rest is the same
    assert len(training) == 4 and all(torch.allclose(a, b, atol=1e-5) for a, b in zip(training, outputs))
    face, mask_src, mask_dst = model.swap(x)
    assert face.shape == (2, 3, res, res) and mask_src.shape == mask_dst.shape == (2, 1, res, res)
    # The swap path of forward() and swap() agree.
    assert torch.allclose(outputs[4], face, atol=1e-5) and torch.allclose(outputs[3], mask_dst, atol=1e-5)


def test_bad_options_are_user_errors():
    with pytest.raises(UserError):
        ModelOptions("df-ud", 80).validate()  # -d needs a multiple of 32
    with pytest.raises(UserError):
        ModelOptions("vae").validate()
    with pytest.raises(UserError):
        preset("huge")
    assert preset("saehd").model == ModelOptions("liae-ud", 128, 256, 64, 64, 22)


@pytest.mark.timeout(120)
def test_gan_rmsprop_clipping_hsv_and_rct_train_and_save(train_ws):
    from tests.train.conftest import tiny_params

    extras = dict(arch="liae-ud", gan_power=0.1, optimizer="rmsprop", clip_grad=1.0, hsv_power=0.1,
                  colour_transfer="rct")
    result = run(train_ws, tiny_params("options", iters=4, **extras), CallbackReporter(lambda e: None))
    assert result["iteration"] == 4
    saved = CheckpointStore(train_ws.model_dir("options")).load()
    assert any(k.startswith("disc.") for k in saved.model) and "disc" in saved.state["optimizers"]
    assert saved.state["train_options"]["optimizer"] == "rmsprop"
    assert all(torch.isfinite(v).all() for v in saved.model.values())
    # Turning the GAN off keeps its discriminator in the checkpoint rather than dropping it.
    run(train_ws, tiny_params("options", iters=6, gan_power=0.0), CallbackReporter(lambda e: None))
    again = CheckpointStore(train_ws.model_dir("options")).load()
    assert again.state["iteration"] == 6
    assert all(torch.equal(again.model[k], saved.model[k]) for k in saved.model if k.startswith("disc."))
