"""Pretraining on any face set (both sides from one folder), then continuing on the user's pair."""

from __future__ import annotations

import shutil

import pytest

from engine.errors import UserError
from engine.jobs.train import run
from engine.report import CallbackReporter
from engine.train.checkpoint import CheckpointStore
from tests.train.conftest import tiny_params


@pytest.fixture
def faces(train_ws, tmp_path):
    """A plain folder of ten of the workspace's aligned crops: a pretraining set."""
    folder = tmp_path / "faces"
    folder.mkdir()
    for path in sorted(train_ws.aligned_dir("src").iterdir())[:10]:
        shutil.copy(path, folder / path.name)
    return folder


@pytest.mark.timeout(120)
def test_pretrain_on_a_folder_then_continue_on_the_pair(train_ws, faces):
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


@pytest.mark.timeout(120)
def test_the_expression_bench_starts_candidates_from_a_copy_of_a_pretrained_model(train_ws, faces):
    from engine.bench.expression import start_from

    run(train_ws, tiny_params("base", iters=3, pretrain_faces=str(faces)), CallbackReporter(lambda e: None))
    start_from(train_ws, "base", "bench-copy")
    events = []
    result = run(train_ws, tiny_params("bench-copy", iters=2), CallbackReporter(events.append))
    assert any("Pretraining ended at iteration 3" in e.get("message", "") for e in events)
    assert result["iteration"] == 2
    assert CheckpointStore(train_ws.model_dir("base")).load().state["pretraining"] is True  # the original is untouched
    start_from(train_ws, "base", "bench-copy")  # a candidate that has started is not copied over again
    assert CheckpointStore(train_ws.model_dir("bench-copy")).load().state["iteration"] == 2
    with pytest.raises(UserError, match="no pretrained checkpoint"):
        start_from(train_ws, "bench-copy", "bench-other")  # trained on the pair: not a pretrained model


def test_train_refuses_a_pretraining_folder_that_is_not_there(train_ws, tmp_path):
    from tests.helpers import cli

    result = cli("train", str(train_ws.root), "--model", "pre", "--pretrain", str(tmp_path / "nope"))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert f"There is no folder {tmp_path / 'nope'} to pretrain on." in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr and "started" not in result.stdout  # refused before any job
