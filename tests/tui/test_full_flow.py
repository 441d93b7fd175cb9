"""The whole flow through the wizard's keys against a real engine: extract, check, train (tiny preset),
export; on the sample clips. Slow-ish (about a minute on 2 CPU cores), so one test covers it all."""

from __future__ import annotations

import json

import pytest

from tests.helpers import stop_engine
from tests.tui.conftest import drive, wait_for
from tui.app import make_app
from tui.widgets.loss_chart import LossChart


def finished(app, kind: str) -> bool:
    job = app.board.latest(kind)
    if job is not None and job.status == "failed":
        raise AssertionError(f"{kind} failed: {job.error} ({job.hint})")
    return job is not None and job.status == "finished"


@pytest.mark.timeout(240)
def test_from_sources_to_result_with_the_keyboard(workspace, recent):
    ws = workspace
    ws.record_consent()
    ws.update_settings("train", {"batch_size": 4})
    app = make_app(ws.root, recent=recent)
    seen: dict = {}

    async def script(pilot):
        await wait_for(pilot, lambda: app.client is not None, 60, "the engine")
        assert app.step_screen().STEP == "extract", "a workspace with sources lands on extraction"
        await pilot.press("r")
        await wait_for(pilot, lambda: finished(app, "extract"), 120, "extraction")
        await pilot.press("n")
        assert app.step_screen().STEP == "check"
        await pilot.press("r")
        await wait_for(pilot, lambda: finished(app, "check"), 60, "the check")
        await pilot.pause(0.3)
        seen["check"] = str(app.screen.query_one("#check-summary").render())
        await pilot.press("n", "r")  # train: a new model asks for its preset, then its target
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ChoiceScreen", 10, "the preset choice")
        await pilot.press("home", "enter")  # tiny is first
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "AskScreen", 10, "the target question")
        await pilot.press(*["backspace"] * 6, "6", "enter")
        await wait_for(pilot, lambda: app.board.latest("train") is not None and len(app.board.latest("train").metrics) >= 1,
                       120, "training metrics")
        await wait_for(pilot, lambda: finished(app, "train"), 150, "training to its target")
        await pilot.pause(0.5)
        seen["chart"] = len(app.screen.query_one(LossChart).history)
        await pilot.press("7", "r")
        await wait_for(pilot, lambda: finished(app, "merge"), 120, "the export")
        await pilot.pause(1.0)
        seen["export"] = str(app.screen.query_one("#export-result").render())

    try:
        drive(app, script)
    finally:
        stop_engine(ws)
    assert "src: 75 faces" in seen["check"]
    assert "synthetic media" in seen["export"], "the label read back from the file"
    assert seen["chart"] >= 1
    assert (ws.output_dir / "result.mp4").stat().st_size > 10_000
    assert "result.mp4" in seen["export"]


    # Reopened later (another terminal, another day): the chart shows the whole saved curve.
    rows = json.loads((ws.model_dir() / "loss_history.json").read_text())["points"]
    reopened = make_app(ws.root, recent=recent, connect=False)

    def chart_points() -> int:
        charts = reopened.screen.query(LossChart)
        return len(charts.first().history) if charts else -1

    async def look(pilot):
        reopened.go_to("train")
        await wait_for(pilot, lambda: chart_points() == len(rows), 10, "the saved loss curve")

    drive(reopened, look)
    assert len(rows) >= 1
