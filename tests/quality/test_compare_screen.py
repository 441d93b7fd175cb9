"""The wizard's Compare view draws the comparison a compare job wrote: table, marks, contact sheet."""

from __future__ import annotations

import pytest

from engine.atomic import atomic_write_json
from engine.quality.compare import metric_table
from engine.quality.history import append
from tests.helpers import make_workspace
from tests.tui.conftest import drive, wait_for
from tui.app import make_app
from tui.recent import RecentWorkspaces
from tui.screens.compare import CompareScreen
from tui.widgets.picture import Picture


def models(names_and_ssim: dict[str, float]) -> list[dict]:
    return [{"name": name, "iteration": 300, "metrics": {"ssim_dst": ssim, "pose_error": 0.02, "sharpness": 0.8},
             "cost": {"iterations": 300, "train_seconds": 95.0, "train_seconds_estimated": False,
                      "device": "cuda (NVIDIA H100)", "gan_power": 0.1 if "gan" in name else 0.0}}
            for name, ssim in names_and_ssim.items()]


@pytest.mark.timeout(60)
def test_compare_view_shows_the_table_and_the_contact_sheet(tmp_path) -> None:
    from PIL import Image

    ws = make_workspace(tmp_path / "ws")
    ws.record_consent("tests")
    entries = models({"tiny-gan": 0.61, "tiny-plain": 0.58})
    folder = ws.root / "output" / "compare"
    folder.mkdir(parents=True)
    Image.new("RGB", (96, 64), (200, 30, 30)).save(folder / "contact_sheet.png")
    atomic_write_json(folder / "compare.json", {
        "models": entries, "table": metric_table(entries), "frames": [67, 68, 69], "frames_note": "held-out",
        "outputs": {"contact_sheet": "output/compare/contact_sheet.png"}})
    for name in ("tiny-gan", "tiny-plain"):
        ws.model_dir(name).mkdir(parents=True)
        append(ws.model_dir(name), 200, "training", {"ssim_dst": 0.5, "ssim_src": 0.52})
    app = make_app(ws.root, connect=False, recent=RecentWorkspaces(tmp_path / "recent.json"))

    async def script(pilot) -> None:
        await wait_for(pilot, lambda: app.step_screen() is not None, what="a step screen")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), what="the compare view")
        await pilot.pause(0.2)
        shown = app.export_screenshot().replace("&#160;", " ")
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
