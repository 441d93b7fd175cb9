"""Benchmarks pointed at a user's workspace measure it and leave it as they found it."""

from __future__ import annotations

import pytest

from tests.helpers import cli


@pytest.mark.timeout(300)
def test_bench_train_on_a_workspace_leaves_no_model_behind(extracted_ws):
    models = extracted_ws.model_names()
    done = cli("bench", "train", "--preset", "tiny", "--workspace", str(extracted_ws.root), "--iters", "5",
               "--threads", "1", "--json", timeout=280)
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"iters_per_s"' in done.stdout
    assert extracted_ws.model_names() == models  # its throwaway model (bench-tiny-<time>) is gone
