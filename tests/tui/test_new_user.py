"""The wizard as a new user meets it (issue 31) and user text with brackets (issue 24, item 1), through the
real app (Textual Pilot): help, resume landing, the merge form, the default preset, figures while training."""

from __future__ import annotations

import shutil

import pytest

from engine import protocol as p
from engine.atomic import atomic_write_json
from engine.jobs import public_declarations
from engine.workspace import Workspace
from tests.helpers import SAMPLES, stop_engine
from tests.tui.conftest import drive, wait_for
from tui.app import make_app
from tui.messages import message_for
from tui.screens.compare import CompareScreen
from tui.steps import STEP_NAMES


def made_ws(tmp_path) -> Workspace:
    """A workspace of the two sample clips, consent recorded."""
    ws = Workspace.create(tmp_path / "ws", src=SAMPLES / "src.mp4", dst=SAMPLES / "dst.mp4")
    ws.record_consent()
    return ws


def failed(kind: str, job_id: str, seq: int, error: str) -> list[p.Event]:
    return [p.make_event("job_queued", seq, job_id=job_id, kind=kind, params={}),
            p.make_event("job_started", seq + 1, job_id=job_id, kind=kind, params={}, pid=1),
            p.make_event("job_failed", seq + 2, job_id=job_id, error=error, hint="try [b]again[/b]")]


@pytest.mark.timeout(120)
def test_brackets_in_paths_names_and_errors_never_crash_and_a_bad_recent_entry_is_skipped(tmp_path, recent):
    """A workspace at ``a[/x]ws`` with a source named ``clip[b].mp4`` and jobs failing with ``[/x]`` in their
    error: every step, the compare view and the picture path open; the recent list (with the bracketed path
    and entries that cannot be used) opens the workspace, and says it skipped the bad ones."""
    clip = tmp_path / "clips[" / "x]" / "clip[b].mp4"  # the slash of "[/x]" is a folder's
    clip.parent.mkdir(parents=True)
    shutil.copy(SAMPLES / "src.mp4", clip)
    ws = Workspace.create(tmp_path / "jobs" / "a[/x]ws", src=clip, dst=SAMPLES / "dst.mp4")
    ws.record_consent()
    atomic_write_json(recent.path, [str(ws.root), 123, "nul\x00byte", ["a list"]])
    app = make_app(None, connect=False, recent=recent, jobs=public_declarations())
    seen: dict = {}

    async def script(pilot):
        await pilot.pause(0.2)
        notices = [n.message for n in app._notifications]
        seen["skipped"] = [n for n in notices if "Skipped 2 unusable" in n]
        await pilot.press("enter")  # the bracketed recent entry
        await wait_for(pilot, lambda: app.ws is not None, 10, "the workspace to open")
        for event in [*failed("train", "job-1", 1, "no model named '[/x]' (it holds [red]"),
                      *failed("compare", "job-2", 4, "cannot compare [/x] and [b]")]:
            app.board.apply(event)
        for step in STEP_NAMES:
            app.go_to(step)
            await pilot.pause(0.2)
            app.step_screen().refresh_from_board()
            await pilot.pause(0.1)
        # A job's warning quoting user text pops up as a notice (markup off).
        app.post_message(message_for(p.make_event("log", 10, job_id="job-1", level="warning",
                                                  message="the model [/x] in a[/x]ws is odd")))
        await pilot.pause(0.2)
        app.go_to("train")
        await pilot.pause(0.2)
        app.step_screen().refresh_from_board()
        seen["train"] = str(app.screen.query_one("#train-stats").render())
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), 10, "the compare view")
        await pilot.pause(0.3)
        seen["compare"] = str(app.screen.query_one("#compare-status").render())
        seen["notices"] = [n.message for n in app._notifications]

    drive(app, script, size=(120, 36))
    assert seen["skipped"], "the bad recent entries are skipped with a notice"
    assert any("the model [/x] in a[/x]ws is odd" in n for n in seen["notices"])
    assert "no model named '[/x]' (it holds [red]" in seen["train"]
    assert "cannot compare [/x] and [b]" in seen["compare"]


