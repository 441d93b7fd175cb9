"""Resume is exact: same iteration, same optimizer state, same batches -- after a stop, a kill -9 or SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from engine.jobs.train import run
from engine.report import CallbackReporter
from engine.train.checkpoint import CheckpointStore
from tests.helpers import REPO
from tests.train.conftest import as_dict, tiny_params

QUIET = CallbackReporter(lambda e: None)


def latest(ws, model):
    return CheckpointStore(ws.model_dir(model)).load()


def assert_same_state(a, b):
    assert a.state["iteration"] == b.state["iteration"]
    assert a.model.keys() == b.model.keys() and a.optimizer.keys() == b.optimizer.keys()
    for key in a.model:
        assert torch.equal(a.model[key], b.model[key]), key
    for key in a.optimizer:
        assert torch.equal(a.optimizer[key], b.optimizer[key]), key
    assert a.state["optimizers"] == b.state["optimizers"]


def spawn_training(ws, params):
    code = ("import json, sys; from engine.jobs import parse_params; from engine.jobs.train import Params, run; "
            "from engine.report import NullReporter; from engine.workspace import Workspace; "
            "r = run(Workspace.open(sys.argv[1]), parse_params(Params, json.loads(sys.argv[2])), NullReporter()); "
            "print(json.dumps({k: r[k] for k in ('iteration', 'stopped')}))")
    return subprocess.Popen([sys.executable, "-c", code, str(ws.root), json.dumps(as_dict(params))],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(ws, model, at_least, proc, timeout=90):
    store = CheckpointStore(ws.model_dir(model))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = [p.name for p in store.candidates()]
        if names and int(names[0][2:]) >= at_least:
            return
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    raise TimeoutError("no checkpoint appeared")


@pytest.mark.timeout(120)
def test_stop_then_resume_equals_an_uninterrupted_run(train_ws):
    run(train_ws, tiny_params("straight", iters=12), QUIET)
    run(train_ws, tiny_params("resumed", iters=6), QUIET)
    first = latest(train_ws, "resumed")
    assert first.state["iteration"] == 6
    result = run(train_ws, tiny_params("resumed", iters=12), QUIET)
    assert result["iteration"] == 12 and result["iterations_this_run"] == 6
    assert_same_state(latest(train_ws, "straight"), latest(train_ws, "resumed"))
    # The loss curve continues across the restart.
    points = json.loads((train_ws.model_dir("resumed") / "loss_history.json").read_text())["points"]
    assert [p[0] for p in points] == [2, 4, 6, 8, 10, 12]


@pytest.mark.timeout(180)
def test_kill_9_mid_run_then_resume_exactly(train_ws):
    proc = spawn_training(train_ws, tiny_params("killed", iters=100000, save_every_iters=4))
    try:
        wait_for_checkpoint(train_ws, "killed", 8, proc)
        time.sleep(0.3)  # let it get into the middle of more steps (or of a save)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    survivor = latest(train_ws, "killed")
    k = survivor.state["iteration"]
    assert k >= 8 and k % 2 == 0

    # Resuming starts from exactly that state ...
    events = []
    result = run(train_ws, tiny_params("killed", iters=k + 4), CallbackReporter(events.append))
    assert f"Resumed killed at iteration {k}." in [e.get("message") for e in events]
    assert result["iterations_this_run"] == 4
    # ... and ends where a run that was never killed ends.
    run(train_ws, tiny_params("never-killed", iters=k + 4), QUIET)
    assert_same_state(latest(train_ws, "never-killed"), latest(train_ws, "killed"))


@pytest.mark.timeout(120)
def test_sigterm_saves_then_stops(train_ws):
    proc = spawn_training(train_ws, tiny_params("terminated", iters=100000, save_every_iters=1000))
    wait_for_checkpoint(train_ws, "terminated", 0, proc)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["stopped"] == "terminated" and result["iteration"] > 0
    assert latest(train_ws, "terminated").state["iteration"] == result["iteration"]
