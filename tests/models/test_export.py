"""Models that travel (issue 28): a model's swap path exported to ONNX / DeepFaceLive's DFM equals PyTorch
on held-out faces, opens the way DeepFaceLive's loader opens it, and untrusted files are refused."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from engine.errors import UserError
from engine.interop.contract import describe
from engine.interop.export import onnx_bytes
from engine.interop.importing import import_model
from engine.interop.load import load_model
from engine.interop.runtime import OnnxSwapModel
from engine.quality.reconstruct import held_out_faces
from engine.train.models import build_model
from engine.train.options import ModelOptions

RES = 64
#: Per output (dst mask, face, face mask): the largest |ONNX Runtime - PyTorch| allowed on the CPU, float32.
#: Measured on the development machine: at most 1.2e-7 on DF, LIAE and AMP, 1.4e-6 on cnn; the bound leaves
#: room for other CPUs' kernels, far below one step of an 8-bit pixel (3.9e-3).
MAX_DIFF = 1e-5
FAMILIES = [("df-ud", None), ("liae", None), ("liae-ud", None), ("amp-ud", 0.0), ("amp-ud", 0.4), ("amp-ud", 1.0),
            ("cnn", None)]


def _network(arch: str) -> torch.nn.Module:
    torch.manual_seed(3)
    net = build_model(ModelOptions(arch, RES, 32, 8, 8, 4))
    if arch == "cnn":  # non-trivial batch-norm statistics, as a trained model has
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return net.eval()


def _deepfacelive_open(data: bytes):
    """DeepFaceLive's DFMModel.__init__ and convert (modelhub/DFLive/DFMModel.py), without its xlib wrappers."""
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    inputs = sess.get_inputs()
    assert len(inputs) in (1, 2) and "in_face" in inputs[0].name
    height, width = inputs[0].shape[1:3]
    assert isinstance(height, int) and isinstance(width, int)
    model_type = 1
    if len(inputs) == 2:
        assert "morph_value" in inputs[1].name
        model_type = 2

    def convert(img: np.ndarray, morph_factor: float = 0.75):
        if model_type == 1:
            return sess.run(None, {"in_face:0": img})
        return sess.run(None, {"in_face:0": img, "morph_value:0": np.float32([morph_factor])})

    return (height, width), model_type, convert


@pytest.fixture(scope="module")
def faces(models_ws) -> np.ndarray:
    """Held-out destination faces at the test resolution, N x R x R x 3 float32 BGR in 0..1."""
    crops = held_out_faces(models_ws, "dst", RES).crops[:5]
    assert len(crops) == 5
    return np.stack(crops).astype(np.float32) / 255.0


@pytest.mark.parametrize(("arch", "morph"), FAMILIES)
def test_onnx_runtime_equals_pytorch_on_held_out_faces(arch, morph, faces):
    net = _network(arch)
    data = onnx_bytes(net, "whole_face")
    model = OnnxSwapModel(data, "whole_face", device="cpu")
    if morph is not None:
        model.morph = morph
    onnx_out = model.run(faces)  # batch 5: the export's example had 2, so the batch dimension is free
    with torch.no_grad():
        face, mask_src, mask_dst = net.swap(torch.from_numpy(faces).permute(0, 3, 1, 2), morph)
    expected = [t.permute(0, 2, 3, 1).numpy() for t in (mask_dst, face, mask_src)]
    diffs = [float(np.abs(a - b).max()) for a, b in zip(onnx_out, expected)]
    print(f"{arch} morph={morph}: max |ONNX Runtime - PyTorch| dst mask {diffs[0]:.2e}, face {diffs[1]:.2e}, "
          f"face mask {diffs[2]:.2e}")
    assert [o.shape for o in onnx_out] == [e.shape for e in expected]
    assert max(diffs) < MAX_DIFF, diffs
    assert net.training is False  # exporting left the network as it found it