@pytest.mark.timeout(120)
def test_resume_lands_on_the_first_unfinished_step_before_and_after_the_engine_answers(tmp_path, recent):
    """The idle demo of the issue: extracted, checked, a merge exported, the training not done (stopped).
    Opened by Enter on the recent entry, the wizard lands on Train, and stays there once the engine's
    status arrives (it landed on Extract: its steps were read before the engine answered)."""
    ws = made_ws(tmp_path)
    for step in ("extract_src", "extract_dst", "check", "merge"):
        ws.set_step(step, "done")
    ws.set_step("train", "failed", error="stopped")
    atomic_write_json(recent.path, [str(ws.root)])
    app = make_app(None, recent=recent)
    seen: dict = {}

    async def script(pilot):
        await pilot.pause(0.2)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.step_screen() is not None and app.step_screen().STEP != "workspace", 10,
                       "the landing")
        seen["before"] = app.step_screen().STEP
        await wait_for(pilot, lambda: app.client is not None, 60, "the engine")
        await pilot.pause(0.5)
        seen["after"] = app.step_screen().STEP

    try:
        drive(app, script)
    finally:
        stop_engine(ws)
    assert seen == {"before": "train", "after": "train"}


@pytest.mark.timeout(120)
def test_help_key_on_every_step_lists_its_keys_and_what_comes_next_and_the_footer_shows_the_hidden_ones(tmp_path, recent):
    from textual.widgets import Footer

    from tui.screens.help import HelpScreen, bindings_of, key_names

    ws = made_ws(tmp_path)
    app = make_app(ws.root, connect=False, recent=recent)
    seen: dict = {}

    async def script(pilot):
        for number, step in enumerate(STEP_NAMES, start=1):
            app.go_to(step)
            await pilot.pause(0.3)
            screen = app.screen

            def footer_text(screen=screen) -> str:
                return " ".join(str(key.render()) for key in screen.query_one(Footer).children)

            await wait_for(pilot, lambda: "Help" in footer_text(), 10, "the footer")
            footer = footer_text()
            await pilot.press("f1" if number % 2 else "question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), 5, f"the help of {step}")
            text = str(app.screen.query_one("#help-text").render())
            seen[step] = (type(screen), text, footer)
            await pilot.press("escape")
            await wait_for(pilot, lambda screen=screen: app.screen is screen, 5, "the help to close")

    drive(app, script, size=(120, 36))
    for step, (cls, text, footer) in seen.items():
        assert "What comes next" in text and cls.NEXT_TEXT.split(":")[0] in text, step
        assert "1 … 7" in text and "go to that step" in text
        for binding in bindings_of(cls):
            if not binding.action.startswith("go("):
                assert key_names(binding.key) in text, (step, binding.key)
        for shown in ("? Help", "c Compare", "m Masks", "z Full size", "w Path"):
            if step != "merge" or shown != "c Compare":  # c changes the colour there (the help says so)
                assert shown in footer, (step, shown, footer)


def test_the_keys_page_is_the_wizards_own_key_tables():
    from pathlib import Path

    from tui.app import SwapWizardApp
    from tui.screens.help import keys_markdown, wizard_screens

    page = (Path(__file__).parents[2] / "docs" / "wizard-keys.md").read_text()
    assert keys_markdown(wizard_screens(), list(SwapWizardApp.BINDINGS)) in page
    assert "`? / f1`" in page


@pytest.mark.timeout(120)
def test_what_the_merge_form_shows_is_what_export_runs_with(tmp_path, recent):
    """erode, colour and blend changed with their keys and never 'saved': the workspace's [merge] settings,
    which the export job reads, are the form's (they stayed at the old ones, and export ran with those)."""
    from engine.merge.settings import from_section
    from tui.widgets.settings_form import SettingsForm

    ws = made_ws(tmp_path)
    before = from_section(ws.section("merge"))
    app = make_app(ws.root, connect=False, recent=recent)
    seen: dict = {}

    async def script(pilot):
        app.go_to("merge")
        await pilot.pause(0.5)
        await pilot.press("e", "e", "c", "v")  # erode +2 +2, the next colour, the next blend
        await pilot.pause(0.3)
        seen["form"] = app.screen.query_one(SettingsForm).settings
        seen["status"] = str(app.screen.query_one("#merge-status").render())
        seen["shown"] = str(app.screen.query_one(SettingsForm).render())

    drive(app, script, size=(120, 36))
    form = seen["form"]
    assert (form.erode, form.colour, form.blend) != (before.erode, before.colour, before.blend)
    saved = from_section(Workspace.open(ws.root).section("merge"))
    assert (saved.erode, saved.colour, saved.blend) == (form.erode, form.colour, form.blend)
    assert saved == form
    assert "Export uses these" in seen["status"]
    # Item 9: a flag reads on / off, an automatic 0 reads "auto" (they read False and 0).
    lines = {line[2:16].strip(): line[16:30].strip() for line in seen["shown"].splitlines()}
    assert lines["Visible mark"] == "off" and lines["Workers"] == "auto", lines


@pytest.mark.timeout(120)
@pytest.mark.parametrize("gpu", [False, True])
def test_the_new_model_preset_is_chosen_from_the_hardware_found_and_says_why(tmp_path, recent, monkeypatch, gpu):
    """Without a GPU the new-model list highlights tiny, with a GPU quick, each with its reason; the target
    offered next is the highlighted preset's own (engine/train/options.py). It highlighted quick ("an hour on
    one GPU") on a machine without one. The GPU case puts an nvidia-smi that lists one first on PATH."""
    from engine.train.options import PRESETS
    from tui.screens.ask import AskScreen
    from tui.screens.choice import ChoiceScreen

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if gpu:
        fake = bin_dir / "nvidia-smi"
        fake.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)'\n")
        fake.chmod(0o755)
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    ws = made_ws(tmp_path)
    app = make_app(ws.root, connect=False, recent=recent)
    seen: dict = {}

    async def script(pilot):
        app.go_to("train")
        await pilot.pause(0.3)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen), 10, "the preset list")
        seen["question"] = str(app.screen.query_one(".dialog-title").render())
        options = app.screen.query_one("#choices")
        seen["highlighted"] = options.get_option_at_index(options.highlighted).id
        await pilot.press("enter")  # this preset
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen) and "stop" in str(
            app.screen.query_one(".dialog-title").render()), 10, "when to stop")
        await pilot.press("down", "enter")  # at an iteration I choose
        await wait_for(pilot, lambda: isinstance(app.screen, AskScreen), 10, "the target")
        seen["target"] = app.screen.query_one("#ask-input").value

    drive(app, script, size=(120, 36))
    expected = "quick" if gpu else "tiny"
    assert seen["highlighted"] == expected
    assert ("a GPU was found (NVIDIA H100 80GB HBM3)" if gpu else "no GPU was found") in seen["question"]
    assert seen["target"] == str(PRESETS[expected].iters)


