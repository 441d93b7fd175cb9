"""Pick one of a few choices (a training preset, a face track); returns its key or None."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option


class ChoiceScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="choice-cancel")]

    def __init__(self, question: str, choices: list[tuple[str, str]], selected: str | None = None) -> None:
        super().__init__()
        self.question = question
        self.choices = choices
        self.selected = selected

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            # Text, not markup: choices and questions may quote a file or a person's name.
            yield Static(Text(self.question), classes="dialog-title")
            yield OptionList(*(Option(Text(text), id=key) for key, text in self.choices), id="choices")
            yield Static("↑↓ to move, Enter to choose, Escape to cancel.", classes="dialog-keys")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        keys = [key for key, _ in self.choices]
        options.highlighted = keys.index(self.selected) if self.selected in keys else 0
        options.focus()

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
