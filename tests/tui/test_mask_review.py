"""The wizard's mask review (``m``): a real workspace segmented by a real engine, the wizard connected to it.
The faces come worst first with their mask drawn over them; ``a`` / ``r`` mark them (a painted label, a
rejected face), ``e`` exports the rejected faces to paint, ``t`` retrains the segmenter as the segment job
through the engine and the list redraws with the new masks; ``s`` shows the other side; escape goes back."""

from __future__ import annotations

import pytest
from textual.widgets import OptionList

from engine.segment import review, store
from tests.helpers import stop_engine
from tests.masks.conftest import segmented_workspace
from tests.tui.conftest import drive, wait_for
from tui.app import make_app
from tui.screens.mask_review import MaskReviewScreen
from tui.screens.step import StepScreen
from tui.widgets.picture import Picture


@pytest.fixture(scope="module")
def segmented(tmp_path_factory):
    ws = segmented_workspace(tmp_path_factory.mktemp("review") / "review ws")
    try:
        yield ws
    finally:
        stop_engine(ws)


@pytest.mark.timeout(600)
def test_the_mask_review_marks_faces_exports_the_rejected_and_retrains(segmented, recent):
    ws = segmented
    side_dir = ws.side_dir("dst")
    expected = review.faces(ws, "dst")
    app = make_app(ws.root, recent=recent)

    async def script(pilot) -> None:
        await wait_for(pilot, lambda: app.client is not None and isinstance(app.screen, StepScreen), timeout=120,
                       what="the wizard connected to the engine")
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MaskReviewScreen), what="the mask review")
        screen = app.screen
        options = screen.query_one(OptionList)
        await wait_for(pilot, lambda: options.option_count == len(expected))
        # worst first, the face shown with its mask over it
        assert [options.get_option_at_index(i).id for i in range(3)] == [f["name"] for f in expected[:3]]
        assert options.highlighted == 0
        assert screen.query_one(Picture).path == review.overlay_path(ws, "dst", expected[0]["name"])
        assert f"{len(expected)} faces" in str(screen.query_one("#review-title").render())

        await pilot.press("a")  # accept the first: its mask becomes a painted label; the next face is shown
        painted = side_dir / store.USER / f"{expected[0]['name']}.png"
        assert painted.read_bytes() == (side_dir / store.MASKS / f"{expected[0]['name']}.png").read_bytes()
        assert options.highlighted == 1
        await pilot.press("r")  # reject the second: the segmenter's mask is used nowhere
        assert store.mask_for(side_dir, expected[1]["file"]) is None
        assert {k: v["mark"] for k, v in store.marks(side_dir).items()} == {expected[0]["name"]: "accept",
                                                                           expected[1]["name"]: "reject"}
        assert "✗ reject" in str(options.get_option_at_index(1).prompt)
        assert options.highlighted == 2
        await pilot.press("up", "up", "u")  # clear the accept: its label goes
        assert not painted.exists() and expected[0]["name"] not in store.marks(side_dir)
        await pilot.press("a")
        assert painted.is_file() and options.highlighted == 1

        await pilot.press("e")  # the rejected faces, to paint
        folder = ws.root / "masks_rejected_dst"
        await wait_for(pilot, lambda: (job := app.board.latest("masks_export")) is not None
                       and job.status == "finished", timeout=120, what="the export")
        assert sorted(p.name for p in folder.glob("*.png")) == sorted(
            [f"{expected[1]['name']}.png", f"{expected[1]['name']}_mask.png"])

        before = store.index(side_dir)["segmenter"]
        await pilot.press("t")  # retrain with the marks: the segment job through the engine
        await wait_for(pilot, lambda: (job := app.board.latest("segment")) is not None and job.status == "finished",
                       timeout=400, what="the retraining")
        job = app.board.latest("segment")
        assert job.result["train"]["trained"] > 0 and job.result["train"]["painted"] == 1
        assert store.index(side_dir)["segmenter"] != before
        await wait_for(pilot, lambda: screen._stamp == screen._files_stamp() and
                       [f["doubt"] for f in screen.faces] == [f["doubt"] for f in review.faces(ws, "dst")],
                       what="the list redrawn with the new masks")
        assert "segment" in str(screen.query_one("#review-job").render())

        await pilot.press("s")  # the source side was never extracted here
        assert "src" in str(screen.query_one("#review-title").render()) and options.option_count == 0
        await pilot.press("s", "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, StepScreen), what="back to the step")

    drive(app, script, size=(120, 40))
