"""The Sources step: probing the sides, and a changed source sending its steps back to do."""

from __future__ import annotations

import pytest

from tests.helpers import SAMPLES, child_pids
from tests.tui.conftest import drive, wait_for
from tui.app import make_app
from tui.screens.choice import ChoiceScreen


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
        # The side was extracted: the wizard says what replacing it undoes and waits for a yes.
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen), 30, "the confirmation")
        assert "invalidates its extraction" in str(app.screen.question)
        await pilot.press("up", "enter")  # "Replace it" (the highlighted default is to keep)
        await wait_for(pilot, lambda: "640x360" in source_panel(), 30, "the new source's probe")

    drive(app, script)
    steps = ws.steps()
    assert steps["extract_src"]["status"] == "todo" and steps["check"]["status"] == "todo"
    assert steps["extract_dst"]["status"] == "done", "the other side's faces still stand"
    assert ws.source("src").read_bytes() == (SAMPLES / "hamilton.mp4").read_bytes()


@pytest.mark.timeout(60)
def test_replacing_extracted_footage_can_be_declined_and_nothing_changes(workspace, recent):
    ws = workspace
    ws.record_consent()
    ws.set_step("extract_src", "done")
    before = ws.source("src").read_bytes()
    app = make_app(ws.root, recent=recent, connect=False)

    async def script(pilot):
        app.go_to("sources")
        await pilot.pause()
        app.screen.copy_source("src", SAMPLES / "hamilton.mp4")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen), 30, "the confirmation")
        await pilot.press("enter")  # the default: keep the current footage
        await wait_for(pilot, lambda: not isinstance(app.screen, ChoiceScreen), 10, "the answer")

    drive(app, script)
    assert ws.source("src").read_bytes() == before
    assert ws.steps()["extract_src"]["status"] == "done"


@pytest.mark.timeout(60)
def test_an_unreadable_file_is_refused_and_the_footage_kept(workspace, recent, tmp_path):
    ws = workspace
    ws.record_consent()
    before = ws.source("dst").read_bytes()
    garbage = tmp_path / "garbage.mp4"
    garbage.write_text("not a video")
    app = make_app(ws.root, recent=recent, connect=False)
    errors: list[str] = []
    app.notify_error = lambda message, hint="", **_: errors.append(message)  # record what the user is told

    async def script(pilot):
        app.go_to("sources")
        await pilot.pause()
        app.screen.copy_source("dst", garbage)
        await wait_for(pilot, lambda: bool(errors), 30, "the refusal")

    drive(app, script)
    assert "not a readable video" in errors[0] or "cannot" in errors[0].lower(), errors
    assert ws.source("dst").read_bytes() == before


@pytest.mark.timeout(60)
def test_a_probe_cancelled_midway_leaves_no_process_behind():
    """The Sources screen closed (or the app quit) while a probe runs: the probe is killed and reaped."""
    import asyncio
    import gc
    import os
    import warnings

    from tui import probe

    async def cancel_midway() -> set[int]:
        before = child_pids(os.getpid())
        task = asyncio.create_task(probe.probe(SAMPLES / "dst.mp4"))
        for _ in range(200):  # until the probe's process is there
            await asyncio.sleep(0.01)
            if child_pids(os.getpid()) - before:
                break
        started = child_pids(os.getpid()) - before
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return started

    probe._cache.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = asyncio.run(cancel_midway())
        gc.collect()
    assert started, "the probe's process started"
    assert not (started & child_pids(os.getpid())), "the probe's process is gone (killed and reaped)"
    assert not [w for w in caught if "loop is closed" in str(w.message).lower()]
