"""A row of the newest face crops in a folder (aligned faces), each a ``Picture`` (``z`` opens them full size)."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from engine.workspace import IMAGE_EXTENSIONS
from tui.widgets.picture import Picture


def newest_images(folder: Path, count: int) -> list[Path]:
    """The last ``count`` images by name (extraction names crops in frame order)."""
    try:
        names = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    except OSError:
        return []
    return names[-count:]


class Thumbnails(Horizontal):
    """``count`` small pictures of the newest crops in ``folder``; ``reload()`` after new ones arrive."""

    DEFAULT_CSS = """
    Thumbnails { height: 7; }
    Thumbnails Picture { width: 14; height: 7; margin-right: 1; }
    """

    def __init__(self, label: str, count: int = 4, **kwargs) -> None:
        super().__init__(**kwargs)
        self.label = label
        self.count = count
        self.folder: Path | None = None

    def compose(self) -> ComposeResult:
        yield Static(self.label, classes="thumb-label")
        for _ in range(self.count):
            yield Picture(caption="")

    def reload(self, folder: Path | None) -> None:
        self.folder = folder
        images = newest_images(folder, self.count) if folder is not None else []
        for index, picture in enumerate(self.query(Picture)):
            picture.path = images[index] if index < len(images) else None
            picture.title = f"{self.label.splitlines()[0]} face {images[index].name}" if index < len(images) else ""
