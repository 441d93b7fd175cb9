"""The perceptual loss: a clear error without cached VGG weights, and a working loss with them.

The weight files here are VGG layouts with random values, saved as torchvision saves its downloads
(a ``.pth`` state dict, ``features.<i>.weight``) or as safetensors; nothing is downloaded.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from engine.errors import UserError
from engine.train.perceptual import PerceptualLoss, build_features, weights_dir


def vgg_state(arch: str) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    state = {f"features.{k}": v.half() for k, v in build_features(arch).state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4, 4)  # the full model's head: ignored
    return state


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = weights_dir()
    folder.mkdir(parents=True)
    return folder


def test_missing_weights_say_what_to_fetch_and_where(hub) -> None:
    with pytest.raises(UserError) as caught:
        PerceptualLoss("vgg19")
    assert "vgg19-dcbb9e9d.pth" in caught.value.message and str(hub) in caught.value.message
    assert "never downloads" in caught.value.hint and "download.pytorch.org" in caught.value.hint


def test_cached_torchvision_weights_give_a_loss_that_trains(hub) -> None:
    torch.save(vgg_state("vgg19"), hub / "vgg19-dcbb9e9d.pth")
    loss_fn = PerceptualLoss("vgg19")
    target = torch.rand(2, 3, 32, 32)
    prediction = (target + 0.2 * torch.randn_like(target)).clamp(0, 1).requires_grad_(True)
    assert loss_fn(target, target).item() == 0.0
    loss = loss_fn(prediction, target)
    assert loss.item() > 0
    loss.backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in loss_fn.parameters())
    # With a mask, only the inside counts.
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., :16, :] = 1
    changed_outside = target.clone()
    changed_outside[..., 24:, :] = 0
    assert loss_fn(changed_outside, target, mask).item() < 0.1 * loss_fn(changed_outside, target).item()


def test_safetensors_weights_and_bad_files(hub) -> None:
    save_file({k: v.contiguous() for k, v in vgg_state("vgg16").items()}, str(hub / "vgg16.safetensors"))
    assert PerceptualLoss("vgg16")(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)).item() > 0
    # VGG16 weights under the VGG19 name do not fit: a clear error, not a half-loaded network.
    torch.save(vgg_state("vgg16"), hub / "vgg19-dcbb9e9d.pth")
    with pytest.raises(UserError, match="does not fit VGG19"):
        PerceptualLoss("vgg19")
    (hub / "vgg19-dcbb9e9d.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="could not be read"):
        PerceptualLoss("vgg19")


def test_training_with_the_perceptual_loss(hub) -> None:
    from engine.train.augment import Batch
    from engine.train.options import ModelOptions, TrainOptions
    from engine.train.trainer import Trainer

    shape = ModelOptions("df", 32, 32, 8, 8, 4)
    with pytest.raises(UserError, match="not on this machine"):
        Trainer(shape, TrainOptions(batch_size=2, perceptual_power=1.0), torch.device("cpu"))
    torch.save(vgg_state("vgg19"), hub / "vgg19-dcbb9e9d.pth")
    x, mask = torch.rand(2, 3, 32, 32), torch.ones(2, 1, 32, 32)
    batch = Batch(x, x, mask, mask, x, x, mask, mask)
    losses = {}
    for power in (0.0, 1.0):
        torch.manual_seed(0)
        trainer = Trainer(shape, TrainOptions(batch_size=2, perceptual_power=power), torch.device("cpu"))
        losses[power] = trainer.losses(batch)[0].item()
        trainer.step(batch, 0)  # one optimisation step through the VGG features
    assert losses[1.0] > losses[0.0]
