"""The target picker: whose face to use on a side. Lists the people the extraction found (tracks of
one identity linked: ``engine.faces.identity``) with their thumbnail, and takes a photo path (or a
frame number) instead: the person most like it becomes the target.

Returns ``{"person": N}``, ``{"reference": "path or frame"}`` or None (cancelled).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from tui.widgets.picture import Picture


def person_line(person: dict[str, Any]) -> str:
    tracks = person.get("tracks") or []
    return (f"person {person['id']}: {person.get('faces', 0)} faces, frames {person.get('first')}-{person.get('last')}"
            f", {len(tracks)} track{'s' if len(tracks) != 1 else ''}")


class PersonPickerScreen(ModalScreen[dict[str, Any] | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="person-cancel"),
        Binding("slash", "focus_photo", "Photo path", id="person-photo"),
    ]

    def __init__(self, side: str, side_dir: Path | None, people: list[dict[str, Any]], selected: int | None) -> None:
        super().__init__()
        self.side = side
        self.side_dir = side_dir
        self.people = people
        self.selected = selected

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="person-dialog"):
            yield Static(f"Whose face to use on the {self.side} side?", classes="dialog-title")
            with Horizontal(id="person-row"):
                yield OptionList(*(Option(person_line(p) + ("  (target)" if p["id"] == self.selected else ""),
                                          id=str(p["id"])) for p in self.people), id="people")
                yield Picture(None, "no thumbnail", id="person-thumb")
            yield Input(placeholder="or a photo of the person (path), or a frame number, then Enter",
                        id="person-reference")
            yield Static("↑↓ move, Enter choose, / type a photo path, Escape cancel.", classes="dialog-keys")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        keys = [p["id"] for p in self.people]
        options.highlighted = keys.index(self.selected) if self.selected in keys else 0
        options.focus()
        self._show_thumb(options.highlighted)

    def _show_thumb(self, index: int | None) -> None:
        if index is None or not 0 <= index < len(self.people) or self.side_dir is None:
            return
        thumb = self.people[index].get("thumb")
        path = (self.side_dir / str(thumb)).resolve() if thumb else None
        # The header is read as plain JSON here: a thumbnail outside the side folder is not shown.
        inside = path is not None and path.is_relative_to(self.side_dir.resolve()) and path.is_file()
        self.query_one(Picture).show(path if inside else None)

    @on(OptionList.OptionHighlighted)
    def highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show_thumb(event.option_index)

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss({"person": int(event.option.id)})

    @on(Input.Submitted)
    def reference(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        if not text.isdigit() and not Path(text).expanduser().is_file():
            self.notify(f"There is no photo at {text}.", severity="warning", markup=False)
            return
        self.dismiss({"reference": text if text.isdigit() else str(Path(text).expanduser().resolve())})

    def action_focus_photo(self) -> None:
        self.query_one(Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)
