"""The swapwizard wizard: a Textual app that walks a workspace from videos to a finished result.

Build it with ``make_app(workspace)`` and ``.run()`` it (``swapwizard [WS]`` does that). All heavy
work runs in the workspace's engine, which the app starts when absent; one async worker reads the
engine's socket, folds each event into ``self.board`` and posts a typed message (see
``tui/messages.py``). Screens draw themselves from the board, so a screen shown later, or the app
reopened after the terminal closed, shows the same history.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from engine import protocol as p
from engine.client import AsyncEngineClient
from engine.errors import UserError
from engine.launcher import ensure_engine
from engine.workspace import Workspace
from tui import graphics
from tui.job_board import JobBoard
from tui.job_table import JobTable
from tui.messages import (
    EngineConnected,
    EngineLost,
    JobEvent,
    JobMetrics,
    JobProgressed,
    StatusUpdated,
    message_for,
)
from tui.recent import RecentWorkspaces
from tui.screens.check import CheckScreen
from tui.screens.compare import CompareScreen
from tui.screens.consent import ConsentScreen
from tui.screens.export import ExportScreen
from tui.screens.extract import ExtractScreen
from tui.screens.help import HelpScreen, help_text
from tui.screens.mask_review import MaskReviewScreen
from tui.screens.merge import MergeScreen
from tui.screens.picture_view import copy_picture_path, open_pictures
from tui.screens.sources import SourcesScreen
from tui.screens.step import StepScreen
from tui.screens.train import TrainScreen
from tui.screens.workspace import WorkspaceScreen
from tui.steps import STEP_NAMES, job_step, landing_step, step_statuses

#: Events replayed in one go before the worker lets the screen draw.
REPLAY_BATCH = 200
#: Seconds between reconnection attempts after the engine went away.
RECONNECT_DELAY = 1.0


class SwapWizardApp(App[None]):
    """The wizard. ``connect=False`` keeps it off the engine (snapshot tests feed the board)."""

    CSS_PATH = "app.tcss"
    TITLE = "swapwizard"
    SCREENS = {
        "workspace": WorkspaceScreen, "sources": SourcesScreen, "extract": ExtractScreen,
        "check": CheckScreen, "train": TrainScreen, "merge": MergeScreen, "export": ExportScreen,
    }
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", id="quit", priority=True),
                Binding("question_mark,f1", "help", "Help", id="help"),
                # c and m open from a step screen (check_action hides them elsewhere).
                Binding("c", "compare", "Compare", id="compare", tooltip="compare the models (quality over training)"),
                Binding("m", "mask_review", "Masks", id="mask-review", tooltip="review the segmenter's masks, worst first"),
                Binding("z", "full_picture", "Full size", id="picture-full", tooltip="the screen's pictures full size"),
                Binding("w", "picture_path", "Path", id="picture-path", tooltip="the picture's path, copied")]

    def __init__(self, workspace: Path | None = None, recent: RecentWorkspaces | None = None,
                 connect: bool = True) -> None:
        super().__init__()
        self.initial_workspace = workspace
        self.recent = recent or RecentWorkspaces()
        self.connect = connect
        self.ws: Workspace | None = None
        self.board = JobBoard()
        self.client: AsyncEngineClient | None = None
        self.engine_status: dict[str, Any] = {}
        #: The engine's job kinds (its status's ``jobs``): which screen draws, stops and lands on each.
        self.job_table = JobTable()
        #: Events up to this seq were history when we connected: no pop-up notices for them.
        self.history_seq = 0
        self._landed = False
        #: The step the wizard chose to land on (None: none yet); the engine's status may correct it.
        self._auto_landed: str | None = None
        self._lost_notified = False

    # -- opening a workspace -------------------------------------------------------------------
    def on_mount(self) -> None:
        if graphics.current().notice:  # said once: how pictures are drawn could be better (tmux settings)
            self.notify(graphics.current().notice, title="Pictures", severity="warning", timeout=15)
        # Only the screen the user lands on is built before the first paint (start-up time).
        if self.initial_workspace is not None:
            try:
                self.open_workspace(Workspace.open(self.initial_workspace))
                return
            except UserError as exc:
                self.notify_error(exc.message, exc.hint)
        self.go_to("workspace")

    def open_workspace(self, ws: Workspace) -> None:
        """Make ``ws`` the wizard's workspace: ask for consent if needed, connect, go to its step."""
        self.ws = ws
        self.board = JobBoard()
        # The steps as the workspace recorded them (what the engine publishes, less what it has not yet
        # written): the landing below is right before the engine answers; its status then confirms it.
        try:
            self.engine_status = {"steps": ws.steps()}
        except (OSError, UserError):
            self.engine_status = {}
        self._landed = False
        self.recent.add(ws.root)
        self.sub_title = str(ws.root)
        if self.connect:
            # After the first paint: starting an engine process competes for the CPU with it.
            self.call_after_refresh(self.follow_engine)
        if not ws.consent_confirmed():
            self.go_to("workspace")
            self.ask_consent()
        else:
            self.land()

    def land(self, running_kind: str | None = None) -> None:
        """Go to the first unfinished step (or the running job's), and remember it was the wizard's choice."""
        self._auto_landed = landing_step(self.step_statuses(), running_kind, self.job_table)
        self.go_to(self._auto_landed)

    def ask_consent(self) -> None:
        def recorded(confirmed: bool | None) -> None:
            if confirmed and self.ws is not None:
                self.ws.record_consent()
                self.refresh_steps()
                self.land()

        self.push_screen(ConsentScreen(), recorded)

    # -- navigation ----------------------------------------------------------------------------
    def go_to(self, step: str) -> None:
        if step not in STEP_NAMES:
            return
        if step != "workspace" and self.ws is None:
            self.notify("Open or create a workspace first.", severity="warning")
            return
        current = self.step_screen()
        if current is None:
            self.push_screen(step)
            return
        if current.STEP == step:
            return
        while len(self.screen_stack) > 2 and not isinstance(self.screen, StepScreen):
            self.pop_screen()
        self.switch_screen(step)

    def step_screen(self) -> StepScreen | None:
        for screen in reversed(self.screen_stack):
            if isinstance(screen, StepScreen):
                return screen
        return None

    def live_step_screen(self) -> StepScreen | None:
        """The step screen to redraw, once it is mounted (its on_mount draws everything up to then)."""
        screen = self.step_screen()
        return screen if screen is not None and screen.is_mounted else None

    def step_statuses(self) -> dict[str, str]:
        return step_statuses(self.ws, self.engine_status.get("steps") or {}, self.board, self.job_table)

    def refresh_steps(self) -> None:
        screen = self.live_step_screen()
        if screen is not None:
            screen.refresh_step_bar()

    # -- the engine worker ---------------------------------------------------------------------
    @work(exclusive=True, group="engine", exit_on_error=False)
    async def follow_engine(self) -> None:
        """Connect (starting the engine when absent), replay the running job's history, follow live."""
        ws = self.ws
        assert ws is not None
        while True:
            try:
                await asyncio.to_thread(ensure_engine, ws)
                client = await AsyncEngineClient(ws, client_name="tui").connect()
                status = await client.status()
            except (UserError, OSError) as exc:
                self.post_message(EngineLost(getattr(exc, "message", str(exc)), getattr(exc, "hint", "")))
                await asyncio.sleep(RECONNECT_DELAY * 3)
                continue
            self.client = client
            self.history_seq = max(self.history_seq, int(status.get("last_seq") or 0))
            from_seq = self._replay_from(status)
            self.post_message(EngineConnected(client.hello, status))
            count = 0
            async for event in client.events(from_seq):
                self.board.apply(event)
                self.post_message(message_for(event))
                count += 1
                if count % REPLAY_BATCH == 0:
                    await asyncio.sleep(0)  # a long replay must not freeze the screen
            self.client = None
            await client.close()
            self.post_message(EngineLost("The connection to the engine closed.", "Reconnecting..."))
            await asyncio.sleep(RECONNECT_DELAY)

    def _replay_from(self, status: dict[str, Any]) -> int:
        """From the first event of the running or queued jobs (their whole history), else from now."""
        if self.board.last_seq:
            return self.board.last_seq + 1  # a reconnect: only what we missed
        jobs = [status.get("running"), *(status.get("queue") or [])]
        starts = [job["queued_seq"] for job in jobs if isinstance(job, dict) and job.get("queued_seq")]
        return min(starts) if starts else int(status.get("last_seq") or 0) + 1

    @on(Worker.StateChanged)
    def worker_failed(self, event: Worker.StateChanged) -> None:
        """Every worker's failure ends up here, as a notice instead of a traceback."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            self.notify_error(getattr(error, "message", str(error)), getattr(error, "hint", ""))

    def take_status(self, status: dict[str, Any]) -> None:
        """Keep an engine status; its job kinds replace the ones known (a status without them keeps them)."""
        self.engine_status = status
        if isinstance(status.get("jobs"), dict):
            self.job_table = JobTable(status["jobs"])

    def on_engine_connected(self, message: EngineConnected) -> None:
        self.take_status(message.status)
        self._lost_notified = False
        self.refresh_steps()
        if not self._landed:
            self._landed = True
            running = message.status.get("running") or {}
            kind = running.get("kind")
            consented = self.ws is not None and self.ws.consent_confirmed()
            at = [name for name, status in self.step_statuses().items() if status == "running"]
            current = self.step_screen()
            if kind == "run" and consented and at:  # the whole pipeline: land on the step it is at
                self.go_to(at[0])
            elif consented and (home := job_step(self.job_table, kind)):
                self.go_to(home)
            elif consented and current is not None and current.STEP == self._auto_landed:
                self.land()  # the engine's status, not only the file: unless the user moved meanwhile
            failed = [name for name, record in (message.status.get("steps") or {}).items()
                      if isinstance(record, dict) and record.get("status") == "failed"]
            if failed and not running:
                self.notify(f"Step {', '.join(failed)} did not finish. Open it and press r to continue.",
                            title="Interrupted", severity="warning", timeout=10)

    def on_engine_lost(self, message: EngineLost) -> None:
        # Once per outage: the worker retries every few seconds and must not stack notices.
        if not self._lost_notified:
            self._lost_notified = True
            self.notify_error(message.error, message.hint, title="Engine")
        self.refresh_steps()

    def on_status_updated(self, message: StatusUpdated) -> None:
        self.take_status(message.status)
        self.refresh_steps()

    @work(exclusive=True, group="status", exit_on_error=False)
    async def refresh_status(self) -> None:
        if self.client is not None:
            self.post_message(StatusUpdated(await self.client.status()))

    def on_job_event(self, message: JobEvent) -> None:
        event = message.event
        live = event.seq > self.history_seq
        if isinstance(event, p.JobFailed) and live:
            self.notify_error(event.error, event.hint, title="Job failed")
        elif isinstance(event, p.Log) and event.level in ("warning", "error") and live:
            self.notify(event.message, severity="warning" if event.level == "warning" else "error", markup=False)
        if isinstance(event, (p.JobStarted, p.JobFinished, p.JobFailed, p.JobCancelledEvent)):
            self.refresh_status()
            self.refresh_steps()
        self._forward(message)

    def on_job_progressed(self, message: JobProgressed) -> None:
        self._forward(message)

    def on_job_metrics(self, message: JobMetrics) -> None:
        self._forward(message)

    def _forward(self, message: JobEvent) -> None:
        job = self.board.jobs.get(message.job_id)
        screen = self.live_step_screen()
        if screen is None:
            return
        screen.refresh_activity()
        if job is not None and job.kind in screen.kinds:
            screen.job_updated(job, message.event)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Compare and mask review open from a step screen only: elsewhere they are not in the footer."""
        if action in ("compare", "mask_review"):
            return isinstance(self.screen, StepScreen) and self.ws is not None
        return True

    def action_help(self) -> None:
        """``?`` / F1: the help of the screen shown (what it does, its keys, what comes next)."""
        if isinstance(self.screen, HelpScreen):
            return
        keys = [b for b in self.BINDINGS if isinstance(b, Binding) and self.check_action(b.action, ())]
        self.push_screen(HelpScreen(help_text(self.screen, keys)))

    def action_full_picture(self) -> None:
        """``z``: the pictures of the screen full size, at the best resolution the terminal gives."""
        open_pictures(self)

    def action_picture_path(self) -> None:
        """``w``: the path of the screen's picture, shown and copied (OSC 52)."""
        copy_picture_path(self)

    def action_compare(self) -> None:
        """The Compare view (model comparison and quality over training), from any step screen."""
        if self.ws is not None and isinstance(self.screen, StepScreen):
            self.push_screen(CompareScreen())

    def action_mask_review(self) -> None:
        """The mask review (the segmenter's masks worst first: accept, reject, retrain), from any step screen."""
        if self.ws is not None and isinstance(self.screen, StepScreen):
            self.push_screen(MaskReviewScreen())

    # -- what screens call ---------------------------------------------------------------------
    async def submit_job(self, kind: str, params: dict[str, Any] | None = None) -> str | None:
        """Submit a job; returns its id, or None after telling the user why it could not start."""
        if self.ws is None:
            self.notify("Open a workspace first.", severity="warning")
            return None
        # Consent comes before any work on the footage (a kind that touches none says so: the diagnostics).
        if not self.ws.consent_confirmed() and self.job_table.needs_consent(kind):
            self.ask_consent()
            return None
        if self.client is None:
            self.notify_error("The engine is not connected yet.", "Wait a moment and try again.")
            return None
        try:
            reply = await self.client.submit(kind, params or {})
        except UserError as exc:
            self.notify_error(exc.message, exc.hint)
            return None
        return str(reply.get("job_id"))

    async def engine_request(self, type_name: str, **fields: Any) -> dict[str, Any] | None:
        """Send ``cancel`` / ``command`` / ``status``; errors become notices, the result or None."""
        if self.client is None:
            self.notify_error("The engine is not connected.", "Wait for it to reconnect.")
            return None
        try:
            return await self.client.request(type_name, **fields)
        except UserError as exc:
            self.notify_error(exc.message, exc.hint)
            return None

    def notify_error(self, message: str, hint: str = "", title: str = "Error") -> None:
        # markup=False: messages hold user text ("[merge] erode", a model named "[/x]") shown as it is.
        self.notify(f"{message}\n{hint}" if hint else message, title=title, severity="error", timeout=12, markup=False)


def make_app(workspace: str | Path | None = None, connect: bool = True,
             recent: RecentWorkspaces | None = None, jobs: dict[str, dict[str, Any]] | None = None) -> SwapWizardApp:
    """The wizard for ``workspace`` (None: start on the workspace picker); ``jobs``: the job kinds it knows
    before an engine publishes its own (a wizard that does not connect, as tests drive it)."""
    app = SwapWizardApp(Path(workspace) if workspace is not None else None, recent=recent, connect=connect)
    app.job_table = JobTable(jobs)
    return app
