"""The wizard's target picker (Extract step, key t): people with thumbnails, or a photo path; the
choice goes to the real engine as an extract job that re-targets without extracting again."""

from __future__ import annotations

import pytest

from engine.faces.records import read_alignments, target_track_ids
from engine.jobs import get_kind
from engine.report import NullReporter
from engine.workspace import Workspace
from tests.helpers import SAMPLES, stop_engine
from tests.identity.conftest import person_of
from tests.tui.conftest import drive, wait_for
from tui.app import make_app
from tui.recent import RecentWorkspaces
from tui.screens.person_picker import PersonPickerScreen
from tui.widgets.picture import Picture


def target_people(ws: Workspace) -> set[str]:
    header, records = read_alignments(ws.alignments_path("dst"))
    return {person_of(r.frame) for r in records if r.track in target_track_ids(header)}


@pytest.mark.timeout(240)
def test_the_picker_lists_people_and_takes_a_photo(media, tmp_path) -> None:
    ws = Workspace.create(tmp_path / "ws", SAMPLES / "src.mp4", media["joined"])
    ws.record_consent("tests")
    job = get_kind("extract")
    job.module.run(ws, job.parse_params({"side": "dst", "reference": str(media["photo_a"])}), NullReporter())
    assert target_people(ws) == {"A"}
    header, _ = read_alignments(ws.alignments_path("dst"))
    other = 1 - header["target_person"]
    app = make_app(ws.root, recent=RecentWorkspaces(tmp_path / "recent.json"))

    async def script(pilot) -> None:
        await wait_for(pilot, lambda: app.client is not None, what="the engine connection")
        await pilot.press("3")
        await wait_for(pilot, lambda: app.step_screen() is not None and app.step_screen().STEP == "extract",
                       what="the extract step")
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, PersonPickerScreen), what="the picker")
        await pilot.pause(0.2)
        shown = app.export_screenshot().replace("&#160;", " ")
        assert "person 0: 65 faces" in shown or "person 1: 65 faces" in shown, shown
        assert "30 faces" in shown and "(target)" in shown
        thumb = app.screen.query_one(Picture).path
        assert thumb is not None and thumb.parent.name == "people"
        # Choose B from the list: the engine re-targets.
        await pilot.press("down" if other == 1 else "up")
        await pilot.press("enter")
        await wait_for(pilot, lambda: target_people(ws) == {"B"}, timeout=120, what="B targeted")
        # And back to A by a photo path.
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, PersonPickerScreen), what="the picker again")
        await pilot.press("slash")
        for key in str(media["photo_a"]):
            await pilot.press(key if key != "/" else "slash")
        await pilot.press("enter")
        await wait_for(pilot, lambda: target_people(ws) == {"A"}, timeout=120, what="A targeted by the photo")

    try:
        drive(app, script, size=(100, 30))
    finally:
        stop_engine(ws)
