"""A picture full screen, at the best resolution the terminal gives (``z`` on any screen with pictures).

It shows the pictures of the screen it was opened from (the train preview grid, the merge screen's
before and after, the newest face crops, the compare contact sheet), one at a time, from their
full-resolution files: ``←`` / ``→`` move between them, ``w`` shows the path and copies it (OSC 52,
which most terminals and tmux with ``set-clipboard on`` pass to the clipboard), ``escape`` or ``z``
closes.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.widgets.picture import Picture


class PictureView(ModalScreen[None]):
    DEFAULT_CSS = """
    PictureView { background: $background; }
    PictureView #picture-view-title { height: 2; padding: 0 1; background: $panel; }
    PictureView #picture-view { width: 1fr; height: 1fr; }
    PictureView #picture-view-keys { height: 1; padding: 0 1; color: $text-muted; }
    """

    BINDINGS = [
        Binding("escape", "close", "Back", id="picture-view-close"),
        Binding("z", "close", "Back", show=False, id="picture-view-close-z"),
        Binding("q", "close", "Back", show=False, id="picture-view-close-q"),
        Binding("left", "move(-1)", "Previous", id="picture-view-prev"),
        Binding("right", "move(1)", "Next", id="picture-view-next"),
        Binding("w", "copy_path", "Path", id="picture-view-path"),
    ]

    def __init__(self, pictures: list[tuple[str, Path]], index: int = 0) -> None:
        super().__init__()
        self.pictures = pictures
        self.index = max(0, min(index, len(pictures) - 1))

    def compose(self) -> ComposeResult:
        yield Static(id="picture-view-title")
        yield Picture(caption="", id="picture-view")
        yield Static("escape back · ← → other pictures · w copy the path", id="picture-view-keys")

    def on_mount(self) -> None:
        self.show()

    @property
    def shown(self) -> tuple[str, Path]:
        return self.pictures[self.index]

    def show(self) -> None:
        title, path = self.shown
        size = ""
        try:
            from PIL import Image

            with Image.open(path) as image:
                size = f" · {image.width}x{image.height}"
        except Exception:  # noqa: BLE001 - a file being rewritten: the picture says it cannot be read
            pass
        count = f"{self.index + 1}/{len(self.pictures)} · " if len(self.pictures) > 1 else ""
        # The path on a line of its own: after a long title it was cut ("448x256 ·").
        self.query_one("#picture-view-title", Static).update(Text.assemble((f"{count}{title}", "bold"), f"{size}\n{path}"))
        self.query_one(Picture).show(path)

    def action_move(self, delta: int) -> None:
        if len(self.pictures) > 1:
            self.index = (self.index + delta) % len(self.pictures)
            self.show()

    def action_copy_path(self) -> None:
        copy_path(self, self.shown[1])

    def action_close(self) -> None:
        self.dismiss(None)


def copy_path(node, path: Path) -> None:
    """Show ``path`` in a notice and put it on the clipboard (OSC 52)."""
    node.app.copy_to_clipboard(str(path))
    node.notify(f"{path}\n(copied to the clipboard where the terminal allows it)", title="Picture path", timeout=10,
                markup=False)


def pictures_of(screen) -> list[tuple[str, Path]]:
    """(title, full-resolution path) of every picture on ``screen`` that shows one."""
    found = list(getattr(screen, "full_pictures", lambda: [])())  # pictures a screen has no room to draw
    for picture in screen.query(Picture):
        if picture.path is not None and picture.path.is_file():
            found.append((picture.title or picture.path.name, picture.path))
    return found


def open_pictures(app) -> None:
    """``z``: the screen's pictures full size (a notice when it has none)."""
    screen = app.screen
    if isinstance(screen, PictureView):
        return
    pictures = pictures_of(screen)
    if not pictures:
        app.notify("No picture on this screen yet.", severity="warning")
        return
    focused = app.focused
    index = next((i for i, (_, path) in enumerate(pictures)
                  if isinstance(focused, Picture) and focused.path == path), 0)
    app.push_screen(PictureView(pictures, index))


def copy_picture_path(app) -> None:
    """``w``: the path of the screen's (first) picture, in a notice and on the clipboard."""
    if isinstance(app.screen, PictureView):
        return
    pictures = pictures_of(app.screen)
    if not pictures:
        app.notify("No picture on this screen yet.", severity="warning")
        return
    if len(pictures) > 1:
        paths = "\n".join(f"{title}: {path}" for title, path in pictures)
        app.copy_to_clipboard(" ".join(str(path) for _, path in pictures))
        app.notify(paths, title="Picture paths", timeout=12, markup=False)
        return
    copy_path(app, pictures[0][1])
