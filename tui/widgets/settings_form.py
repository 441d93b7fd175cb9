"""The merge settings as a keyboard form: up/down picks a setting, left/right changes it.

Each knob knows its step (numbers) or its choices (cycled); every change is checked with
``MergeSettings.check`` so the form never holds a value the merge would refuse. The knobs, their
labels, keys and steps are the [merge] declarations of engine/settings.py that have a label.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rich.text import Text
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from engine import settings as declared
from engine.errors import UserError
from engine.merge.settings import MergeSettings
from engine.settings import Setting


@dataclass(frozen=True)
class Knob:
    name: str
    label: str
    #: Keys that lower / raise (or cycle back / forward) it, in the spirit of DeepFaceLab's merger.
    keys: str
    step: float | None = None
    choices: tuple[str, ...] = ()
    #: What 0 means, when the declaration's help gives it a meaning ("0 = automatic": "auto").
    zero: str = ""

    @classmethod
    def of(cls, setting: Setting) -> Knob:
        keys = f"{setting.keys[0]} / {setting.keys[1]}" if setting.keys else ""
        zero = "auto" if "0 = automatic" in setting.help else ""
        return cls(setting.key, setting.label, keys, setting.step, tuple(setting.choices), zero)

    def shown(self, value: object) -> str:
        """The value as the form writes it: on / off, "auto" for an automatic 0, floats to 2 places."""
        if isinstance(value, bool):
            return "on" if value else "off"
        if self.zero and value == 0:
            return self.zero
        return f"{value:.2f}" if isinstance(value, float) else str(value)


#: The form's knobs: the [merge] settings declared with a label (engine/settings.py), in order.
KNOBS = tuple(Knob.of(s) for s in declared.wizard_form("merge"))


def adjusted(settings: MergeSettings, knob: Knob, direction: int) -> MergeSettings | None:
    """``settings`` with ``knob`` moved one step (or choice) in ``direction``; None if out of range."""
    value = getattr(settings, knob.name)
    if knob.choices:
        index = knob.choices.index(value) if value in knob.choices else 0
        new = knob.choices[(index + direction) % len(knob.choices)]
    elif isinstance(value, bool):
        new = not value
    elif isinstance(value, int):
        new = value + direction * int(knob.step or 1)
    else:
        new = round(value + direction * (knob.step or 0.1), 4)
    try:
        return dataclasses.replace(settings, **{knob.name: new}).check()
    except UserError:
        return None


class SettingsForm(Widget, can_focus=True):
    """Shows every knob; posts ``Changed`` after each change."""

    DEFAULT_CSS = """
    SettingsForm { width: 38; height: auto; }
    """

    @dataclass
    class Changed(Message):
        settings: MergeSettings

    settings: reactive[MergeSettings] = reactive(MergeSettings, always_update=True)
    """The values shown."""
    selected: reactive[int] = reactive(0)
    """Index in ``KNOBS`` of the highlighted knob."""

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        for index, knob in enumerate(KNOBS):
            shown = knob.shown(getattr(self.settings, knob.name))
            line = Text(f"{'▶' if index == self.selected else ' '} {knob.label:<14}{shown:<14}{knob.keys}")
            if index == self.selected:
                line.stylize("reverse" if self.has_focus else "bold")
            text.append_text(line)
            if index < len(KNOBS) - 1:
                text.append("\n")
        return text

    def move(self, delta: int) -> None:
        self.selected = (self.selected + delta) % len(KNOBS)

    def change(self, name: str | None, direction: int) -> None:
        """Step knob ``name`` (the highlighted one when None) by ``direction``."""
        knob = KNOBS[self.selected] if name is None else next(k for k in KNOBS if k.name == name)
        if name is not None:
            self.selected = KNOBS.index(knob)
        new = adjusted(self.settings, knob, direction)
        if new is None:
            self.app.bell()
            return
        self.settings = new
        self.post_message(self.Changed(new))
