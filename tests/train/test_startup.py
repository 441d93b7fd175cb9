"""Quality is measured beside the training loop, never in it (issue 26): the loop hands a copy of the
weights to a low-priority thread and trains on; iteration 0 is not measured; a run that reaches its
target carries its last measurement, a cancel drops it."""

from __future__ import annotations

import json
import threading

import pytest

from engine.quality.beside import Beside
from engine.quality.training import TrainingQuality
from engine.report import CallbackReporter
from engine.train.loop import TrainingRun
from tests.train.conftest import tiny_params


def test_beside_runs_the_newest_request_and_the_caller_never_waits() -> None:
    release, started = threading.Event(), threading.Event()
    done: list[int] = []

    def work(n: int) -> None:
        started.set()
        release.wait(30)
        done.append(n)

    beside = Beside(work)
    beside.submit(1)  # returns while the work is blocked: the caller does not wait for it
    assert started.wait(30) and beside.busy
    beside.submit(2)
    beside.submit(3)  # replaces 2, which never started
    release.set()
    assert beside.wait()
    assert done == [1, 3] and not beside.busy

    release.clear()
    started.clear()
    beside.submit(4)
    assert started.wait(30)
    beside.submit(5)
    beside.drop(grace_s=0.1)  # a cancel: the waiting request is forgotten, the running one not waited for
    assert beside.dropped and done == [1, 3]
    release.set()
    assert beside.wait() and done == [1, 3, 4]


def _run(ws, model: str, iters: int, cancel_at: int | None = None):
    from engine.jobs.train import config

    watchers: list[TrainingQuality] = []

    def watch(*args):
        watchers.append(TrainingQuality(*args))
        watchers[-1].every = 4
        return watchers[-1]

    events: list[dict] = []
    run: TrainingRun | None = None
    cancelled = lambda: cancel_at is not None and run is not None and run.iteration >= cancel_at  # noqa: E731
    run = TrainingRun(ws, config(ws, tiny_params(model, iters=iters)), CallbackReporter(events.append, cancelled),
                      watch=watch)
    return run, watchers, events


@pytest.mark.timeout(300)
def test_the_loop_measures_beside_training_and_carries_the_last_measurement(train_ws) -> None:
    run, watchers, events = _run(train_ws, "beside", 8)
    result = run.run()
    quality = watchers[0]
    points = json.loads((train_ws.model_dir("beside") / "quality_history.json").read_text())["points"]
    measured = [p["iteration"] for p in points if p.get("source") == "training"]
    assert 0 not in measured and measured[-1] == 8  # iteration 0 skipped; the last one waited for
    assert quality.measured_iteration == 8
    last = [e for e in events if e["type"] == "metrics"][-1]
    assert last["values"]["iter"] == 8 and "quality_ssim_dst" in last["values"]
    # The loop only copied weights; the measuring (mediapipe mesh, reconstructions) ran on the thread.
    assert quality.measuring_s > 0 and result["quality_wait_s"] < quality.measuring_s / 4


@pytest.mark.timeout(300)
def test_a_cancel_drops_the_measurement_instead_of_waiting(train_ws) -> None:
    from engine.errors import JobCancelled

    run, watchers, events = _run(train_ws, "beside-cancel", 10_000, cancel_at=8)
    with pytest.raises(JobCancelled):
        run.run()
    saved = json.loads((train_ws.model_dir("beside-cancel") / "model.json").read_text())
    assert 8 <= saved["iteration"] < 100
    assert not watchers[0]._beside.busy or watchers[0]._beside.dropped
