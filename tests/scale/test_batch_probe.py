"""The batch-size probe on the CPU (no GPU in this project's test machines): real training steps of a
tiny model, batch doubled up to the cap, memory headroom respected, the curve reported."""

from __future__ import annotations

import torch

from engine.train.batchprobe import probe_batch, trainer_step
from engine.train.options import ModelOptions, TrainOptions

TINY = ModelOptions("df-ud", 64, 32, 8, 8, 4)


def test_the_probe_doubles_to_the_cap_and_picks_a_batch_that_pays():
    torch.set_num_threads(1)
    step = trainer_step(TINY, TrainOptions(batch_size=2), torch.device("cpu"), 64)
    found = probe_batch(step, torch.device("cpu"), start=2, cap=8, steps=2, min_gain=0.0)
    batches = [p["batch"] for p in found["curve"]]
    assert batches == [2, 4, 8][:len(batches)] and found["stopped"] in ("cap", "no gain")
    assert found["stopped"] == "no gain" or batches == [2, 4, 8]
    assert all(p["samples_per_s"] > 0 and p["peak_bytes"] > 0 and p["fits"] for p in found["curve"])
    best = max(found["curve"], key=lambda p: p["samples_per_s"])
    assert found["batch"] == best["batch"]


def test_the_probe_leaves_the_headroom():
    step = trainer_step(TINY, TrainOptions(batch_size=2), torch.device("cpu"), 64)
    found = probe_batch(step, torch.device("cpu"), start=2, cap=64, headroom=1.0, steps=1)  # nothing may be used
    assert found["stopped"] == "headroom" and found["batch"] == 2
    assert [p["fits"] for p in found["curve"]] == [False]
