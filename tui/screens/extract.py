"""Step 3: find, align and crop the faces of both sides; progress per side, newest crops, the target
person (``t``: the people found, or a photo of the person)."""

from __future__ import annotations

import time
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding

from engine.workspace import SIDES
from tui.job_board import JobRecord
from tui.screens.choice import ChoiceScreen
from tui.screens.person_picker import PersonPickerScreen
from tui.screens.step import StepScreen
from tui.widgets.job_progress import JobProgress
from tui.widgets.thumbnails import Thumbnails

#: Seconds between thumbnail reloads while extraction runs (listing a big folder costs).
THUMB_INTERVAL = 2.0


class ExtractScreen(StepScreen):
    STEP = "extract"
    TITLE_TEXT = "Extract faces"
    HELP_TEXT = "Finds the faces in every frame of both sides, aligns and crops them."
    NEXT_TEXT = "4 Check: are there enough sharp faces, and does the source cover the destination's head poses?"

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

    def side_header(self, side: str) -> dict[str, Any]:
        """The header line of the side's alignments file (people, tracks, the target), or {}."""
        import json

        ws = self.wizard.ws
        try:
            with open(ws.alignments_path(side), encoding="utf-8") as handle:
                header = json.loads(handle.readline())
        except (AttributeError, OSError, ValueError):
            return {}
        return header if isinstance(header, dict) and header.get("kind") == "header" else {}

    def action_choose_track(self) -> None:
        """Pick the target person of a side (people from the alignments header; a photo path works too)."""
        headers = {side: self.side_header(side) for side in SIDES}
        several = {side: h for side, h in headers.items() if len(h.get("people") or h.get("tracks") or []) > 1}
        if not several:
            self.notify("Each side shows one person (or is not extracted yet): nothing to choose.")
            return
        if len(several) == 1:
            self.pick_person(*next(iter(several.items())))
            return

        def side_chosen(side: str | None) -> None:
            if side is not None:
                self.pick_person(side, several[side])

        self.app.push_screen(ChoiceScreen("Choose the target person of which side?",
                                          [(side, f"{side}: {len(h.get('people') or h.get('tracks'))} people")
                                           for side, h in several.items()], "dst"), side_chosen)

    def pick_person(self, side: str, header: dict[str, Any]) -> None:
        if not header.get("people"):  # extracted before people were linked: choose by track
            choices = [(str(t["id"]), f"track {t['id']}: {t.get('faces', 0)} faces, frames {t.get('first')}-"
                        f"{t.get('last')} (data_{side}/{t.get('thumb', '')})") for t in header.get("tracks", [])]
            self.app.push_screen(ChoiceScreen(f"Whose face to use on the {side} side?", choices,
                                              str(header.get("target_track"))),
                                 lambda track: track is not None and self.submit_extract({"side": side, "track": int(track)}))
            return

        def chosen(choice: dict[str, Any] | None) -> None:
            if choice:
                self.submit_extract({"side": side, **choice})

        self.app.push_screen(PersonPickerScreen(side, self.wizard.ws.side_dir(side), header["people"],
                                                header.get("target_person")), chosen)

    @work(group="extract-submit", exit_on_error=False)
    async def submit_extract(self, params: dict[str, Any]) -> None:
        await self.wizard.submit_job("extract", params)
