"""A one-line question (a number, a name) in a small dialog; returns the typed text or None."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static


class AskScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="ask-cancel")]

    def __init__(self, question: str, value: str = "", restrict: str | None = None) -> None:
        super().__init__()
        self.question = question
        self.value = value
        self.restrict = restrict

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog small-dialog"):
            yield Static(Text(self.question), classes="dialog-title")
            yield Input(self.value, restrict=self.restrict, id="ask-input")
            yield Static("Enter to confirm, Escape to cancel.", classes="dialog-keys")
        yield Footer(compact=True, show_command_palette=False)

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
