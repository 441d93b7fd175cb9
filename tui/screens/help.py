"""``?`` / ``F1``: what the screen under it does, every key it takes, and what comes next.

The keys are read from the screens' own ``Binding`` tables (and the app's), so the help cannot list a
key that does not exist or miss one that does; docs/wizard-keys.md is checked against the same tables.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

#: Keys the wizard uses that no ``Binding`` declares (the focused list's own keys).
LIST_KEYS = (("↑ ↓", "move in a list"), ("⏎", "choose in a list"))


def key_names(keys: str) -> str:
    """``"n,escape"`` -> ``"n / esc"`` as the footer writes them."""
    from textual.keys import format_key

    return " / ".join(format_key(key.strip()) for key in keys.split(","))


def bindings_of(screen_class: type[Any]) -> list[Binding]:
    """The bindings a wizard screen class declares, its own first, then its wizard base classes' (a key
    bound twice counts once, as in Textual; Textual's own screen keys are left out)."""
    found: list[Binding] = []
    seen: set[str] = set()
    for cls in screen_class.__mro__:
        if not cls.__module__.startswith("tui."):
            continue
        for binding in cls.__dict__.get("BINDINGS", ()):
            if isinstance(binding, Binding) and binding.key not in seen:
                seen.add(binding.key)
                found.append(binding)
    return found


def key_rows(screen_class: type[Any], app_bindings: list[Binding]) -> list[tuple[str, str]]:
    """(keys, what they do) for ``screen_class`` and the app-wide keys, as the help screen lists them:
    keys that do the same (↑ and ↓ pick a setting, d and e change the erosion) share a row."""
    rows: dict[str, list[str]] = {}
    seen: set[str] = set()
    for binding in [*bindings_of(screen_class), *app_bindings]:
        if binding.key in seen:
            continue
        seen.add(binding.key)
        what = binding.tooltip or binding.description
        if binding.action.startswith("go("):
            what = "go to that step (1 Workspace ... 7 Export)"
        rows.setdefault(what, []).append(key_names(binding.key))
    return [(" / ".join(keys) if len(keys) < 7 else f"{keys[0]} … {keys[-1]}", what) for what, keys in rows.items()]


def help_text(screen: Screen[Any], app_bindings: list[Binding]) -> Text:
    """The help for ``screen``: title, what it does, keys, what comes next."""
    title = getattr(screen, "TITLE_TEXT", "") or getattr(screen, "HELP_TITLE", "") or type(screen).__name__
    text = Text()
    text.append(f"{title}\n", style="bold")
    does = getattr(screen, "ABOUT_TEXT", "") or getattr(screen, "HELP_TEXT", "")
    if does:
        text.append(f"{does}\n")
    text.append("\nKeys\n", style="bold")
    rows = key_rows(type(screen), app_bindings)
    width = max(len(keys) for keys, _ in rows) + 2
    for keys, what in rows:
        text.append(f"  {keys:<{width}}", style="bold")
        text.append(f"{what}\n")
    following = getattr(screen, "NEXT_TEXT", "")
    if following:
        text.append("\nWhat comes next\n", style="bold")
        text.append(f"{following}\n")
    return text


class HelpScreen(ModalScreen[None]):
    """The help of the screen it was opened on; Escape, ``?``, F1 or q closes it."""

    BINDINGS = [Binding("escape,question_mark,f1,q", "close", "Close help", id="help-close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen #help-body { width: 90%; max-width: 100; height: auto; max-height: 90%;
                            border: round $accent; padding: 0 1; background: $surface; }
    """

    def __init__(self, text: Text) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static(self.text, id="help-text")
        yield Footer(compact=True, show_command_palette=False)

    def action_close(self) -> None:
        self.dismiss(None)


def keys_markdown(screens: list[tuple[str, type[Any]]], app_bindings: list[Binding]) -> str:
    """Markdown tables of every screen's keys (docs/wizard-keys.md holds this text; a test keeps it equal)."""
    def table(rows: list[tuple[str, str]]) -> list[str]:
        return ["| Keys | What they do |", "| --- | --- |",
                *("| `" + keys.replace("|", "\\|") + f"` | {what} |" for keys, what in rows), ""]

    out = ["## Everywhere", "", "c and m open from the seven steps; the others work on every screen.", "",
           *table(key_rows(type("Everywhere", (), {}), app_bindings))]
    for title, cls in screens:
        out += [f"## {title}", ""]
        about = getattr(cls, "ABOUT_TEXT", "") or getattr(cls, "HELP_TEXT", "")
        if about:
            out += [about, ""]
        out += table(key_rows(cls, []))
        following = getattr(cls, "NEXT_TEXT", "")
        if following:
            out += [f"Next: {following}", ""]
    return "\n".join(out).rstrip() + "\n"


def wizard_screens() -> list[tuple[str, type[Any]]]:
    """(heading, class) of every screen with keys of its own, in the order a user meets them."""
    from tui.app import SwapWizardApp
    from tui.screens.compare import CompareScreen
    from tui.screens.mask_review import MaskReviewScreen
    from tui.screens.picture_view import PictureView
    from tui.steps import WIZARD_STEPS

    steps = [(f"{i} {label}", SwapWizardApp.SCREENS[name]) for i, (name, label) in enumerate(WIZARD_STEPS, 1)]
    return [*steps, ("Compare models (c)", CompareScreen), ("Mask review (m)", MaskReviewScreen),
            ("Full size (z)", PictureView), ("Help (? or F1)", HelpScreen)]
