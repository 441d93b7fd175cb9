"""One job's progress: a bar per stage with its rate and ETA, then how the job ended."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from engine import protocol as p
from tui.job_board import JobRecord

BAR_WIDTH = 24
STATUS_WORDS = {"queued": "waiting for the engine", "running": "running", "finished": "done",
                "failed": "failed", "cancelled": "stopped"}


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def bar(done: int, total: int | None, width: int = BAR_WIDTH) -> str:
    if not total:
        return "░" * width
    filled = min(width, round(width * done / total))
    return "█" * filled + "░" * (width - filled)


def stage_line(progress: p.Progress, label: str | None = None) -> Text:
    unit = progress.unit or "items"
    total = f"/{progress.total}" if progress.total is not None else ""
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f"{(label or progress.stage)[:12]:<12} ", style="bold")
    line.append(bar(progress.done, progress.total), style="green")
    line.append(f" {progress.done}{total} {unit}  {progress.rate:.1f} {unit}/s  ETA {format_duration(progress.eta_s)}")
    return line


class JobProgress(Widget):
    """The stages of ``job`` as bars, and its status, error and hint."""

    DEFAULT_CSS = """
    JobProgress { height: auto; min-height: 1; }
    """

    job: reactive[JobRecord | None] = reactive(None, always_update=True, layout=True)
    """The job to show (None: nothing has run yet)."""
    idle_text: reactive[str] = reactive("Nothing has run yet.")
    """Shown while there is no job."""

    def render(self) -> Text:
        job = self.job
        if job is None:
            return Text(self.idle_text, style="dim")
        text = Text()
        text.append(f"{job.kind} · {STATUS_WORDS.get(job.status, job.status)}",
                    style={"failed": "bold red", "finished": "bold green"}.get(job.status, "bold"))
        for progress in job.stages.values():
            text.append("\n")
            text.append_text(stage_line(progress))
        if job.status == "failed":
            text.append(f"\n{job.error}", style="red")
            if job.hint:
                text.append(f"\nhint: {job.hint}", style="italic")
        return text
