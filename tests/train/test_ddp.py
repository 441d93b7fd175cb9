"""--gpus 2 on the CPU: two ranks under torchrun with the gloo backend, DistributedDataParallel for real."""

from __future__ import annotations

import json

import pytest
import torch

from engine.jobs.train import run
from engine.report import CallbackReporter
from engine.train.checkpoint import CheckpointStore
from tests.train.conftest import tiny_params


@pytest.mark.timeout(180)
def test_two_ranks_with_gloo_train_and_save_together(train_ws):
    events = []
    result = run(train_ws, tiny_params("ddp", iters=6, gpus=2), CallbackReporter(events.append))
    assert result["iteration"] == 6 and result["stopped"] == "target"
    types = {e["type"] for e in events}
    assert {"metrics", "preview", "progress"} <= types  # rank 0's events reach the job's reporter
    metrics = [e["values"] for e in events if e["type"] == "metrics"]
    # samples/s counts both ranks' batches: 2 ranks x 2 sides x batch 4 per iteration.
    last = metrics[-1]
    assert last["samples_per_s"] == pytest.approx(last["iters_per_s"] * 16, rel=0.01)
    saved = CheckpointStore(train_ws.model_dir("ddp")).load()
    assert saved.state["world_size"] == 2 and len(saved.state["samplers"]) == 2
    # Each rank drew its own samples: their sampler states differ.
    a, b = saved.state["samplers"]
    assert a["src"]["order"] != b["src"]["order"]
    assert all(torch.isfinite(t).all() for t in saved.model.values())
    history = json.loads((train_ws.model_dir("ddp") / "loss_history.json").read_text())["points"]
    assert [p[0] for p in history] == [2, 4, 6]


@pytest.mark.timeout(180)
def test_two_ranks_stop_together_when_cancelled(train_ws):
    """Cancel reaches rank 0 through the control file; both ranks stop at the same iteration, wait for
    each other and leave: the job ends cancelled, with a checkpoint at the iteration it stopped."""
    from engine.errors import JobCancelled

    seen: list[int] = []

    def note(event: dict) -> None:
        if event["type"] == "metrics":
            seen.append(event["values"]["iter"])

    with pytest.raises(JobCancelled):
        run(train_ws, tiny_params("ddp-cancel", iters=0, gpus=2),
            CallbackReporter(note, cancel=lambda: bool(seen) and seen[-1] >= 3))
    saved = CheckpointStore(train_ws.model_dir("ddp-cancel")).load()
    assert saved.state["world_size"] == 2 and saved.state["iteration"] >= 3


@pytest.mark.timeout(180)
def test_two_ranks_stop_together_on_the_stop_rule(train_ws):
    """``--for`` (and ``--until good``) on several GPUs: rank 0 keeps the stop rule, as it keeps the quality
    watcher; both ranks stop at the same iteration, saved, with the rule's reason in the job's result."""
    from engine.quality.estimate import read_state

    events: list[dict] = []
    result = run(train_ws, tiny_params("ddp-for", iters=100_000, gpus=2, time_limit="3s", save_every_iters=0),
                 CallbackReporter(events.append))
    assert result["stopped"] == "time" and result["stop_reason"].startswith("Stopped after 1 min (--for), at iteration")
    saved = CheckpointStore(train_ws.model_dir("ddp-for")).load()
    assert saved.state["world_size"] == 2 and saved.state["iteration"] == result["iteration"] < 100_000
    assert read_state(train_ws.model_dir("ddp-for"))["stopped"] == "time"
    assert not [e for e in events if e["type"] == "warning" and "several GPUs" in e.get("message", "")]
