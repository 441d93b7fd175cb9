"""The Sources step: probing the sides, and a changed source sending its steps back to do."""

from __future__ import annotations

import pytest

from tests.helpers import SAMPLES
from tests.tui.conftest import drive, wait_for
from tui.app import make_app


@pytest.mark.timeout(60)
def test_a_new_source_is_copied_probed_and_its_finished_steps_reopened(workspace, recent):
    ws = workspace
    ws.record_consent()
    for step in ("extract_src", "extract_dst", "check"):
        ws.set_step(step, "done")
    app = make_app(ws.root, recent=recent, connect=False)

    def source_panel() -> str:
        panels = app.screen.query("#side-src")
        return str(panels.first().render()) if panels else ""

    async def script(pilot):
        app.go_to("sources")
        await pilot.pause()
        await wait_for(pilot, lambda: "fps" in source_panel(), 30, "the probe")
        app.screen.copy_source("src", SAMPLES / "hamilton.mp4")
        await wait_for(pilot, lambda: "640x360" in source_panel(), 30, "the new source's probe")

    drive(app, script)
    steps = ws.steps()
    assert steps["extract_src"]["status"] == "todo" and steps["check"]["status"] == "todo"
    assert steps["extract_dst"]["status"] == "done", "the other side's faces still stand"
    assert ws.source("src").read_bytes() == (SAMPLES / "hamilton.mp4").read_bytes()
