"""Step 3: find, align and crop the faces of both sides; progress per side, newest crops, track choice."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.binding import Binding

from engine.workspace import SIDES
from tui.job_board import JobRecord
from tui.screens.step import StepScreen
from tui.widgets.job_progress import JobProgress
from tui.widgets.thumbnails import Thumbnails

#: Seconds between thumbnail reloads while extraction runs (listing a big folder costs).
THUMB_INTERVAL = 2.0


class ExtractScreen(StepScreen):
    STEP = "extract"
    KINDS = ("extract", "sort")
    TITLE_TEXT = "Extract faces"
    HELP_TEXT = "Finds the faces in every frame of both sides, aligns and crops them."

    BINDINGS = [
        Binding("r", "extract('both')", "Extract both", id="extract-both"),
        Binding("s", "extract('src')", "Source only", id="extract-src"),
        Binding("d", "extract('dst')", "Destination only", id="extract-dst"),
        Binding("x", "stop", "Stop", id="extract-stop"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._thumbs_at = 0.0

    def body(self) -> ComposeResult:
        yield JobProgress(id="extract-progress")
        for side in SIDES:
            yield Thumbnails(f"{side}\nfaces", id=f"thumbs-{side}")

    def show_job(self, job: JobRecord | None) -> None:
        progress = self.query_one(JobProgress)
        progress.idle_text = "Press r to extract the faces of both sides."
        progress.job = job
        now = time.monotonic()
        if job is None or not job.active or now - self._thumbs_at > THUMB_INTERVAL:
            self._thumbs_at = now
            ws = self.wizard.ws
            for side in SIDES:
                self.query_one(f"#thumbs-{side}", Thumbnails).reload(ws.aligned_dir(side) if ws else None)

    async def action_extract(self, side: str) -> None:
        if self.wizard.board.active("extract"):
            self.notify("Extraction is already running.")
            return
        await self.wizard.submit_job("extract", {"side": side})

    async def action_stop(self) -> None:
        job = self.wizard.board.active("extract", "sort")
        if job is not None:
            await self.wizard.engine_request("cancel", job_id=job.job_id)