@pytest.mark.parametrize("arch", ["df-ud", "amp-ud"])
def test_a_dfm_opens_and_runs_as_deepfacelive_opens_it(arch, faces, tmp_path):
    net = _network(arch)
    path = tmp_path / "model.dfm"
    path.write_bytes(onnx_bytes(net, "full", iteration=7))
    (height, width), model_type, convert = _deepfacelive_open(path.read_bytes())
    assert (height, width) == (RES, RES) and model_type == (2 if arch.startswith("amp") else 1)
    face_mask, celeb, celeb_mask = convert(faces[:3])
    assert face_mask.shape == (3, RES, RES, 1) and celeb.shape == (3, RES, RES, 3) and celeb_mask.shape == (3, RES, RES, 1)
    for out in (face_mask, celeb, celeb_mask):
        assert out.dtype == np.float32 and 0.0 <= out.min() and out.max() <= 1.0
    with torch.no_grad():
        face, mask_src, mask_dst = net.swap(torch.from_numpy(faces[:3]).permute(0, 3, 1, 2), 0.75)
    assert np.abs(celeb - face.permute(0, 2, 3, 1).numpy()).max() < MAX_DIFF
    assert np.abs(face_mask - mask_dst.permute(0, 2, 3, 1).numpy()).max() < MAX_DIFF
    # The face type and coverage a DeepFaceLive user must set travel in the file.
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["swapwizard.face_type"] == "full" and props["swapwizard.dfl_face_type"] == "f"
    assert props["swapwizard.deepfacelive_face_type"] == "FULL" and "brow" in props["swapwizard.coverage"]
    assert props["swapwizard.iteration"] == "7" and props["swapwizard.arch"] == arch


def _without_metadata(data: bytes) -> bytes:
    """The file as DeepFaceLab's exporter writes it: the same contract, no swapwizard metadata."""
    model = onnx.load_from_string(data)
    del model.metadata_props[:]
    return model.SerializeToString()


def test_untrusted_files_are_refused_in_one_sentence(models_ws, tmp_path):
    data = onnx_bytes(_network("df-ud"), "whole_face")
    not_onnx = tmp_path / "junk.dfm"
    not_onnx.write_bytes(b"\x80\x04\x95 a pickle, or anything else")
    with pytest.raises(UserError, match="is not an ONNX file"):
        describe(not_onnx)
    # External data would make ONNX Runtime read other files (any path): refused before anything runs.
    model = onnx.load_from_string(data)
    outside = tmp_path / "weights.bin"
    onnx.save_model(model, str(tmp_path / "external.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    assert outside.is_file()
    with pytest.raises(UserError, match="external data"):
        describe(tmp_path / "external.onnx")
    # A graph whose inputs are not DeepFaceLive's.
    renamed = onnx.load_from_string(data)
    for node in renamed.graph.node:
        node.input[:] = ["x" if name == "in_face:0" else name for name in node.input]
    renamed.graph.input[0].name = "x"
    (tmp_path / "renamed.onnx").write_bytes(renamed.SerializeToString())
    with pytest.raises(UserError, match="first input is not in_face"):
        describe(tmp_path / "renamed.onnx")
    # DeepFaceLab's files carry no face type: the import asks for it, then takes it.
    dfl = tmp_path / "from_dfl.dfm"
    dfl.write_bytes(_without_metadata(data))
    with pytest.raises(UserError, match="does not say which face type") as refused:
        import_model(models_ws, dfl, "from-dfl")
    assert "--face-type" in refused.value.hint and not models_ws.model_dir("from-dfl").exists()
    done = import_model(models_ws, dfl, "from-dfl", face_type="wf")
    assert done["face_type"] == "whole_face" and done["resolution"] == RES
    imported = load_model(models_ws.model_dir("from-dfl"), device="cpu")
    assert imported.face_type == "whole_face" and imported.resolution == RES
    with pytest.raises(UserError, match="already a model"):
        import_model(models_ws, dfl, "from-dfl", face_type="wf")
    with pytest.raises(UserError, match="not a face type"):
        import_model(models_ws, dfl, "other", face_type="chin")
    assert {p.name for p in models_ws.models_root.iterdir() if p.name.startswith(".import")} == set()
    # A model folder can arrive in a workspace archive: the file is checked again each time it loads.
    (models_ws.model_dir("from-dfl") / "imported.onnx").write_bytes((tmp_path / "external.onnx").read_bytes())
    with pytest.raises(UserError, match="external data"):
        load_model(models_ws.model_dir("from-dfl"), device="cpu")
    shutil.rmtree(models_ws.model_dir("from-dfl"))  # the session's workspace is shared with other model tests
