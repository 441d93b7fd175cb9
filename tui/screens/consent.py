"""The consent dialog: the user confirms they may use the faces in their footage."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

CONSENT_TEXT = """\
Before swapwizard works on this footage, confirm that:

  • you have permission from every person whose face appears in
    the source and destination footage to make this synthetic video;
  • you will not use the result to deceive, harass or impersonate;
  • you will keep the synthetic-media label swapwizard adds.

Your confirmation is recorded in workspace.toml with today's date."""


class ConsentScreen(ModalScreen[bool]):
    """Returns True when the user confirms (y), False when they decline (n / Escape)."""

    BINDINGS = [
        Binding("y", "confirm", "I confirm", id="consent-confirm"),
        Binding("n,escape", "decline", "Not now", id="consent-decline"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="consent-dialog", classes="dialog"):
            yield Static("Consent", classes="dialog-title")
            yield Static(CONSENT_TEXT)
            yield Static("Press y to confirm, n to decide later.", classes="dialog-keys")
        yield Footer(compact=True, show_command_palette=False)

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_decline(self) -> None:
        self.dismiss(False)
