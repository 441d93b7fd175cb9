"""Models that travel, end to end through the real CLI and engine (issue 28): a tiny trained model is
exported as a .dfm, imported back as another model, and merged: its frames equal the native merge's
within the codec's error (and the merge preview and compare take it); ``[merge] runtime = onnx`` merges the trained model on ONNX Runtime the same way,
and ``auto`` follows what ``bench merge --runtime`` recorded."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.interop import load as interop_load
from engine.interop.runtime import OnnxSwapModel
from engine.media.decode import iter_frames
from engine.train.api import SwapModel
from tests.helpers import cli, run_job, stop_engine
from tests.models.conftest import TINY

#: |difference| per pixel between two encodes of (nearly) the same frames, 0..255: x264 at CRF 18 re-decides
#: its blocks when any input pixel moves by one level, so the whole frame shifts a little. Measured on the
#: sample pair: mean 1.0, 99.9th percentile 11 (PyTorch against the imported DFM, and against runtime onnx);
#: a face or mask that differs (a mouth pasted from the destination in one of them) gave mean 3.6, 153.
MEAN_BOUND, P999_BOUND = 2.0, 30.0


def _frames(path) -> np.ndarray:
    return np.stack([frame for _, _, frame in iter_frames(path)]).astype(np.int16)


def _assert_same_merge(a, b) -> None:
    first, second = _frames(a), _frames(b)
    assert first.shape == second.shape
    diff = np.abs(first - second)
    mean, p999 = float(diff.mean()), float(np.percentile(diff, 99.9))
    print(f"{a.name} vs {b.name}: mean |diff| {mean:.3f}, 99.9th percentile {p999:.1f}")
    assert mean < MEAN_BOUND and p999 < P999_BOUND, (mean, p999)


@pytest.mark.timeout(1200)
def test_export_import_merge_round_trip(models_ws, tmp_path, monkeypatch):
    ws = models_ws
    try:
        final, _ = run_job(ws, "train", {**TINY, "model": "travel", "arch": "df-ud", "iters": 4}, timeout=300)
        assert final.TYPE == "job_finished", getattr(final, "error", "")
        dfm = tmp_path / "travel.dfm"
        done = cli("export-model", str(ws.root), "--model", "travel", "--format", "dfm", "--output", str(dfm), timeout=300)
        said = done.stdout + done.stderr
        assert done.returncode == 0, said
        assert dfm.is_file() and "Face type: whole_face (DeepFaceLab wf, DeepFaceLive WHOLE_FACE)" in said
        wrong = cli("export-model", str(ws.root), "--model", "travel", "--format", "onnx", "--output", str(dfm))
        assert wrong.returncode != 0 and "does not end in .onnx" in wrong.stdout + wrong.stderr
        done = cli("import-model", str(dfm), str(ws.root), "--name", "travel-dfm", timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        info = json.loads((ws.model_dir("travel-dfm") / "imported.json").read_text())
        assert info["face_type"] == "whole_face" and info["resolution"] == 64
        again = cli("export-model", str(ws.root), "--model", "travel-dfm", "--format", "dfm", "--output", str(dfm))
        assert again.returncode != 0 and "already the export" in again.stdout + again.stderr

        # Both merges with the same knobs: mouth = auto (where the tree has it) decides from a trained model's
        # quality, which an imported model has none of.
        ws.update_settings("merge", {"mouth": "swap"})
        results = {}
        for model, runtime in (("travel", "torch"), ("travel-dfm", "torch"), ("travel", "onnx")):
            out = tmp_path / f"{model}-{runtime}.mp4"
            done = cli("merge", str(ws.root), "--model", model, "--runtime", runtime, "--output", str(out), timeout=600)
            assert done.returncode == 0, done.stdout + done.stderr
            results[model, runtime] = out
        _assert_same_merge(results["travel", "torch"], results["travel-dfm", "torch"])
        _assert_same_merge(results["travel", "torch"], results["travel", "onnx"])
        # The merge preview takes the imported model too.
        final, _ = run_job(ws, "merge_preview", {"model": "travel-dfm", "frame": 3}, timeout=200)
        assert final.TYPE == "job_finished", getattr(final, "error", "")
        # And compare: the imported model's swap is measured beside the trained one's.
        final, events = run_job(ws, "compare", {"models": ["travel", "travel-dfm"], "frames": 4, "c2pa": False},
                                timeout=600)
        assert final.TYPE == "job_finished", getattr(final, "error", "")
        entries = {m["name"]: m for m in final.result["models"]}
        assert entries["travel"]["metrics"]["ssim_dst"] is not None and "ssim_dst" not in entries["travel-dfm"]["metrics"]
        assert any("imported from a file" in str(e) for e in events)
        assert (ws.root / final.result["outputs"]["video"]).is_file()
    finally:
        stop_engine(ws)

    # auto: PyTorch until bench merge --runtime has measured ONNX Runtime faster for this device and shape.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model_dir = ws.model_dir("travel")
    assert isinstance(interop_load.load_model(model_dir, device="cpu", runtime="auto"), SwapModel)
    key = interop_load.record_key("cpu", "df-ud", 64)
    interop_load.record_measurement(key, {"faster": "onnx", "torch_fps": 1.0, "onnx_fps": 2.0})
    assert isinstance(interop_load.load_model(model_dir, device="cpu", runtime="auto"), OnnxSwapModel)
    interop_load.record_measurement(key, {"faster": "torch", "torch_fps": 2.0, "onnx_fps": 1.0})
    assert isinstance(interop_load.load_model(model_dir, device="cpu", runtime="auto"), SwapModel)
