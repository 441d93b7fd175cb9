"""The CNN of Korshunova et al. 2017 (--arch cnn): its multi-scale network and VGG-19 losses, a clear
refusal without VGG-19 weights, and a tiny model trained, resumed and merged through the real engine
with VGG-19-layout weights of random values in a temporary TORCH_HOME (nothing is downloaded)."""

from __future__ import annotations

import json

import pytest
import torch

from engine.errors import UserError
from engine.train.cnn import CNNLoss, FaceSwapCNN, count_parameters, patch_style_loss
from engine.train.options import ModelOptions, preset
from engine.train.perceptual import build_features, weights_dir
from tests.helpers import cli, run_job, stop_engine
from tests.models.conftest import TINY


def write_random_vgg19(torch_home) -> None:
    """VGG-19's layout (torchvision's feature numbering) with random values, saved as torchvision saves it."""
    torch.manual_seed(0)
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    state = {f"features.{k}": v for k, v in build_features("vgg19").state_dict().items()}
    torch.save(state, folder / "vgg19-dcbb9e9d.pth")


@pytest.fixture
def no_vgg(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty torch"))


@pytest.fixture
def random_vgg(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    write_random_vgg19(tmp_path / "torch")


def test_the_network_is_multi_scale_with_about_a_million_parameters_at_128():
    model = FaceSwapCNN(preset("cnn").model)
    assert model.scales == 5  # 8, 16, 32, 64, 128 px
    assert 0.9e6 < count_parameters(model) < 1.3e6
    assert FaceSwapCNN(ModelOptions("cnn", 256, 1, 32, 1, 1)).scales == 6
    assert FaceSwapCNN(ModelOptions("cnn", 512, 1, 32, 1, 1)).scales == 7
    x = torch.rand(2, 3, 128, 128)
    face, mask_src, mask_dst = model.eval().swap(x)
    assert face.shape == x.shape and float(mask_src.min()) == 1.0 and float(mask_dst.min()) == 1.0
    with pytest.raises(UserError, match="does not suit cnn"):
        ModelOptions("cnn", 72, 1, 32, 1, 1).validate()
    with pytest.raises(UserError, match="not an architecture"):
        ModelOptions("cnn-ud", 128, 1, 32, 1, 1).validate()


def test_patch_style_loss_is_zero_on_the_style_itself_and_pulls_toward_it():
    style = torch.rand(2, 8, 10, 10)
    assert patch_style_loss(style[:1], style).item() == pytest.approx(0.0, abs=1e-10)
    out = torch.rand(1, 8, 10, 10, requires_grad=True)
    loss = patch_style_loss(out, style)
    loss.backward()
    assert loss.item() > 0 and out.grad.abs().sum() > 0


def test_without_vgg_weights_cnn_is_refused_in_one_sentence(no_vgg):
    with pytest.raises(UserError) as caught:
        CNNLoss()
    assert "vgg19-dcbb9e9d.pth" in caught.value.message and str(weights_dir()) in caught.value.message
    assert "load_state_dict_from_url" in caught.value.hint and "never downloads" in caught.value.hint


def test_the_losses_with_vgg_layout_weights(random_vgg):
    loss = CNNLoss()
    dst, src = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    swapped = dst.clone().requires_grad_(True)
    style, rest = loss(swapped, dst, src)
    assert rest.item() < 1e-3  # the destination itself keeps its content and light
    assert style.item() > 0
    (style + rest).backward()
    assert swapped.grad.abs().sum() > 0


@pytest.mark.timeout(900)
def test_cnn_training_is_refused_before_it_starts_without_weights(models_ws, no_vgg):
    stop_engine(models_ws)  # a new engine inherits this test's TORCH_HOME
    try:
        final, _ = run_job(models_ws, "train", {**TINY, "model": "cnn-none", "arch": "cnn", "iters": 2}, timeout=200)
        assert final.TYPE == "job_failed"
        assert "VGG-19" in final.error and "vgg19-dcbb9e9d.pth" in final.error
        assert not models_ws.model_dir("cnn-none").exists()
    finally:
        stop_engine(models_ws)


@pytest.mark.timeout(900)
def test_cnn_trains_resumes_and_merges_through_the_engine(models_ws, random_vgg):
    ws = models_ws
    stop_engine(ws)
    try:
        final, _ = run_job(ws, "train", {**TINY, "model": "cnn", "arch": "cnn", "iters": 4, "lr": 1e-3}, timeout=400)
        assert final.TYPE == "job_finished", getattr(final, "error", "")
        saved = json.loads((ws.model_dir("cnn") / "model.json").read_text())
        assert saved["model_options"]["arch"] == "cnn" and saved["iteration"] == 4
        again, _ = run_job(ws, "train", {"model": "cnn", "iters": 6, "threads": 1}, timeout=400)
        assert again.TYPE == "job_finished", getattr(again, "error", "")
        assert again.result["iteration"] == 6 and again.result["iterations_this_run"] == 2
        done = cli("merge", str(ws.root), "--model", "cnn", "--mask", "hull", timeout=400)
        assert done.returncode == 0, done.stdout + done.stderr
        assert (ws.output_dir / "result.mp4").is_file()
    finally:
        stop_engine(ws)
