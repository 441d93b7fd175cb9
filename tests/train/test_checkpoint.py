"""Checkpoints: exact round trip of weights and optimizer state, damaged latest falls back, all damaged fails."""

from __future__ import annotations

import json

import pytest
import torch

from engine.errors import UserError
from engine.jobs.train import run
from engine.report import CallbackReporter
from engine.train.api import load_model, model_exists
from engine.train.checkpoint import CheckpointStore, flatten_optimizer, unflatten_optimizer
from engine.train.options import ModelOptions, TrainOptions
from engine.train.trainer import Trainer
from tests.train.conftest import tiny_params


def test_optimizer_state_round_trips_through_tensors_and_json():
    trainer = Trainer(ModelOptions("liae-u", 32, 16, 4, 4, 2), TrainOptions(batch_size=2), torch.device("cpu"))
    x = torch.rand(2, 3, 32, 32)
    out = trainer.model(x, x)
    sum(o.mean() for o in out).backward()
    trainer.optimizer.step()
    tensors, structure = flatten_optimizer("model", trainer.optimizer)
    restored = unflatten_optimizer(json.loads(json.dumps(structure)), tensors)
    original = trainer.optimizer.state_dict()
    assert restored["state"].keys() == original["state"].keys()
    for pid, entry in original["state"].items():
        for key, value in entry.items():
            assert torch.equal(restored["state"][pid][key], value)


@pytest.mark.timeout(120)
def test_damaged_latest_checkpoint_falls_back_with_a_warning(train_ws):
    events = []
    run(train_ws, tiny_params("damaged", iters=8, save_every_iters=4), CallbackReporter(events.append))
    store = CheckpointStore(train_ws.model_dir("damaged"))
    newest = store.candidates()[0]
    assert newest.name == "it000000008"
    weights = newest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a truncated write

    warnings = []
    loaded = store.load(warn=warnings.append)
    assert loaded.path != newest
    assert warnings and "truncated or damaged" in warnings[0]

    # Training on resumes from the previous good checkpoint and says so.
    events.clear()
    result = run(train_ws, tiny_params("damaged", iters=10), CallbackReporter(events.append))
    resumed = [e["message"] for e in events if e["type"] == "log" and "Resumed" in e["message"]]
    assert resumed == [f"Resumed damaged at iteration {loaded.state['iteration']}."]
    assert any("truncated or damaged" in w for w in result["warnings"])
    assert result["iteration"] == 10


@pytest.mark.timeout(120)
def test_every_checkpoint_damaged_is_an_error_not_a_fresh_start(train_ws):
    run(train_ws, tiny_params("ruined", iters=2), CallbackReporter(lambda e: None))
    store = CheckpointStore(train_ws.model_dir("ruined"))
    for path in store.candidates():
        (path / "state.json").write_text("{not json")
    assert model_exists(train_ws.model_dir("ruined"))
    with pytest.raises(UserError, match="damaged"):
        run(train_ws, tiny_params("ruined", iters=4), CallbackReporter(lambda e: None))
    with pytest.raises(UserError, match="damaged"):
        load_model(train_ws.model_dir("ruined"), device="cpu")


def test_a_shape_mismatch_is_refused(train_ws):
    run(train_ws, tiny_params("shape", iters=2), CallbackReporter(lambda e: None))
    with pytest.raises(UserError, match="shape is fixed"):
        run(train_ws, tiny_params("shape", iters=4, ae_dims=48), CallbackReporter(lambda e: None))
