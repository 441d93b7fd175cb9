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


def test_the_wizard_shows_identity_on_train_and_compare() -> None:
    from rich.console import Console

    from tui.quality_tables import compare_table
    from tui.screens.compare import training_line
    from tui.screens.train import stats_text

    text = stats_text(None, {"iter": 500, "loss_src": 0.5, "loss_dst": 0.4, "quality_ssim_dst": 0.6,
                             "quality_id_src": 0.52, "quality_id_dst": 0.71, "quality_id_closer_src": 0.75})
    assert "like src 75% (id src 0.52 dst 0.71)" in text
    assert "id_closer_src 75%" in training_line("m", [{"iteration": 500, "ssim_dst": 0.6, "id_closer_src": 0.75}])
    from engine.quality.compare import metric_table

    models = [{"name": n, "iteration": 9, "cost": {}, "metrics": {"id_src": s, "id_dst": d, "id_closer_src": c}}
              for n, s, d, c in (("a", 0.55, 0.8, 1.0), ("b", 0.7, 0.6, 0.0))]
    console = Console(width=140, record=True)
    console.print(compare_table({"models": models, "table": metric_table(models)}))
    shown = console.export_text()
    assert "id_src" in shown and "0.550 *" in shown and "id_closer_src" in shown and "100% *" in shown


def test_the_check_step_shows_people_and_intruders() -> None:
    from tui.screens.check import side_line

    line = side_line("src", {"faces": 38, "frames": 38, "tracks": 1,
                             "identity": {"people": 1, "other_person_faces": 8}})
    assert "1 person" in line and "8 faces of another person" in line