@pytest.mark.timeout(120)
def test_training_figures_carry_the_iteration_they_were_measured_at_and_nothing_is_judged_too_early(tmp_path, recent):
    """The measurement of iteration 0 rides on every metrics event up to 76: the screen labels it @0 (it
    said "SSIM dst 0.120 @76" and drew it again at every event), does not call an untrained model's one
    recognised swap "like src 100%", and ``l`` early in a run says why the chart does not change."""
    ws = made_ws(tmp_path)
    atomic_write_json(ws.model_dir() / "quality_history.json", {"points": [
        {"iteration": 0, "source": "training", "ssim_dst": 0.12, "ssim_src": 0.11,
         "id_closer_src": 1.0, "id_src": 0.5, "id_dst": 0.9, "id_faces": 1, "expr_mouth_ratio": 1.1}]})
    events = [p.make_event("job_queued", 1, job_id="job-1", kind="train", params={}),
              p.make_event("job_started", 2, job_id="job-1", kind="train", params={}, pid=1)]
    for i in range(1, 20):
        events.append(p.make_event("metrics", i + 2, job_id="job-1", values={
            "iter": i * 4, "loss_src": 0.5, "loss_dst": 0.4, "iters_per_s": 2.0, "eta_s": 60.0, "target": 300,
            "quality_ssim_dst": 0.12, "quality_ssim_src": 0.11, "quality_id_closer_src": 1.0,
            "quality_id_src": 0.5, "quality_id_dst": 0.9, "quality_id_faces": 1, "quality_expr_mouth_ratio": 1.1}))
    app = make_app(ws.root, connect=False, recent=recent)
    seen: dict = {}

    async def script(pilot):
        for event in events:
            app.board.apply(event)
        app.go_to("train")
        await pilot.pause(0.3)
        app.step_screen().refresh_from_board()
        await wait_for(pilot, lambda: "@" in str(app.screen.query_one("#train-stats").render()), 10, "the figures")
        await pilot.pause(0.3)
        seen["stats"] = str(app.screen.query_one("#train-stats").render())
        seen["line"] = str(app.screen.query_one("#train-quality").render())
        seen["expression"] = str(app.screen.query_one("#train-expression").render())
        await pilot.press("l")
        await pilot.pause(0.2)
        seen["notices"] = [n.message for n in app._notifications]

    drive(app, script, size=(120, 36))
    assert "iteration 76" in seen["stats"]
    assert "held-out SSIM dst 0.120 src 0.110 @0" in seen["stats"] and "@76" not in seen["stats"]
    assert "like src 100%" not in seen["stats"] and "like src: not judged yet @0" in seen["stats"]
    assert "dst 0.120 @0" in seen["line"] and "@76" not in seen["line"]
    assert seen["expression"].startswith("expression @0:"), seen["expression"]
    assert any("once the run is longer" in n for n in seen["notices"]), seen["notices"]


