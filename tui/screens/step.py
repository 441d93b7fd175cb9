"""What every step screen shares: the step bar, the footer, moving between steps, drawing jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from engine import protocol as p
from tui.job_board import JobRecord
from tui.steps import STEP_NAMES, WIZARD_STEPS
from tui.widgets.activity import ActivityLine
from tui.widgets.step_bar import StepBar

if TYPE_CHECKING:
    from tui.app import SwapWizardApp


class StepScreen(Screen[None]):
    """A step of the wizard. Subclasses set ``STEP``, compose ``body()``, draw jobs.

    Which jobs a step draws and stops comes from the job kinds' declarations (``screens``, ``stoppable``
    in engine/jobs), as the engine publishes them: ``kinds`` and ``stop_kinds``.
    """

    STEP: ClassVar[str] = ""
    TITLE_TEXT: ClassVar[str] = ""
    HELP_TEXT: ClassVar[str] = ""
    #: What the step does, for the help screen (``?``) where HELP_TEXT is not shown on the screen itself.
    ABOUT_TEXT: ClassVar[str] = ""
    #: What comes after this step, for the help screen.
    NEXT_TEXT: ClassVar[str] = ""
    #: Said when there is nothing to stop, and when the cancel reached the engine ("": say nothing).
    STOP_IDLE_TEXT: ClassVar[str] = ""
    STOP_SENT_TEXT: ClassVar[str] = ""

    BINDINGS = [
        # First, so that the footer shows it at any width (the app binds it too, for the other screens).
        Binding("question_mark,f1", "app.help", "Help", id="step-help"),
        Binding("n", "next_step", "Next", id="next-step", tooltip="the next step"),
        Binding("b", "previous_step", "Back", id="previous-step", tooltip="the step before"),
        *(Binding(str(i), f"go('{name}')", label, show=False, id=f"go-{name}")
          for i, (name, label) in enumerate(WIZARD_STEPS, start=1)),
    ]

    @property
    def wizard(self) -> SwapWizardApp:
        return self.app  # type: ignore[return-value]

    @property
    def kinds(self) -> tuple[str, ...]:
        """Job kinds this screen shows; the app forwards their events to ``job_updated``."""
        return self.wizard.job_table.shown_on(self.STEP)

    @property
    def stop_kinds(self) -> tuple[str, ...]:
        """Job kinds that ``action_stop`` cancels (a screen binds it to x); empty: nothing to stop here."""
        return self.wizard.job_table.stopped_on(self.STEP)

    def compose(self) -> ComposeResult:
        yield StepBar(id="step-bar")
        yield ActivityLine(id="activity")
        with Vertical(id="step-body"):
            yield Static(self.TITLE_TEXT, classes="step-title")
            if self.HELP_TEXT:
                yield Static(self.HELP_TEXT, classes="step-help")
            yield from self.body()
        yield Footer(compact=True, show_command_palette=False)

    def body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.refresh_step_bar()
        self.refresh_from_board()

    def on_screen_resume(self) -> None:
        self.refresh_step_bar()
        self.refresh_from_board()

    def refresh_step_bar(self) -> None:
        # A status can arrive while the screen is still composing (the wizard lands before the engine
        # answers): its on_mount draws the bar then.
        for bar in self.query(StepBar):
            bar.current = self.STEP
            bar.statuses = self.wizard.step_statuses()
        self.refresh_activity()

    def refresh_activity(self) -> None:
        for activity in self.query(ActivityLine):
            activity.connected = self.wizard.client is not None or not self.wizard.connect
            activity.job = self.wizard.board.active()

    def refresh_from_board(self) -> None:
        """Draw the latest job of this screen's kinds (after a switch, a reconnect or a replay)."""
        job = self.wizard.board.latest(*self.kinds) if self.kinds else None
        self.show_job(job)

    def job_updated(self, job: JobRecord, event: p.Event) -> None:
        """An event about one of this screen's jobs was folded into the board."""
        self.show_job(job)
        if isinstance(event, (p.JobStarted, p.JobFinished, p.JobFailed, p.JobCancelledEvent)):
            self.refresh_step_bar()

    def show_job(self, job: JobRecord | None) -> None:
        """Draw ``job`` (None: nothing ran in this session yet)."""

    # -- actions ---------------------------------------------------------------------------------
    def action_go(self, step: str) -> None:
        self.wizard.go_to(step)

    def action_next_step(self) -> None:
        index = STEP_NAMES.index(self.STEP)
        if index + 1 < len(STEP_NAMES):
            self.wizard.go_to(STEP_NAMES[index + 1])

    def action_previous_step(self) -> None:
        index = STEP_NAMES.index(self.STEP)
        if index > 0:
            self.wizard.go_to(STEP_NAMES[index - 1])

    async def action_stop(self) -> None:
        """Cancel the running job of this screen's ``stop_kinds`` (the engine stops it cleanly)."""
        job = self.wizard.board.active(*self.stop_kinds) if self.stop_kinds else None
        if job is None:
            if self.STOP_IDLE_TEXT:
                self.notify(self.STOP_IDLE_TEXT, severity="warning")
            return
        if await self.wizard.engine_request("cancel", job_id=job.job_id) is not None and self.STOP_SENT_TEXT:
            self.notify(self.STOP_SENT_TEXT)
