"""A workspace made from the sample pair with both sides extracted for real, and two micro models.

Session-scoped: extraction (about 10 s) and training (a few hundred iterations of a 32-pixel model)
are paid once for all quality tests. "short" and "long" differ only in how long they trained.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from engine.jobs import get_kind
from engine.report import NullReporter
from engine.workspace import Workspace
from tests.helpers import SAMPLES, stop_engine

#: The smallest model shape the trainer accepts, so the tests train in about a minute on a busy CPU.
MICRO = {"preset": "tiny", "arch": "df", "resolution": 32, "ae_dims": 32, "e_dims": 8, "d_dims": 8,
         "d_mask_dims": 4, "batch_size": 4, "random_warp": False, "lr": 1e-3, "warmup_iters": 5,
         "device": "cpu", "seed": 1}
SHORT_ITERS, LONG_ITERS = 10, 160


def run_job(ws: Workspace, kind: str, params: dict) -> dict:
    job = get_kind(kind)
    return job.module.run(ws, job.parse_params(params), NullReporter())


@pytest.fixture(scope="session")
def one_thread() -> Iterator[None]:
    """One torch thread: on a shared 2-core machine two spinning threads are many times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def extracted_ws(tmp_path_factory, one_thread) -> Iterator[Workspace]:
    ws = Workspace.create(tmp_path_factory.mktemp("quality") / "ws", SAMPLES / "src.mp4", SAMPLES / "dst.mp4")
    ws.record_consent("tests")
    ws.update_settings("quality", {"every_iters": 50})  # the trainer measures held-out quality this often
    run_job(ws, "extract", {"side": "both"})
    yield ws
    stop_engine(ws)


@pytest.fixture(scope="session")
def trained_ws(extracted_ws) -> Workspace:
    run_job(extracted_ws, "train", {**MICRO, "model": "short", "iters": SHORT_ITERS})
    run_job(extracted_ws, "train", {**MICRO, "model": "long", "iters": LONG_ITERS})
    return extracted_ws
