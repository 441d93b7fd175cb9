"""The bar across the top of every step screen: each step's number, name and status."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui.steps import WIZARD_STEPS

#: One symbol per status, readable without colour (NO_COLOR) too.
SYMBOLS = {"done": "✓", "running": "●", "failed": "✗", "todo": "○"}


class StepBar(Widget):
    """``✓1 Workspace ✓2 Sources ●3 Extract ...``; the current step in reverse video."""

    DEFAULT_CSS = """
    StepBar { height: 1; width: 1fr; }
    """

    statuses: reactive[dict[str, str]] = reactive(dict, always_update=True)
    """Status of each wizard step by name."""
    current: reactive[str] = reactive("workspace")
    """The step whose screen is showing."""

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        for number, (name, label) in enumerate(WIZARD_STEPS, start=1):
            status = self.statuses.get(name, "todo")
            piece = Text(f" {SYMBOLS[status]}{number} {label} ")
            piece.stylize({"done": "green", "running": "bold yellow", "failed": "bold red"}.get(status, "dim"))
            if name == self.current:
                piece.stylize("reverse bold")
            text.append_text(piece)
        return text
