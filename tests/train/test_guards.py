"""Guards: a forced NaN rolls back and lowers the LR; out-of-memory halves the batch; cancel saves first;
client commands (preview, save, set_target) are answered."""

from __future__ import annotations

import time
from typing import Any

import pytest

from engine.errors import JobCancelled
from engine.jobs.train import run
from engine.report import Reporter
from engine.train.checkpoint import CheckpointStore
from engine.train.loop import METRICS_INTERVAL_S
from tests.train.conftest import tiny_params


class ScriptedClient(Reporter):
    """A reporter that records events and, like an attached client, sends commands or cancels at a given
    iteration. Training reads commands once per sync point (every ``sync_every`` = 2 iterations of the
    tiny params), so the n-th read happens at iteration 2n."""

    def __init__(self, commands_at: dict[int, dict[str, Any]] | None = None, cancel_at: int | None = None,
                 sync_every: int = 2) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []
        self.times: list[float] = []
        self.commands_at = dict(commands_at or {})
        self.cancel_at = cancel_at
        self.sync_every = sync_every
        self.iteration = 0

    def emit(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self.times.append(time.monotonic())

    @property
    def cancelled(self) -> bool:
        return self.cancel_at is not None and self.iteration >= self.cancel_at

    def commands(self) -> list[dict[str, Any]]:
        self.iteration += self.sync_every
        due = [it for it in self.commands_at if it <= self.iteration]
        return [self.commands_at.pop(it) for it in sorted(due)]


@pytest.mark.timeout(120)
def test_forced_nan_rolls_back_and_lowers_the_learning_rate(train_ws):
    client = ScriptedClient()
    result = run(train_ws, tiny_params("nan", iters=12, save_every_iters=4, debug_nan_at=9), client)
    warnings = [e["message"] for e in client.events if e["type"] == "log" and e["level"] == "warning"]
    rolled = [w for w in warnings if "non-finite" in w]
    assert len(rolled) == 1 and "rolled back to iteration 8" in rolled[0]
    assert result["lr_scale"] == 0.5 and result["iteration"] == 12
    history = result["loss_history"]
    assert all(p[1] == p[1] and p[2] == p[2] for p in history)  # no NaN survives in the curve
    assert [p[0] for p in history] == [2, 4, 6, 8, 10, 12]
    saved = CheckpointStore(train_ws.model_dir("nan")).load()
    assert saved.state["lr_scale"] == 0.5
    assert all(v.isfinite().all() for v in saved.model.values())


@pytest.mark.timeout(120)
def test_out_of_memory_halves_the_batch_and_goes_on(train_ws):
    client = ScriptedClient()
    result = run(train_ws, tiny_params("oom", iters=6, debug_oom_at=3), client)
    assert result["batch_size"] == 2 and result["iteration"] == 6
    assert any("Out of GPU memory at batch size 4" in e.get("message", "") for e in client.events)
    # The smaller batch is remembered for the next run of this model.
    assert CheckpointStore(train_ws.model_dir("oom")).load().state["train_options"]["batch_size"] == 2


@pytest.mark.timeout(120)
def test_cancel_saves_then_stops(train_ws):
    client = ScriptedClient(cancel_at=4)
    with pytest.raises(JobCancelled):
        run(train_ws, tiny_params("cancelled", iters=1000), client)
    saved = CheckpointStore(train_ws.model_dir("cancelled")).load()
    assert saved.state["iteration"] == 4
    last_metrics = [e for e in client.events if e["type"] == "metrics"][-1]["values"]
    assert last_metrics["iter"] == 4


@pytest.mark.timeout(120)
def test_client_commands_preview_save_and_target(train_ws):
    client = ScriptedClient(commands_at={2: {"command": "preview"}, 4: {"command": "save"},
                                         6: {"command": "set_target", "iters": 10}})
    result = run(train_ws, tiny_params("commands", iters=1000), client)
    assert result["iteration"] == 10 and result["stopped"] == "target"
    previews = [e for e in client.events if e["type"] == "preview"]
    # At the first iteration (drawn there, not before training starts), on request, and at the end.
    assert [e["extra"]["iteration"] for e in previews] == [1, 2, 10]
    for event in previews:
        assert (train_ws.root / event["path"]).is_file() and (train_ws.root / event["small"]).is_file()
    names = [p.name for p in CheckpointStore(train_ws.model_dir("commands")).candidates()]
    assert "it000000004" in names  # the save command
    metrics = [e["values"] for e in client.events if e["type"] == "metrics"]
    assert {"iter", "loss_src", "loss_dst", "iters_per_s", "samples_per_s", "eta_s", "target"} <= set(metrics[-1])
    assert metrics[-1]["target"] == 10
    # The first iteration says so at once, with its own loss (before the history keeps a point).
    assert metrics[0]["iter"] == 1 and metrics[0]["loss_src"] > 0 and metrics[0]["loss_dst"] > 0


def test_metrics_are_throttled(train_ws):
    client = ScriptedClient(sync_every=1)
    run(train_ws, tiny_params("throttle", iters=20, sync_every=1), client)
    times = [t for t, e in zip(client.times, client.events) if e["type"] == "metrics"]
    gaps = [b - a for a, b in zip(times[:-2], times[1:-1])]  # the last one is sent at the end regardless
    assert len(times) >= 2 and all(gap >= METRICS_INTERVAL_S * 0.95 for gap in gaps)
