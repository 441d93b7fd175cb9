"""Fixtures for the model-family tests (issue 15): one workspace with both sample sides really extracted
(128 px PNG crops), shared by the session; each test trains its own named model in it with tiny dims."""

from __future__ import annotations

from typing import Any

import pytest

from engine.faces.extract import ExtractSettings, extract_side
from engine.report import NullReporter
from tests.helpers import make_workspace

#: Tiny shapes and one CPU thread, so that a step takes tens of milliseconds.
TINY: dict[str, Any] = dict(preset="tiny", ae_dims=32, e_dims=8, d_dims=8, d_mask_dims=4, batch_size=4,
                            threads=1, sync_every=2, preview_every_min=60.0, save_every_min=60.0, warmup_iters=4)


@pytest.fixture(scope="session")
def models_ws(tmp_path_factory):
    """A workspace whose src and dst sample clips were extracted (75 faces each)."""
    ws = make_workspace(tmp_path_factory.mktemp("models") / "models ws")
    ws.record_consent("tests")
    ws.update_settings("extract", {"size": 128, "crop_format": "png"})
    for side in ("src", "dst"):
        extract_side(ws, side, ExtractSettings(size=128, crop_format="png"), NullReporter())
    return ws
