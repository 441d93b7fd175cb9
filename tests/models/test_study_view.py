"""The wizard's Compare view shows the study's table (output/study/report.json) and its contact sheet."""

from __future__ import annotations

import pytest

from engine.quality.compare import metric_table
from tests.helpers import make_workspace
from tests.quality.helpers import models, open_compare, with_report, wizard
from tests.tui.conftest import drive, wait_for
from tui.app import make_app
from tui.recent import RecentWorkspaces
from tui.widgets.picture import Picture


@pytest.mark.timeout(60)
def test_compare_view_shows_the_study(tmp_path) -> None:
    entries = models({"study-df-gan0": 0.41, "study-amp-gan0.1": 0.47})
    ws, folder = with_report(tmp_path, "study", "report.json", {
        "configurations": entries, "table": metric_table(entries), "budget": {"words": "300 iterations"},
        "command": "swapwizard study WS --models df,amp --gan 0,0.1 --budget 300"}, (30, 200, 30))
    app = wizard(ws, tmp_path)

    async def script(pilot) -> None:
        shown = await open_compare(pilot, app)
        assert "Model study (300 iterations each)" in shown
        assert "study-amp-gan0.1" in shown and "0.4700 *" in shown
        assert app.screen.query_one(Picture).path == folder / "contact_sheet.png"

    drive(app, script, size=(140, 40))


@pytest.mark.timeout(60)
def test_export_step_offers_another_clip(tmp_path) -> None:
    from tui.screens.file_picker import FilePickerScreen

    ws = make_workspace(tmp_path / "ws")
    ws.record_consent("tests")
    app = make_app(ws.root, connect=False, recent=RecentWorkspaces(tmp_path / "recent.json"))

    async def script(pilot) -> None:
        await wait_for(pilot, lambda: app.step_screen() is not None, what="a step screen")
        app.go_to("export")
        await pilot.pause(0.3)
        assert "Another clip" in app.export_screenshot().replace("&#160;", " ")
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, FilePickerScreen), what="the file picker")
        assert "Pick another clip" in app.export_screenshot().replace("&#160;", " ")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, FilePickerScreen), what="back")

    drive(app, script, size=(120, 36))
