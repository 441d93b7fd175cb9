"""The expression loss (``[train] expression_power``): a regressor fitted on the workspace's own faces
reads mouth and eye opening; the swap is asked to open them as the dst face does. Fitted once, saved
with the model, and a resumed run is the uninterrupted one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.jobs.train import run
from engine.train import expression_loss
from engine.train.augment import expression_features
from engine.train.expression_loss import ExpressionLoss, masked
from engine.train.samples import load_side
from tests.train.conftest import tiny_params
from tests.train.test_resume import QUIET, assert_same_state, latest


@pytest.fixture(scope="module")
def fitted(train_ws):
    faces = {side: load_side(train_ws, side, 64) for side in ("src", "dst")}
    features = {side: expression_features(train_ws, side, faces[side]) for side in ("src", "dst")}
    said: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(expression_loss, "FIT_STEPS", 300)
        loss = ExpressionLoss.fit([faces["src"].data, faces["dst"].data], [features["src"], features["dst"]],
                                  torch.device("cpu"), 7, said.append)
    return loss, faces, features, said


def test_the_regressor_reads_openings_and_the_loss_reaches_the_swap_only(fitted):
    loss, faces, features, said = fitted
    assert said and "correlation" in said[0]
    dst = faces["dst"].data
    n = int(dst.shape[0])
    index = torch.arange(n)
    crops = masked(dst.index_select(0, index))
    read = loss.regressor(crops).detach().numpy()
    # It reads the dst faces' mouth opening (its labels), far better than chance.
    assert np.corrcoef(read[:, 0], loss.dst_labels[:, 0].numpy())[0, 1] > 0.7
    mask = torch.ones(n, 1, 64, 64)
    own = float(loss(crops, mask, index))
    shuffled = float(loss(crops, mask, index.roll(n // 2)))
    assert own < shuffled  # the dst face itself opens as it does; another one does not
    swap = crops.clone().requires_grad_(True)
    loss(swap, mask, index).backward()
    assert swap.grad is not None and float(swap.grad.abs().sum()) > 0
    assert all(p.grad is None for p in loss.regressor.parameters()), "the regressor stays frozen"


def test_fitted_once_saved_with_the_model_and_resumed_exactly(train_ws, monkeypatch):
    monkeypatch.setattr(expression_loss, "FIT_STEPS", 40)
    logs: list[str] = []

    def note(event: dict) -> None:
        if event.get("type") == "log":
            logs.append(event["message"])

    from engine.report import CallbackReporter

    run(train_ws, tiny_params("expr-straight", iters=8, expression_power=1.0), QUIET)
    run(train_ws, tiny_params("expr-resumed", iters=4, expression_power=1.0), CallbackReporter(note))
    assert sum("Expression loss" in m for m in logs) == 1
    run(train_ws, tiny_params("expr-resumed", iters=8, expression_power=1.0), CallbackReporter(note))
    assert sum("Expression loss" in m for m in logs) == 1, "the resumed run reads with the saved regressor"
    straight, resumed = latest(train_ws, "expr-straight"), latest(train_ws, "expr-resumed")
    assert any(k.startswith("expr.") for k in resumed.model)
    assert_same_state(straight, resumed)
    # Turned off, the regressor is kept with the model (a later run with it on reads as before).
    run(train_ws, tiny_params("expr-resumed", iters=10, expression_power=0.0), QUIET)
    kept = latest(train_ws, "expr-resumed")
    assert all(torch.equal(kept.model[k], resumed.model[k]) for k in resumed.model if k.startswith("expr"))
