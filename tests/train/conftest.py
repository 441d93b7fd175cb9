"""Fixtures for training tests: one workspace with both sample sides really extracted (128 px crops),
shared by the session; each test trains its own named model in it, with tiny dims on one CPU thread."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from engine.faces.extract import ExtractSettings, extract_side
from engine.jobs.train import Params
from engine.report import NullReporter
from tests.helpers import make_workspace

#: Tiny shapes so that a step takes tens of milliseconds on one core.
TINY: dict[str, Any] = dict(preset="tiny", ae_dims=32, e_dims=8, d_dims=8, d_mask_dims=4, batch_size=4,
                            threads=1, sync_every=2, preview_every_min=60.0, save_every_min=60.0, warmup_iters=4)


def tiny_params(model: str, **overrides: Any) -> Params:
    return Params(**{**TINY, "model": model, **overrides})


def as_dict(params: Params) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(params).items() if v is not None}


@pytest.fixture(scope="session")
def train_ws(tmp_path_factory):
    """A workspace whose src and dst sample clips were extracted (75 faces each, 128 px PNG crops)."""
    ws = make_workspace(tmp_path_factory.mktemp("train") / "train ws")
    for side in ("src", "dst"):
        extract_side(ws, side, ExtractSettings(size=128, crop_format="png"), NullReporter())
    return ws
