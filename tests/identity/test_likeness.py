"""Identity in the quality report: the unswapped destination is 0 % closer to the source person,
the source clip itself 100 % (measured as if it were a merged video of the destination)."""

from __future__ import annotations

import pytest

from engine.jobs import get_kind
from engine.quality.evaluate import METRICS, evaluate
from engine.report import NullReporter
from engine.workspace import Workspace
from tests.helpers import SAMPLES


@pytest.mark.timeout(300)
def test_unswapped_destination_scores_0_and_the_source_clip_1(tmp_path) -> None:
    ws = Workspace.create(tmp_path / "ws", SAMPLES / "src.mp4", SAMPLES / "dst.mp4")
    job = get_kind("extract")
    job.module.run(ws, job.parse_params({"side": "both"}), NullReporter())
    for key in ("id_src", "id_dst", "id_closer_src"):
        assert key in METRICS
    same = evaluate(ws, "none", frames=6, video="data_dst.mp4")["metrics"]
    assert same["id_faces"] == 6 and same["id_closer_src"] == 0.0
    assert same["id_dst"] < 0.45 < 0.6 < same["id_src"]
    # The source clip stands in for a perfect swap: the same frame size, a face where dst has one.
    other = evaluate(ws, "none", frames=6, video="data_src.mp4")["metrics"]
    assert other["id_faces"] == 6 and other["id_closer_src"] == 1.0
    assert other["id_src"] < 0.45 < 0.6 < other["id_dst"]
