"""AMP (DeepFaceLab's amplifier model): the network's mixing and morph, and a tiny model trained,
checkpointed, resumed and merged (with the morph knob) through the real engine and CLI."""

from __future__ import annotations

import json

import pytest
import torch

from engine.train.models import build_model
from engine.train.options import ModelOptions, preset
from tests.helpers import cli, run_job, stop_engine
from tests.models.conftest import TINY


def test_amp_has_one_decoder_and_two_inters_and_morph_moves_between_them():
    model = build_model(ModelOptions("amp", 64, 16, 4, 4, 2, morph_factor=0.3))
    names = {name.split(".")[0] for name, _ in model.named_parameters()}
    assert names == {"encoder", "inter_src", "inter_dst", "decoder"}
    model.eval()
    torch.manual_seed(0)
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        enc = model.encoder(x)
        to_src, to_dst = model.inter_src(enc), model.inter_dst(enc)
        # morph 0 is the destination's own code (its reconstruction), 1 is all inter_src.
        assert torch.allclose(model.swap(x, 0.0)[0], model.decoder(to_dst)[0])
        assert torch.allclose(model.swap(x, 1.0)[0], model.decoder(to_src)[0])
        half = model.morphed(to_src, to_dst, 0.5)
        ch = to_src.shape[1]
        assert torch.equal(half[:, : ch // 2], to_src[:, : ch // 2]) and torch.equal(half[:, ch // 2:], to_dst[:, ch // 2:])
        model.morph = 0.25
        assert torch.allclose(model.swap(x)[0], model.swap(x, 0.25)[0])
    # The training mix takes morph_factor of a src code's channels from inter_src, per sample.
    model.train()
    seen = []
    model.decoder.forward = lambda z: (seen.append(z) or torch.zeros(len(z), 3, 64, 64), torch.zeros(len(z), 1, 64, 64))
    model(x, x)
    enc = model.encoder(torch.cat([x, x]))
    src_code, mixed = model.inter_src(enc[:3]), seen[0][:3]
    from_src = (mixed == src_code).flatten(2).all(2).float().mean(1)
    assert torch.allclose(from_src, torch.full((3,), int(ch * 0.3) / ch), atol=1e-6)


def test_amp_preset_and_bad_shapes():
    assert preset("amp").model.arch == "amp-ud"
    from engine.errors import UserError

    with pytest.raises(UserError, match="is not an architecture"):
        ModelOptions("amp-x", 64, 16, 4, 4, 2).validate()
    with pytest.raises(UserError, match="out of range"):
        ModelOptions("amp", 64, 16, 4, 4, 2, morph_factor=0.9)


@pytest.mark.timeout(900)
def test_amp_trains_resumes_and_merges_with_the_morph_knob(models_ws):
    ws = models_ws
    try:
        final, _ = run_job(ws, "train", {**TINY, "model": "amp", "arch": "amp", "iters": 4, "gan_power": 0.1,
                                         "eyes_mouth_prio": True, "masked_training": True}, timeout=300)
        assert final.TYPE == "job_finished", getattr(final, "error", "")
        saved = json.loads((ws.model_dir("amp") / "model.json").read_text())
        assert saved["model_options"]["arch"] == "amp" and saved["iteration"] == 4
        again, _ = run_job(ws, "train", {"model": "amp", "iters": 6, "threads": 1}, timeout=300)
        assert again.TYPE == "job_finished", getattr(again, "error", "")
        assert again.result["iteration"] == 6 and again.result["iterations_this_run"] == 2
        # The merge knob: out of range is one sentence before anything runs.
        bad = cli("merge", str(ws.root), "--model", "amp", "--morph", "1.5")
        assert bad.returncode == 2 and "[merge] morph = 1.5" in bad.stderr and "hint: Use 0.0 to 1" in bad.stderr
        done = cli("merge", str(ws.root), "--model", "amp", "--morph", "0.5", timeout=400)
        assert done.returncode == 0, done.stdout + done.stderr
        assert (ws.output_dir / "result.mp4").is_file()
        assert ws.section("merge")["morph"] == 0.5
        # The preview of one frame follows the knob (an AMP's prediction depends on it).
        previews = {}
        for morph in (0.0, 1.0):
            final, _ = run_job(ws, "merge_preview", {"model": "amp", "frame": 3, "morph": morph}, timeout=200)
            assert final.TYPE == "job_finished", getattr(final, "error", "")
            previews[morph] = (ws.root / final.result["path"]).read_bytes()
        assert previews[0.0] != previews[1.0]
    finally:
        stop_engine(ws)
