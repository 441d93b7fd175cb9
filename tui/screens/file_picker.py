"""A file browser to pick a video or an image folder; text only, so it works over SSH."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Footer, Input, Static

from engine.workspace import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS


class MediaTree(DirectoryTree):
    """Folders, videos and images; hidden files left out."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        wanted = VIDEO_EXTENSIONS + IMAGE_EXTENSIONS
        return [path for path in paths if not path.name.startswith(".")
                and (path.is_dir() or path.suffix.lower() in wanted)]


class FilePickerScreen(ModalScreen[Path | None]):
    """Returns the chosen video file or image folder, or None."""

    BINDINGS = [
        Binding("f", "pick_folder", "Use folder", id="pick-folder"),
        Binding("u", "up", "Parent", id="parent-folder"),
        Binding("slash", "focus_path", "Type path", id="type-path"),
        Binding("escape", "cancel", "Cancel", id="cancel-pick"),
    ]

    def __init__(self, title: str, start: Path) -> None:
        super().__init__()
        self.title_text = title
        self.start = start if start.is_dir() else Path.home()

    def compose(self) -> ComposeResult:
        with Vertical(id="picker", classes="dialog"):
            yield Static(self.title_text, classes="dialog-title")
            yield Static("Enter picks a video; f uses the highlighted folder of images; u goes up.",
                         classes="dialog-keys")
            yield MediaTree(self.start, id="picker-tree")
            yield Input(placeholder="or type a path and press Enter", id="picker-path")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one(MediaTree).focus()

    @on(DirectoryTree.FileSelected)
    def file_chosen(self, event: DirectoryTree.FileSelected) -> None:
        if event.path.suffix.lower() in VIDEO_EXTENSIONS:
            self.dismiss(event.path)
        else:
            self.notify("Pick a video, or a folder of images with f.", severity="warning")

    @on(Input.Submitted, "#picker-path")
    def path_typed(self, event: Input.Submitted) -> None:
        path = Path(event.value.strip()).expanduser()
        if path.exists():
            self.dismiss(path)
        else:
            self.notify(f"{path} does not exist.", severity="error", markup=False)

    def action_pick_folder(self) -> None:
        node = self.query_one(MediaTree).cursor_node
        if node is not None and node.data is not None:
            path = Path(node.data.path)
            self.dismiss(path if path.is_dir() else path.parent)

    def action_up(self) -> None:
        tree = self.query_one(MediaTree)
        tree.path = Path(tree.path).resolve().parent

    def action_focus_path(self) -> None:
        self.query_one("#picker-path", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)