@pytest.mark.timeout(120)
def test_item_9_papercuts_of_the_wizard(tmp_path, recent):
    """A merge preview does not mark 6 Merge running; the Compare view has the step bar and no hard line
    break mid-phrase; the full-size view's header shows the picture's size and its whole path at 80 columns."""
    from PIL import Image

    from tui.screens.picture_view import PictureView
    from tui.widgets.step_bar import StepBar

    ws = made_ws(tmp_path)
    picture = tmp_path / "preview.png"
    Image.new("RGB", (448, 256), (40, 90, 160)).save(picture)
    app = make_app(ws.root, connect=False, recent=recent)
    seen: dict = {}

    async def script(pilot):
        for event in (p.make_event("job_queued", 1, job_id="job-1", kind="merge_preview", params={}),
                      p.make_event("job_started", 2, job_id="job-1", kind="merge_preview", params={}, pid=1)):
            app.board.apply(event)
        seen["merge"] = app.step_statuses()["merge"]
        app.go_to("export")
        await pilot.pause(0.3)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), 10, "the compare view")
        await pilot.pause(0.3)
        seen["bar"] = app.screen.query_one(StepBar).current
        seen["table"] = str(app.screen.query_one("#compare-table").render())
        await pilot.press("escape")
        await pilot.pause(0.2)
        app.push_screen(PictureView([("training preview (src, src→src, dst, dst→dst, dst→src, masks)", picture),
                                     ("merge: after", picture)]))
        await pilot.pause(0.3)
        seen["title"] = app.screen.query_one("#picture-view-title").render_lines(
            __import__("textual.geometry", fromlist=["Region"]).Region(0, 0, 80, 2))

    drive(app, script, size=(80, 24))
    assert seen["merge"] != "running"
    assert seen["bar"] == "export"
    assert "press r,\n" not in seen["table"]
    first, second = ("".join(segment.text for segment in line) for line in seen["title"])
    assert "448x256" in first, first
    assert second.strip() == str(picture), "the path has a line of its own (it was cut after '448x256 ·')"
