"""Step 2: pick the source person's video (or images) and the destination video, and probe them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Static

from engine.errors import UserError
from engine.sources import SIDE_NAMES as ENGINE_SIDE_NAMES
from engine.sources import invalidated_by_replacing, replace_source
from engine.workspace import SIDES
from tui.probe import describe, probe
from tui.screens.choice import ChoiceScreen
from tui.screens.file_picker import FilePickerScreen
from tui.screens.new_model import ask_new_model, model_exists
from tui.screens.step import StepScreen

SIDE_NAMES = {"src": "Source: the face to put in", "dst": "Destination: the video to change"}


class SourcesScreen(StepScreen):
    STEP = "sources"
    TITLE_TEXT = "Sources"
    HELP_TEXT = "Copy a video (or a folder of images) into the workspace for each side."
    NEXT_TEXT = ("3 Extract: find and align the faces of both sides. Or a: every step unattended "
                 "(extract, check, train, export) while you watch.")

    BINDINGS = [
        Binding("s", "pick('src')", "Pick source", id="pick-src"),
        Binding("d", "pick('dst')", "Pick destination", id="pick-dst"),
        Binding("p", "probe", "Probe again", id="probe"),
        Binding("a", "run_all", "Run all", id="run-all"),
    ]

    def body(self) -> ComposeResult:
        with Horizontal(id="sides"):
            for side in SIDES:
                yield Static(id=f"side-{side}", classes="panel side-panel")

    def refresh_from_board(self) -> None:
        self.action_probe()

    def show_side(self, side: str, text: str) -> None:
        self.query_one(f"#side-{side}", Static).update("[b]" + SIDE_NAMES[side] + "[/b]\n" + text)

    def action_probe(self) -> None:
        ws = self.wizard.ws
        if ws is None:
            return
        for side in SIDES:
            source = ws.source(side)
            self.show_side(side, f"{escape(source.name)}\nprobing..." if source else "not chosen yet: press "
                           + ("s" if side == "src" else "d"))
        self.probe_sources()

    @work(exclusive=True, group="probe", exit_on_error=False)
    async def probe_sources(self) -> None:
        ws = self.wizard.ws
        if ws is None:
            return
        sources = {side: ws.source(side) for side in SIDES}
        results = await asyncio.gather(*(probe(path) for path in sources.values() if path is not None),
                                       return_exceptions=True)
        for side, result in zip([s for s, p in sources.items() if p is not None], results):
            name = escape(sources[side].name)  # type: ignore[union-attr]
            if isinstance(result, UserError):
                self.show_side(side, f"{name}\n[red]{escape(result.message)}[/red]\nhint: {escape(result.hint)}")
            elif isinstance(result, BaseException):
                self.show_side(side, f"{name}\n[red]cannot probe: {escape(str(result))}[/red]")
            else:
                self.show_side(side, f"{name}\n{describe(result)}")
        self.refresh_step_bar()

    def action_pick(self, side: str) -> None:
        ws = self.wizard.ws
        if ws is None:
            return
        if self.wizard.board.active():
            self.notify("A job is running; wait for it or stop it (x) before changing the footage.",
                        severity="warning")
            return
        current = ws.source(side)
        start = current.resolve().parent if current is not None and current.is_symlink() else Path.cwd()

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.show_side(side, f"probing {path.name} ...")
                self.copy_source(side, path)

        self.app.push_screen(FilePickerScreen(f"Pick the {SIDE_NAMES[side].lower()}", start), chosen)

    @work(thread=True, group="copy", exit_on_error=False)
    def copy_source(self, side: str, path: Path, force: bool = False) -> None:
        """Probe ``path`` and make it ``side``'s footage (``engine.sources.replace_source``, as the CLI does).

        Replacing footage that work was done on asks first, and then marks that work to do again.
        """
        ws = self.wizard.ws
        assert ws is not None
        if not force:
            lost = invalidated_by_replacing(ws, side)
            if lost:
                self.app.call_from_thread(self.confirm_replace, side, path, lost.describe())
                return
        try:
            replace_source(ws, side, path, force=force)
        except UserError as exc:
            self.app.call_from_thread(self.wizard.notify_error, exc.message, exc.hint)
        else:
            self.app.call_from_thread(self.wizard.refresh_status)
        self.app.call_from_thread(self.action_probe)

    def confirm_replace(self, side: str, path: Path, lost: str) -> None:
        def answered(choice: str | None) -> None:
            if choice == "replace":
                self.show_side(side, f"copying {path.name} ...")
                self.copy_source(side, path, force=True)
            else:
                self.action_probe()

        self.app.push_screen(ChoiceScreen(
            f"Replacing the {ENGINE_SIDE_NAMES[side]} with {path.name} invalidates {lost}.",
            [("replace", "Replace it: those steps go back to todo and run again"),
             ("keep", "Keep the current footage")], selected="keep"), answered)

    def action_run_all(self) -> None:
        """The whole pipeline unattended (the steps not done yet), as the ``run`` job."""
        ws = self.wizard.ws
        if ws is None:
            return
        if self.wizard.board.active():
            self.notify("A job is running; wait for it or stop it first.", severity="warning")
        elif model_exists(ws):
            self.submit_run({})
        else:
            ask_new_model(self.app, ws, self.submit_run)

    @work(group="run-submit", exit_on_error=False)
    async def submit_run(self, params: dict) -> None:
        if await self.wizard.submit_job("run", params):
            self.notify("Running every step that is not done; follow it on each step's screen.")
