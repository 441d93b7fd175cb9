"""One line under the step bar saying what the engine is doing now, whichever step is showing."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui.job_board import JobRecord
from tui.widgets.job_progress import format_duration


def activity_text(job: JobRecord | None, connected: bool) -> Text:
    if not connected:
        return Text("engine: not connected", style="dim")
    if job is None:
        return Text("engine: idle", style="dim")
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"● {job.kind}", style="bold yellow")
    if job.status == "queued":
        text.append(" waiting")
    values = job.latest_metrics
    if job.kind == "train" and values:
        target = values.get("target")
        text.append(f"  iteration {values.get('iter', 0)}" + (f"/{target}" if target else ""))
        text.append(f"  {values.get('iters_per_s', 0):.2f} it/s  ETA {format_duration(values.get('eta_s'))}")
    elif job.stages:
        stage = list(job.stages.values())[-1]
        total = f"/{stage.total}" if stage.total is not None else ""
        text.append(f"  {stage.stage} {stage.done}{total} {stage.unit}  {stage.rate:.1f}/s"
                    f"  ETA {format_duration(stage.eta_s)}")
    return text


class ActivityLine(Widget):
    DEFAULT_CSS = """
    ActivityLine { height: 1; padding: 0 1; }
    """

    job: reactive[JobRecord | None] = reactive(None, always_update=True)
    """The engine's active job (None: idle)."""
    connected: reactive[bool] = reactive(False)
    """Whether the wizard is connected to the engine."""

    def render(self) -> Text:
        return activity_text(self.job, self.connected)
