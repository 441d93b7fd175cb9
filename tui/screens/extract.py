"""Step 3: find, align and crop the faces of both sides; progress per side, newest crops, track choice."""

from __future__ import annotations

import time
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding

from engine.workspace import SIDES
from tui.job_board import JobRecord
from tui.screens.choice import ChoiceScreen
from tui.screens.step import StepScreen
from tui.widgets.job_progress import JobProgress
from tui.widgets.thumbnails import Thumbnails

#: Seconds between thumbnail reloads while extraction runs (listing a big folder costs).
THUMB_INTERVAL = 2.0


class ExtractScreen(StepScreen):
    STEP = "extract"
    KINDS = ("extract", "sort", "run")
    STOP_KINDS = ("extract", "sort")
    TITLE_TEXT = "Extract faces"
    HELP_TEXT = "Finds the faces in every frame of both sides, aligns and crops them."

    BINDINGS = [
        Binding("r", "extract('both')", "Extract", id="extract-both"),
        Binding("s", "extract('src')", "Src only", id="extract-src"),
        Binding("d", "extract('dst')", "Dst only", id="extract-dst"),
        Binding("t", "choose_track", "Person", id="extract-track"),
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

    def side_results(self) -> dict[str, dict[str, Any]]:
        """Each side's last extraction result (tracks, target track) from this session or the engine's record."""
        results: dict[str, dict[str, Any]] = {}
        for side in SIDES:
            record = (self.wizard.engine_status.get("steps") or {}).get(f"extract_{side}") or {}
            found = (record.get("result") or {}).get("sides", {}).get(side)
            if found:
                results[side] = found
        job = self.wizard.board.latest("extract")
        if job is not None and job.status == "finished":
            results.update(job.result.get("sides") or {})
        return results

    def action_choose_track(self) -> None:
        """Pick the target person on a side whose clip shows several."""
        several = {side: r for side, r in self.side_results().items() if len(r.get("tracks") or []) > 1}
        if not several:
            self.notify("Each side shows one person (or is not extracted yet): nothing to choose.")
            return
        side, result = next(iter(several.items()))
        choices = [(str(t["id"]), f"person {t['id']}: {t.get('faces', 0)} faces, frames {t.get('first')}-{t.get('last')}"
                    f" (data_{side}/{t.get('thumb', '')})") for t in result["tracks"]]

        def chosen(track: str | None) -> None:
            if track is not None:
                self.submit_extract({"side": side, "track": int(track)})

        self.app.push_screen(ChoiceScreen(f"Whose face to use on the {side} side?", choices,
                                          str(result.get("target_track"))), chosen)

    @work(group="extract-submit", exit_on_error=False)
    async def submit_extract(self, params: dict[str, Any]) -> None:
        await self.wizard.submit_job("extract", params)
