"""Step 4: the data check: faces found per side, blur, pose coverage, warnings; before training."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from engine.atomic import read_json
from tui.job_board import JobRecord
from tui.screens.step import StepScreen
from tui.widgets.job_progress import JobProgress
from tui.widgets.pose_grid import PoseGrid


def side_line(side: str, info: dict[str, Any]) -> str:
    """``src: 75 faces in 75 frames · 1 track · size 180 px · blur 0.8 · brightness 120``."""
    if not info.get("extracted", True):
        return f"[b]{side}[/b]: not extracted yet"
    parts = [f"{info.get('faces', 0)} faces in {info.get('frames', '?')} frames",
             f"{info.get('tracks', 0)} track(s)"]
    for key, label, unit in (("face_size", "size", " px"), ("blur", "sharpness", ""), ("brightness", "brightness", "")):
        stats = info.get(key)
        if isinstance(stats, dict) and "median" in stats:
            parts.append(f"{label} {stats['median']:g}{unit}")
    identity = info.get("identity") or {}
    if identity.get("people"):
        parts.append(f"{identity['people']} {'person' if identity['people'] == 1 else 'people'}")
    if identity.get("other_person_faces"):
        parts.append(f"[yellow]{identity['other_person_faces']} faces of another person[/]")
    doubtful = (info.get("alignment") or {}).get("doubtful")
    if doubtful:
        parts.append(f"[yellow]{doubtful} doubtful alignments[/]")
    return f"[b]{side}[/b]: " + " · ".join(parts)


class CheckScreen(StepScreen):
    STEP = "check"
    TITLE_TEXT = "Check the data"
    HELP_TEXT = "Counts the faces per side, their sharpness and the head poses the source covers."
    NEXT_TEXT = "5 Train: teach the model both faces; it saves as it goes and resumes where it stopped."

    BINDINGS = [Binding("r", "check", "Run check", id="check-run")]

    def full_pictures(self) -> list[tuple[str, Any]]:
        """What ``z`` opens here: the check's contact sheet and the sheets of doubtful alignments per side
        (not drawn on this screen for lack of room)."""
        if self.wizard.ws is None:
            return []
        folder = self.wizard.ws.root / "check"
        sheets = [("data check contact sheet (src, then dst)", folder / "contact_sheet.png")]
        sheets += [(f"doubtful alignments of {side}, surest first", folder / f"alignment_{side}.png")
                   for side in ("src", "dst")]
        return [(label, path) for label, path in sheets if path.is_file()]

    def body(self) -> ComposeResult:
        yield JobProgress(id="check-progress")
        with VerticalScroll(id="check-report"):
            yield Static(id="check-summary")
            yield PoseGrid(id="check-grid")
            yield Static(id="check-warnings")

    def show_job(self, job: JobRecord | None) -> None:
        progress = self.query_one(JobProgress)
        progress.idle_text = "Press r to check the extracted faces."
        progress.job = job
        self.show_report(self.load_report(job))

    def load_report(self, job: JobRecord | None) -> dict[str, Any] | None:
        ws = self.wizard.ws
        if ws is None:
            return None
        result = job.result if job is not None and job.kind == "check" and job.status == "finished" else None
        if result is None:
            record = (self.wizard.engine_status.get("steps") or {}).get("check") or {}
            result = record.get("result") if record.get("status") == "done" else None
        if not result:
            return None
        report_path = result.get("report")
        report = read_json(ws.root / report_path, default=None) if report_path else None
        return report if isinstance(report, dict) else result

    def show_report(self, report: dict[str, Any] | None) -> None:
        summary = self.query_one("#check-summary", Static)
        grid = self.query_one(PoseGrid)
        warnings = self.query_one("#check-warnings", Static)
        grid.display = report is not None
        if report is None:
            summary.update("")
            warnings.update("")
            return
        lines = [side_line(side, info) for side, info in (report.get("sides") or {}).items()]
        occlusions = (report.get("occlusions") or {}).get("line")
        if occlusions:  # the merge's mask decision ([merge] mask = auto: engine.segment.auto), said by the check
            lines.append(escape(occlusions))
        summary.update("\n".join(lines))
        grid.report = report
        found = report.get("warnings") or []
        warnings.update("\n".join(f"[yellow]⚠[/] {escape(str(w))}" for w in found) or "[green]No warnings.[/]")

    async def action_check(self) -> None:
        if not self.wizard.board.active("check"):
            await self.wizard.submit_job("check", {})
