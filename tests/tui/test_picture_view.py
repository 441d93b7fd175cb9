"""``z`` opens the screen's pictures full size (from their full-resolution files), ``←``/``→`` move
between them, ``w`` shows and copies a picture's path; the Train screen's ``l`` changes the chart's range."""

from __future__ import annotations

from engine import protocol as p
from tests.helpers import make_workspace
from tests.tui.conftest import drive, wait_for
from tests.tui.test_terminal_images import gradient_faces
from tui.app import make_app
from tui.screens.picture_view import PictureView
from tui.widgets.loss_chart import LossChart
from tui.widgets.picture import Picture


def test_z_opens_every_picture_of_the_screen_full_size_and_w_copies_a_path(tmp_path, recent):
    ws = make_workspace(tmp_path / "ws")
    ws.record_consent("tester")
    gradient_faces(ws.aligned_dir("src"), count=3)
    app = make_app(ws.root, connect=False, recent=recent)
    copied: list[str] = []
    app.copy_to_clipboard = copied.append  # what Textual would send as OSC 52

    async def script(pilot) -> None:
        await wait_for(pilot, lambda: app.live_step_screen() is not None and app.live_step_screen().STEP == "extract")
        app.step_screen().show_job(None)
        await pilot.pause()
        await pilot.press("z")
        await wait_for(pilot, lambda: isinstance(app.screen, PictureView), what="the full-size view")
        view = app.screen
        assert [path.name for _, path in view.pictures] == ["000000_0.jpg", "000001_0.jpg", "000002_0.jpg"]
        big = view.query_one(Picture)
        assert big.path == ws.aligned_dir("src") / "000000_0.jpg" and big.size.width >= 70
        await pilot.press("right")
        assert view.query_one(Picture).path.name == "000001_0.jpg"
        await pilot.press("w")
        assert copied == [str(ws.aligned_dir("src") / "000001_0.jpg")]
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, PictureView), what="back")
        await pilot.press("w")  # on the step screen: every picture's path
        assert copied[-1].count(".jpg") == 3

    drive(app, script, size=(100, 30))


def test_l_shows_the_last_iterations_of_a_long_run(tmp_path, recent):
    ws = make_workspace(tmp_path / "ws")
    ws.record_consent("tester")
    app = make_app(ws.root, connect=False, recent=recent)
    events = [p.make_event("job_queued", 1, job_id="j", kind="train", params={}),
              p.make_event("job_started", 2, job_id="j", kind="train", params={}, pid=1),
              *(p.make_event("metrics", 3 + i, job_id="j", values={"iter": 100 * (i + 1), "loss_src": 1.0 / (i + 1),
                                                                   "loss_dst": 1.0 / (i + 1), "target": 100_000})
                for i in range(50))]

    async def script(pilot) -> None:
        for event in events:
            app.board.apply(event)
        app.go_to("train")
        await wait_for(pilot, lambda: app.live_step_screen() is not None and app.live_step_screen().STEP == "train")
        await pilot.pause()
        app.step_screen().refresh_from_board()
        await pilot.pause()
        chart = app.screen.query_one(LossChart)
        assert chart.shown_range() == (100.0, 5000.0)  # the data, not the 100 000 target
        await pilot.press("l")
        assert chart.window == 1000 and chart.shown_range() == (4000.0, 5000.0)  # 10 000 is the whole run here
        await pilot.press("l")
        assert chart.window is None

    drive(app, script, size=(100, 30))


def test_z_on_the_check_screen_opens_the_checks_contact_sheet(tmp_path, recent):
    ws = make_workspace(tmp_path / "ws")
    ws.record_consent("tester")
    gradient_faces(ws.root / "check", count=2)
    (ws.root / "check" / "000000_0.jpg").rename(ws.root / "check" / "contact_sheet.png")
    (ws.root / "check" / "000001_0.jpg").rename(ws.root / "check" / "alignment_dst.png")
    app = make_app(ws.root, connect=False, recent=recent)

    async def script(pilot) -> None:
        await wait_for(pilot, lambda: app.live_step_screen() is not None)
        app.go_to("check")
        await wait_for(pilot, lambda: app.live_step_screen() is not None and app.live_step_screen().STEP == "check")
        await pilot.press("z")
        await wait_for(pilot, lambda: isinstance(app.screen, PictureView), what="the full-size view")
        assert app.screen.pictures == [("data check contact sheet (src, then dst)", ws.root / "check" / "contact_sheet.png"),
                                       ("doubtful alignments of dst, surest first",
                                        ws.root / "check" / "alignment_dst.png")]

    drive(app, script, size=(100, 30))
