"""Step 7: merge every frame and write output/result.mp4; progress, then the result, its label and its
Content Credentials (read back from the file as ``swapwizard verify`` does)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from engine import protocol as p
from engine import settings as declared
from engine.errors import UserError
from tui.job_board import JobRecord
from tui.probe import read_label
from tui.screens.file_picker import FilePickerScreen
from tui.screens.merge import mask_decision
from tui.screens.step import StepScreen
from tui.widgets.job_progress import JobProgress


def size_text(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def result_path(root: Path, result: dict[str, Any]) -> Path:
    return root / (result.get("output") or result.get("path") or "output/result.mp4")


def credentials_text(found: dict[str, Any] | None) -> str:
    """The Export step's Content Credentials line: what ``swapwizard verify`` says about the file."""
    if found is None:
        return "[b]Credentials:[/b] reading..."
    if found.get("error"):
        return f"[b]Credentials:[/b] [red]could not be read: {escape(str(found['error']))}[/red]"
    if not found.get("signed"):
        return "[b]Credentials:[/b] [red]none: this file carries no signed C2PA manifest[/red]"
    parts = ["signed by " + escape(str(found.get("signer") or "unknown"))]
    parts.append("content intact" if found.get("content_intact") else "[red]content changed since signing[/red]")
    if not found.get("signature_valid"):
        parts.append("[red]signature invalid[/red]")
    parts.append("trusted" if found.get("trusted") else
                 "untrusted (local identity)" if found.get("local_identity") else "untrusted")
    if found.get("ai_generated"):
        parts.append("says: composite with trained algorithmic media")
    return "[b]Credentials:[/b] " + ", ".join(parts) + f"\n  check any time: swapwizard verify {escape(found['path'])}"


def result_text(root: Path, result: dict[str, Any], label: dict[str, str] | None = None,
                credentials: dict[str, Any] | None = None) -> str:
    """Where the result is, how big, the synthetic-media label and the Content Credentials it carries."""
    full = result_path(root, result)
    lines = [f"[b]Result:[/b] {escape(str(full))}"]
    try:
        lines.append(f"[b]Size:[/b] {size_text(full.stat().st_size)}")
    except OSError:
        lines.append("[red]the file is missing[/red]")
    if "frames" in result:
        lines.append(f"[b]Frames:[/b] {result['frames']} at {result.get('fps', '?')} fps")
    if label is None:
        lines.append("[b]Label:[/b] reading...")
    elif label.get("synthetic_media") == "true":
        lines.append(f"[b]Label:[/b] synthetic media ({label.get('synthetic_media_type', '')}), "
                     + escape(f"{label.get('generator', '')}, {label.get('swap_date', '')}"))
        if label.get("comment"):
            lines.append("  " + escape(str(label['comment'])))
    else:
        lines.append("[b]Label:[/b] [red]missing: this file does not say it is synthetic[/red]")
    lines.append(credentials_text(credentials))
    return "\n".join(lines)


class ExportScreen(StepScreen):
    STEP = "export"
    TITLE_TEXT = "Export"
    HELP_TEXT = "Merges every destination frame with the model and writes output/result.mp4 with the audio."
    NEXT_TEXT = ("The end: output/result.mp4, labelled as face-swapped and signed (swapwizard verify reads it). "
                 "o merges another clip; c compares models; 6 goes back to the merge settings.")

    BINDINGS = [
        Binding("r", "export", "Export", id="export-start"),
        Binding("x", "stop", "Stop", id="export-stop"),
        Binding("o", "export_other", "Another clip", id="export-other"),
    ]

    def body(self) -> ComposeResult:
        yield JobProgress(id="export-progress")
        yield Static(id="export-mask")  # [merge] mask = auto: what it decided and why
        yield Static(id="export-result", classes="panel")

    def show_mask(self, job: JobRecord | None) -> None:
        """The workspace's mask decision (auto: engine.segment.auto, made by the check or at the merge's start);
        nothing while another clip (merge --dst) is merged, whose faces it is not about."""
        ws = self.wizard.ws
        try:
            mask = declared.read(ws, "merge")["mask"] if ws is not None else ""
        except UserError:
            mask = ""  # the merge says what is wrong with the settings
        other = job is not None and job.kind == "merge" and job.active and bool(job.params.get("dst"))
        self.query_one("#export-mask", Static).update(mask_decision(ws, "" if other else mask, short=False))

    def refresh_from_board(self) -> None:
        super().refresh_from_board()
        self.show_mask(self.wizard.board.latest(*self.kinds) if self.kinds else None)

    def job_updated(self, job: JobRecord, event: p.Event) -> None:
        super().job_updated(job, event)
        if not isinstance(event, (p.Progress, p.Metrics, p.Preview)):  # the decision is logged at the start
            self.show_mask(job)

    def show_job(self, job: JobRecord | None) -> None:
        progress = self.query_one(JobProgress)
        progress.idle_text = "Press r to export the merged video."
        progress.job = job
        result = job.result if job is not None and job.kind == "merge" and job.status == "finished" else None
        if result is None and (job is None or not job.active):
            record = (self.wizard.engine_status.get("steps") or {}).get("merge") or {}
            if record.get("status") == "done":
                result = record.get("result") or {}
        box = self.query_one("#export-result", Static)
        box.display = result is not None and self.wizard.ws is not None
        if result is not None and self.wizard.ws is not None:
            box.update(result_text(self.wizard.ws.root, result))
            self.show_label(result)

    @work(thread=True, exclusive=True, group="label", exit_on_error=False)
    def show_label(self, result: dict[str, Any]) -> None:
        ws = self.wizard.ws
        if ws is None:
            return
        path = result_path(ws.root, result)
        label = read_label(path)
        try:
            from engine.media.credentials import read_credentials

            found = read_credentials(path)
        except Exception as exc:  # noqa: BLE001 - a reading problem is shown, never a crash of the wizard
            found = {"path": str(path), "signed": False, "error": f"{type(exc).__name__}: {exc}"}
        text = result_text(ws.root, result, label, found)
        self.app.call_from_thread(self.query_one("#export-result", Static).update, text)

    async def action_export(self) -> None:
        if self.wizard.board.active("merge"):
            self.notify("The export is already running.")
            return
        await self.wizard.submit_job("merge", {})

    def action_export_other(self) -> None:
        """Merge another clip with this model (merge --dst): extracted and merged in extra_dst/<name>/,
        the workspace's own destination untouched."""
        if self.wizard.board.active("merge"):
            self.notify("An export is already running.")
            return

        async def chosen(path: Path | None) -> None:
            if path is None:
                return
            if not path.is_file():
                self.notify("Pick a video file (another clip to put this model's face into).", severity="warning")
                return
            if await self.wizard.submit_job("merge", {"dst": str(path.resolve())}):
                self.notify(f"Merging {path.name}: its result goes to extra_dst/ in the workspace.", markup=False)

        self.app.push_screen(FilePickerScreen("Pick another clip to merge with this model", Path.cwd()), chosen)
