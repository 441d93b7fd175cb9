"""The wizard's Compare view draws the comparison a compare job wrote: table, marks, contact sheet."""

from __future__ import annotations

import pytest

from engine.quality.compare import metric_table
from engine.quality.history import append
from tests.quality.helpers import models, open_compare, with_report, wizard
from tests.tui.conftest import drive, wait_for
from tui.screens.compare import CompareScreen
from tui.widgets.picture import Picture


@pytest.mark.timeout(60)
def test_compare_view_shows_the_table_and_the_contact_sheet(tmp_path) -> None:
    entries = models({"tiny-gan": 0.61, "tiny-plain": 0.58})
    ws, folder = with_report(tmp_path, "compare", "compare.json", {
        "models": entries, "table": metric_table(entries), "frames": [67, 68, 69], "frames_note": "held-out"},
        (200, 30, 30))
    for name in ("tiny-gan", "tiny-plain"):
        ws.model_dir(name).mkdir(parents=True)
        append(ws.model_dir(name), 200, "training", {"ssim_dst": 0.5, "ssim_src": 0.52})
    app = wizard(ws, tmp_path)

    async def script(pilot) -> None:
        shown = await open_compare(pilot, app)
        assert "tiny-gan" in shown and "tiny-plain" in shown
        assert "0.6100 *" in shown  # the better SSIM is marked
        assert "cuda (NVIDIA H100)" in shown and "it 200 ssim_dst 0.5000" in shown
        assert app.screen.query_one(Picture).path == folder / "contact_sheet.png"
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, CompareScreen), what="back")

    drive(app, script, size=(140, 40))


def test_train_screen_status_shows_held_out_quality() -> None:
    from tui.screens.train import stats_text

    text = stats_text(None, {"iter": 500, "loss_src": 0.5, "loss_dst": 0.4, "quality_ssim_dst": 0.61234,
                             "quality_ssim_src": 0.5})
    assert "held-out SSIM dst 0.612 src 0.500" in text


def test_train_screen_status_at_the_first_iteration_has_no_loss_yet() -> None:
    """A metrics event without a loss (the first iteration's, from an engine that sent it before its loss
    was kept; a log replayed from then): the iteration, not a crash (CI saw TypeError in stats_text)."""
    from tui.screens.train import stats_text

    text = stats_text(None, {"iter": 1, "loss_src": None, "loss_dst": None, "iters_per_s": 3.2, "eta_s": 12.1,
                             "target": 40})
    assert "iteration 1 / 40" in text and "loss" not in text


def test_train_screen_says_when_it_pretrains() -> None:
    from tui.job_board import JobRecord
    from tui.screens.train import stats_text

    job = JobRecord("job-1", "train", {"model": "pre", "pretrain_faces": "/data/faces/[all]"}, status="running")
    values = {"iter": 50, "target": 100, "loss_src": 0.5, "loss_dst": 0.4, "iters_per_s": 2.0, "eta_s": 25}
    assert "pretraining on /data/faces/\\[all]" in stats_text(job, values)  # the folder, escaped for markup
    long = JobRecord("job-3", "train", {"pretrain_faces": "/" + "x" * 60 + "/faces"}, status="running")
    assert "pretraining on …" + "x" * 33 + "/faces ·" in stats_text(long, values)
    assert "pretraining" not in stats_text(JobRecord("job-2", "train", {"model": "pre"}, status="running"), values)
