"""Pretraining on any face set (both sides from one folder), then continuing on the user's pair."""

from __future__ import annotations

import shutil

import pytest

from engine.errors import UserError
from engine.jobs.train import run
from engine.report import CallbackReporter
from engine.train.checkpoint import CheckpointStore
from tests.train.conftest import tiny_params


@pytest.mark.timeout(120)
def test_pretrain_on_a_folder_then_continue_on_the_pair(train_ws, tmp_path):
    faces = tmp_path / "faces"
    faces.mkdir()
    for path in sorted(train_ws.aligned_dir("src").iterdir())[:10]:
        shutil.copy(path, faces / path.name)
    result = run(train_ws, tiny_params("pre", iters=4, pretrain_faces=str(faces)), CallbackReporter(lambda e: None))
    assert result["iteration"] == 4
    assert CheckpointStore(train_ws.model_dir("pre")).load().state["pretraining"] is True

    events = []
    result = run(train_ws, tiny_params("pre", iters=2), CallbackReporter(events.append))
    messages = [e.get("message", "") for e in events]
    assert any("Pretraining ended at iteration 4" in m for m in messages)
    assert result["iteration"] == 2 and result["iterations_this_run"] == 2
    saved = CheckpointStore(train_ws.model_dir("pre")).load()
    assert saved.state["pretraining"] is False and saved.state["iteration"] == 2
    with pytest.raises(UserError, match="pretraining it now"):
        run(train_ws, tiny_params("pre", iters=6, pretrain_faces=str(faces)), CallbackReporter(lambda e: None))
