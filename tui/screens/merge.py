"""Step 6: tune the merge on one frame; every change renders a new preview in the engine.

Single keys adjust a setting (e/d erode, r/f blur, u/j face scale, c colour, x mask ... as in
DeepFaceLab's interactive merger); ``,`` and ``.`` move through the frames. Each change submits a
``merge_preview`` job for the shown frame; changes made while one renders are folded into the next,
so the preview always catches up with the newest settings and never queues a backlog.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from engine import protocol as p
from engine import settings as declared
from engine.errors import UserError
from engine.merge.settings import MergeSettings, from_section, save
from engine.segment import store
from engine.segment.decision import recorded, sentence
from tui.job_board import JobRecord
from tui.probe import probe
from tui.screens.new_model import model_exists
from tui.screens.step import StepScreen
from tui.widgets.picture import Picture
from tui.widgets.settings_form import SettingsForm

#: The knobs that change a preview frame (group "face"; the encoder's do not); merge_preview takes these.
PREVIEW_KNOBS = declared.keys("merge", group="face")


SAVED = "[dim]saved as you go: Export uses these[/dim]"


def mask_decision(ws: Any, mask: str, short: bool = True) -> Text:
    """With ``mask = auto``: what engine.segment.auto decided and why (engine.segment.decision:
    WS/segmenter/auto.json, written by the data check or the merge), or that the merge decides when it starts;
    empty for a mask the user chose. ``short``: the Merge step's line under the pictures, which also says that
    the preview uses the hull until the segmenter's masks exist; else the check's full sentence (Export)."""
    if ws is None or mask != "auto":
        return Text("")
    made = recorded(ws)
    said = sentence(ws, made, short=short)
    if short and made is not None and made["segment"] and not store.has_masks(ws, "dst"):
        said += " The preview uses the hull until then."
    return Text(said, style="dim" if made is None else "")


class MergeScreen(StepScreen):
    STEP = "merge"
    TITLE_TEXT = "Merge settings"
    ABOUT_TEXT = ("Tunes how the trained face is pasted into the destination, on one frame at a time: every "
                  "change renders a new preview and is saved to workspace.toml, so Export uses what you see.")
    NEXT_TEXT = "7 Export: merge every frame with these settings and write output/result.mp4 with the sound."

    BINDINGS = [
        Binding("up", "move(-1)", "Setting", show=False, id="merge-up", tooltip="pick a setting"),
        Binding("down", "move(1)", "Setting", show=False, id="merge-down", tooltip="pick a setting"),
        Binding("left", "change(-1)", "Less", show=False, id="merge-less", tooltip="change it (less / more)"),
        Binding("right", "change(1)", "More", show=False, id="merge-more", tooltip="change it (less / more)"),
        Binding("comma", "frame(-1)", "Frame -", id="merge-frame-prev", tooltip="previous / next frame"),
        Binding("full_stop", "frame(1)", "Frame +", id="merge-frame-next", tooltip="previous / next frame"),
        # One key lowers and one raises each knob declared with keys (engine/settings.py).
        *(Binding(key, f"knob('{s.key}', {direction})", s.key, show=False, id=f"merge-{s.key}-{key}",
                  tooltip=f"{s.label}: " + ("previous / next" if s.choices else "less / more"))
          for s in declared.wizard_form("merge") if s.keys
          for key, direction in zip(s.keys, (-1, 1))),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.frame = 0
        #: Frames in the destination (None until probed).
        self.frames: int | None = None
        self.pending = False
        self.status_extra = ""
        self.preview_job: str | None = None
        #: Whether the form's values are the saved ones (what Export uses).
        self.saved_text = SAVED

    def body(self) -> ComposeResult:
        with Horizontal(id="merge-main"):
            with Vertical(id="merge-side"):
                yield SettingsForm(id="merge-form")
                yield Static(id="merge-status")
            with Vertical(id="merge-right"):
                with Horizontal(id="merge-pictures"):  # before / after of the same frame
                    yield Picture(caption="the frame", id="merge-before", classes="panel",
                                  title="before (destination frame)")
                    yield Picture(caption="press . to render a preview", id="merge-preview", classes="panel",
                                  title="after (merged with these settings)")
                yield Static(id="merge-mask")  # [merge] mask = auto: what it decided and why

    def on_mount(self) -> None:
        super().on_mount()
        ws = self.wizard.ws
        try:
            self.query_one(SettingsForm).settings = from_section(ws.section("merge")) if ws else MergeSettings()
        except UserError as exc:
            self.wizard.notify_error(exc.message, exc.hint)
        self.query_one(SettingsForm).focus()
        self.show_status()
        self.show_mask()
        self.count_frames()
        # Show the first frame at once when there is a model and the engine is free to render it.
        if ws is not None and model_exists(ws) and self.wizard.client is not None and not self.wizard.board.active():
            self.render_preview()

    def show_status(self, extra: str | None = None) -> None:
        """The frame, the keys, and ``extra`` (the last preview's outcome; None keeps the shown one)."""
        if extra is not None:
            self.status_extra = extra
        frames = f" of {self.frames}" if self.frames else ""
        self.query_one("#merge-status", Static).update(
            f"frame {self.frame}{frames}  (, . to move)\n↑↓ pick  ←→ change  ? all keys\n"
            f"{self.saved_text}\n{self.status_extra}")

    def show_mask(self) -> None:
        """The mask decision's line (auto: decided by the check or the merge; read again after each change)."""
        self.query_one("#merge-mask", Static).update(
            mask_decision(self.wizard.ws, self.query_one(SettingsForm).settings.mask))

    def show_job(self, job: JobRecord | None) -> None:
        if job is None or job.job_id != self.preview_job:
            return
        if job.status == "finished":
            path, small, before = (job.result.get(key) for key in ("path", "small", "before"))
            if path and self.wizard.ws is not None:
                root = self.wizard.ws.root
                self.query_one("#merge-preview", Picture).show(root / path, root / small if small else None)
                if before:
                    self.query_one("#merge-before", Picture).show(Path(root / before))
            faces = job.result.get("faces")
            self.show_status(f"{faces} face(s) · merged in {job.result.get('merge_ms', '?')} ms"
                             if faces is not None else "")
        elif job.status == "failed":
            self.show_status(f"[red]{escape(job.error)}[/red]")
        if not job.active and self.pending:
            self.pending = False
            self.render_preview()

    def job_updated(self, job: JobRecord, event: p.Event) -> None:
        self.show_job(job)

    # -- actions ---------------------------------------------------------------------------------
    def action_move(self, delta: int) -> None:
        self.query_one(SettingsForm).move(delta)

    def action_change(self, direction: int) -> None:
        self.query_one(SettingsForm).change(None, direction)

    def action_knob(self, name: str, direction: int) -> None:
        self.query_one(SettingsForm).change(name, direction)

    def action_frame(self, delta: int) -> None:
        self.frame = max(0, self.frame + delta)
        if self.frames is not None:
            self.frame = min(self.frame, self.frames - 1)
        self.render_preview()

    @work(group="merge-frames", exit_on_error=False)
    async def count_frames(self) -> None:
        """The destination's frame count (the probe runs in a subprocess), to keep ``.`` in range."""
        source = self.wizard.ws.source("dst") if self.wizard.ws else None
        if source is not None:
            self.frames = int((await probe(source)).get("frame_count") or 0) or None
            self.show_status()

    @on(SettingsForm.Changed)
    def settings_changed(self) -> None:
        """Each change is saved at once: what the form shows is what Export (and ``merge``) run with."""
        ws = self.wizard.ws
        if ws is not None:
            try:
                save(ws, self.query_one(SettingsForm).settings)
                self.saved_text = SAVED
            except (OSError, UserError) as exc:
                self.saved_text = "[red]not saved: Export uses the settings in workspace.toml[/red]"
                self.wizard.notify_error(getattr(exc, "message", None) or f"Cannot save the merge settings: {exc}.",
                                         getattr(exc, "hint", "") or "Check that workspace.toml can be written.")
        self.show_status()
        self.show_mask()
        self.render_preview()

    @work(group="merge-preview", exit_on_error=False)
    async def render_preview(self) -> None:
        job = self.wizard.board.jobs.get(self.preview_job or "")
        if job is not None and job.active:
            self.pending = True  # folded into the next preview once this one is done
            return
        self.show_status("rendering...")
        knobs = self.query_one(SettingsForm).settings.to_dict()
        params = {"frame": self.frame, **{name: knobs[name] for name in PREVIEW_KNOBS}}
        self.preview_job = await self.wizard.submit_job("merge_preview", params)
