"""Set-ups the Compare view's tests share (the compare job's view and the model study's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.atomic import atomic_write_json
from engine.workspace import Workspace
from tests.helpers import make_workspace
from tests.tui.conftest import wait_for
from tui.app import make_app
from tui.recent import RecentWorkspaces
from tui.screens.compare import CompareScreen


def models(names_and_ssim: dict[str, float]) -> list[dict]:
    return [{"name": name, "iteration": 300, "metrics": {"ssim_dst": ssim, "pose_error": 0.02, "sharpness": 0.8},
             "cost": {"iterations": 300, "train_seconds": 95.0, "train_seconds_estimated": False,
                      "device": "cuda (NVIDIA H100)", "gan_power": 0.1 if "gan" in name else 0.0}}
            for name, ssim in names_and_ssim.items()]


def with_report(tmp_path: Path, folder: str, report: str, data: dict[str, Any],
                colour: tuple[int, int, int]) -> tuple[Workspace, Path]:
    """A consented workspace whose ``output/<folder>`` holds ``report`` (``data``, its contact sheet named
    in ``outputs``) and a small contact sheet of one ``colour``; returns the workspace and that folder."""
    from PIL import Image

    ws = make_workspace(tmp_path / "ws")
    ws.record_consent("tests")
    out = ws.root / "output" / folder
    out.mkdir(parents=True)
    Image.new("RGB", (96, 64), colour).save(out / "contact_sheet.png")
    atomic_write_json(out / report, {**data, "outputs": {"contact_sheet": f"output/{folder}/contact_sheet.png"}})
    return ws, out


def wizard(ws: Workspace, tmp_path: Path) -> Any:
    return make_app(ws.root, connect=False, recent=RecentWorkspaces(tmp_path / "recent.json"))


async def open_compare(pilot: Any, app: Any) -> str:
    """Press ``c`` on the first step screen; the Compare view's text once it is drawn."""
    await wait_for(pilot, lambda: app.step_screen() is not None, what="a step screen")
    await pilot.press("c")
    await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), what="the compare view")
    await pilot.pause(0.2)
    return app.export_screenshot().replace("&#160;", " ")
