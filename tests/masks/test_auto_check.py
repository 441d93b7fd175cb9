"""``check`` makes, records and says the ``[merge] mask = auto`` decision (issue 26), and the wizard's Check,
Merge and Export steps say it: on the sample destination with the moving microphone over the mouth (real
ffmpeg, real extraction, ``swapwizard check`` through a real engine) and on the clean sample.
"""

from __future__ import annotations

import json

import pytest
from rich.text import Text

from engine import protocol as p
from engine.atomic import read_json
from engine.faces.extract import ExtractSettings, extract_side
from engine.jobs.check import occlusions
from engine.report import NullReporter
from engine.segment import store
from engine.segment.auto import decide
from engine.segment.decision import DECISION, recorded
from tests.helpers import SAMPLES, cli, make_workspace, stop_engine
from tests.tui.conftest import drive, wait_for
from tui.app import make_app
from tui.recent import RecentWorkspaces
from tui.screens.merge import mask_decision

pytestmark = pytest.mark.skipif(store.generic_dir() is None, reason="no generic segmenter in engine/assets")


def extracted(root, dst=SAMPLES / "dst.mp4"):
    ws = make_workspace(root, src=None, dst=dst)
    ws.record_consent("tests")
    extract_side(ws, "dst", ExtractSettings(size=128, crop_format="png"), NullReporter())
    return ws


@pytest.fixture(scope="module")
def checked(tmp_path_factory, occluded_video):
    """The occluded destination extracted, then ``swapwizard check`` run on it (its stdout alongside)."""
    ws = extracted(tmp_path_factory.mktemp("auto check") / "ws", occluded_video)
    try:
        done = cli("check", str(ws.root), timeout=300)
    finally:
        stop_engine(ws)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return ws, done.stdout


def shown(widget) -> str:
    content = widget.content
    return content.plain if isinstance(content, Text) else Text.from_markup(str(content)).plain


def test_check_says_and_records_the_occlusion_decision_that_the_merge_then_uses(checked) -> None:
    ws, stdout = checked
    line = next(line for line in stdout.splitlines() if line.startswith("Occlusions: "))
    faces = int(line.split(" of ")[1].split()[0])
    occluded = int(line.removeprefix("Occlusions: ").split()[0])
    assert faces >= 70 and 20 <= occluded <= 40, line  # the microphone is over the mouth in 30 of the 75 frames
    assert "the merge will use hull*segment and fine-tune the segmenter first (about " in line
    report = json.loads((ws.root / "check" / "report.json").read_text())
    assert report["occlusions"]["line"] == line and report["occlusions"]["segment"] is True
    kept = read_json(store.segmenter_dir(ws) / DECISION)
    assert kept["segment"] and kept["occluded"] == occluded and kept["estimate_s"] > 0
    assert not (store.segmenter_dir(ws) / store.WEIGHTS).exists()  # the check trains nothing
    written = (store.segmenter_dir(ws) / DECISION).stat().st_mtime_ns
    said: list[str] = []
    assert decide(ws, said.append) == kept == recorded(ws)  # the merge reads it: no second scan
    assert said == [kept["why"]] and (store.segmenter_dir(ws) / DECISION).stat().st_mtime_ns == written


def test_the_wizards_check_merge_and_export_steps_say_the_decision(checked, tmp_path, monkeypatch) -> None:
    ws, stdout = checked
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # as tests/tui's config_home: not ~/.config
    recent = RecentWorkspaces(tmp_path / "config" / "swapwizard" / "recent.json")
    line = next(line for line in stdout.splitlines() if line.startswith("Occlusions: "))
    app = make_app(ws.root, connect=False, recent=recent)
    finished = [p.make_event("job_queued", 1, job_id="c", kind="check", params={}),
                p.make_event("job_started", 2, job_id="c", kind="check", params={}, pid=1),
                p.make_event("job_finished", 3, job_id="c", result={"report": "check/report.json"})]

    said: dict[str, str] = {}

    async def script(pilot) -> None:
        await wait_for(pilot, lambda: app.live_step_screen() is not None)
        for event in finished:
            app.board.apply(event)
        for step, box in (("check", "#check-summary"), ("merge", "#merge-mask"), ("export", "#export-mask")):
            app.go_to(step)
            await wait_for(pilot, lambda step=step: app.live_step_screen() is not None
                           and app.live_step_screen().STEP == step)
            app.step_screen().refresh_from_board()
            await pilot.pause()
            widget = app.screen.query_one(box)
            assert widget.region.height >= 1 and widget.region.bottom <= app.screen.size.height, (step, widget.region)
            said[step] = shown(widget)
        assert line in said["check"].replace("\n", " ") and said["export"] == line
        # Beside the merge settings, shorter; no masks yet: the preview is the hull's until the merge fine-tunes.
        occluded = line.removeprefix("Occlusions: ").split(" destination")[0]
        assert said["merge"].startswith(f"Mask auto: hull*segment, {occluded} faces have something in front; "
                                        "segmenter fine-tuned first (about "), said
        assert said["merge"].endswith(" The preview uses the hull until then."), said

    drive(app, script, size=(140, 40))


def test_the_clean_sample_says_no_occlusions_and_a_chosen_mask_is_said_as_chosen(tmp_path) -> None:
    ws = extracted(tmp_path / "clean ws")
    assert mask_decision(ws, "auto").plain.startswith("Mask auto: decided when the merge starts")
    ws.update_settings("merge", {"mask": "hull"})
    said = occlusions(ws)
    assert said == {"mask": "hull", "line": "Mask hull (as [merge] mask says): occlusions are not looked for."}
    assert recorded(ws) is None and mask_decision(ws, "hull").plain == ""
    ws.update_settings("merge", {"mask": "auto"})
    said = occlusions(ws)
    assert said["segment"] is False and said["estimate_s"] == 0.0, said
    assert said["line"].startswith("No occlusions found (") and said["line"].endswith(
        "destination faces looked at have something in front of them): the merge uses the landmark hull at no cost.")
    assert recorded(ws)["faces"] == said["faces"]
    assert mask_decision(ws, "auto", short=False).plain == said["line"]
    assert mask_decision(ws, "auto").plain.startswith("Mask auto: the hull at no cost (")
    # A damaged segmenter of the workspace's own: the check says so in its line instead of failing.
    (store.segmenter_dir(ws) / store.CONFIG).write_text("{}")
    (store.segmenter_dir(ws) / store.WEIGHTS).write_bytes(b"not tensors")
    (store.segmenter_dir(ws) / DECISION).unlink()
    said = occlusions(ws)
    assert said["line"].startswith("Occlusions not looked for: ") and "segmenter" in said["line"], said
