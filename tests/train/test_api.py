"""What merging uses: load_model and predict, on a model trained by the real job."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.errors import UserError
from engine.jobs.train import run
from engine.report import CallbackReporter
from engine.train.api import load_model, model_exists
from tests.train.conftest import tiny_params


@pytest.mark.timeout(120)
def test_load_model_predicts_faces_and_masks(train_ws):
    model_dir = train_ws.model_dir("for-merge")
    assert not model_exists(model_dir)
    with pytest.raises(UserError):
        load_model(model_dir)
    run(train_ws, tiny_params("for-merge", iters=4, arch="liae-ud"), CallbackReporter(lambda e: None))
    assert model_exists(model_dir)
    model = load_model(model_dir, device="cpu")
    assert model.resolution == 64 and model.face_type == "whole_face" and model.iteration == 4
    crops = [cv2.resize(cv2.imread(str(p)), (64, 64)) for p in sorted(train_ws.aligned_dir("dst").iterdir())[:5]]
    preds = model.predict(crops)
    assert len(preds) == 5
    for pred in preds:
        assert pred.face.shape == (64, 64, 3) and pred.face.dtype == np.float32
        assert pred.mask_src.shape == (64, 64) and pred.mask_dst.shape == (64, 64)
        assert 0 <= pred.face.min() and pred.face.max() <= 1
    # Batched prediction gives what one-by-one prediction gives.
    single = model.predict(crops[:1])[0]
    np.testing.assert_allclose(single.face, preds[0].face, atol=1e-5)
    with pytest.raises(ValueError):
        model.predict([np.zeros((32, 32, 3), np.uint8)])
