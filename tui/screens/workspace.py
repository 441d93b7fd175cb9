"""Step 1: create or open a workspace (recent ones listed), and confirm consent."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from engine.errors import UserError
from engine.workspace import CONFIG_NAME, Workspace
from tui.demo import default_demo_path, demo_workspace
from tui.screens.step import StepScreen


class WorkspaceScreen(StepScreen):
    STEP = "workspace"
    TITLE_TEXT = "Workspace"
    HELP_TEXT = ("A workspace is one folder per face-swap job. Open a recent one with Enter, or press / and "
                 "type a folder: an existing workspace opens, a new or empty folder becomes one.")
    NEXT_TEXT = ("2 Sources: choose the source (the face to put in) and the destination (the video it goes into). "
                 "First record consent with k: only swap the faces of people who agreed.")

    BINDINGS = [
        Binding("d", "demo", "Demo", id="demo"),
        Binding("k", "consent", "Consent", id="consent"),
        Binding("slash", "focus_path", "Type path", id="focus-path"),
        Binding("escape", "focus_list", "Leave path", show=False, id="leave-path"),
    ]

    _skipped_said = False

    def body(self) -> ComposeResult:
        yield Static(id="ws-info")
        yield Static("Recent workspaces", classes="section-title")
        yield OptionList(id="recent")
        yield Input(placeholder="folder of a workspace (new or existing), then Enter", id="ws-path")

    def refresh_from_board(self) -> None:
        ws = self.wizard.ws
        info = self.query_one("#ws-info", Static)
        if ws is None:
            info.update(Text(f"No workspace open. Press d for a demo workspace made from the sample clips "
                             f"(at {default_demo_path()})."))
        else:
            consent = ws.section("consent")
            state = (f"consent confirmed {consent.get('date', '')}" if ws.consent_confirmed()
                     else "consent not confirmed yet: press k")
            info.update(Text(f"Open: {ws.root}\n{state}"))
        recent = self.query_one("#recent", OptionList)
        recent.clear_options()
        # Text, not markup: a path may hold brackets ("jobs/a[/x]ws").
        recent.add_options([Option(Text(str(path)), id=str(path)) for path in self.wizard.recent.load()])
        if self.wizard.recent.skipped and not self._skipped_said:
            self._skipped_said = True
            self.notify(f"Skipped {self.wizard.recent.skipped} unusable entr"
                        f"{'y' if self.wizard.recent.skipped == 1 else 'ies'} of the recent list "
                        f"({self.wizard.recent.path}).", severity="warning", markup=False)
        if recent.option_count:
            recent.highlighted = 0
        # Focus stays on the list, so the footer's letter keys work; "/" moves to the path field.
        recent.focus()

    @on(OptionList.OptionSelected, "#recent")
    def recent_chosen(self, event: OptionList.OptionSelected) -> None:
        self.open_path(Path(str(event.option.id)))

    @on(Input.Submitted, "#ws-path")
    def path_entered(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.open_path(Path(event.value.strip()).expanduser())

    def open_path(self, path: Path) -> None:
        try:
            if (path / CONFIG_NAME).is_file():
                ws = Workspace.open(path)
            else:
                ws = Workspace.create(path)
                self.notify(f"Created a new workspace at {ws.root}.", markup=False)
        except UserError as exc:
            self.wizard.notify_error(exc.message, exc.hint)
            return
        except OSError as exc:
            self.wizard.notify_error(f"Cannot use {path}: {exc.strerror}.", "Choose a folder you can write to.")
            return
        self.wizard.open_workspace(ws)
        self.refresh_from_board()

    def action_demo(self) -> None:
        try:
            ws = demo_workspace()
        except (UserError, OSError) as exc:
            self.wizard.notify_error(getattr(exc, "message", str(exc)), getattr(exc, "hint", ""))
            return
        self.wizard.open_workspace(ws)
        self.refresh_from_board()

    def action_consent(self) -> None:
        if self.wizard.ws is None:
            self.notify("Open a workspace first.", severity="warning")
            return
        self.wizard.ask_consent()

    def action_focus_path(self) -> None:
        self.query_one("#ws-path", Input).focus()

    def action_focus_list(self) -> None:
        self.query_one("#recent", OptionList).focus()
