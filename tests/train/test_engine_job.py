"""Training through the real engine process and the real CLI: events stream, --detach returns at once."""

from __future__ import annotations

import json
import time

import pytest

from engine.client import EngineClient
from engine.train.api import model_exists
from tests.helpers import cli, run_job, stop_engine
from tests.train.conftest import as_dict, tiny_params


@pytest.mark.timeout(180)
def test_train_job_streams_metrics_and_previews_through_the_engine(train_ws):
    try:
        final, events = run_job(train_ws, "train", as_dict(tiny_params("engine", iters=6)), timeout=150)
        assert final.TYPE == "job_finished", getattr(final, "error", "")
        types = [e.TYPE for e in events]
        assert "metrics" in types and "preview" in types
        assert final.result["iteration"] == 6 and final.result["stopped"] == "target"
        assert [p[0] for p in final.result["loss_history"]] == [2, 4, 6]
        history = json.loads((train_ws.root / final.result["loss_history_file"]).read_text())
        assert history["points"] == final.result["loss_history"]
        # Held-out quality (engine.quality) is measured at each save and rides on the metrics events.
        assert (train_ws.model_dir("engine") / "quality_history.json").is_file()
        assert "quality_ssim_dst" in [e for e in events if e.TYPE == "metrics"][-1].values

        # The CLI's --detach returns as soon as the job is queued; the job runs on in the engine.
        started = time.monotonic()
        proc = cli("train", str(train_ws.root), "--preset", "tiny", "--iters", "4", "--model", "detached",
                   "--ae-dims", "32", "--e-dims", "8", "--d-dims", "8", "--d-mask-dims", "4", "--batch", "4",
                   "--threads", "1", "--detach")
        assert proc.returncode == 0, proc.stderr
        assert time.monotonic() - started < 30
        deadline = time.monotonic() + 120
        with EngineClient(train_ws) as client:
            while time.monotonic() < deadline:
                status = client.status()
                if not status.get("running") and not status.get("queue") and model_exists(train_ws.model_dir("detached")):
                    break
                time.sleep(0.5)
        saved = json.loads((train_ws.model_dir("detached") / "model.json").read_text())
        assert saved["iteration"] == 4
    finally:
        stop_engine(train_ws)
