"""A picture drawn with half-block characters: works in any colour terminal, in tmux and over SSH.

Each cell shows two pixels: ``▀`` with the upper pixel as foreground and the lower as background.
With NO_COLOR the picture falls back to shades (`` ░▒▓█``) of its brightness. Images are decoded with
Pillow, imported only when the first picture is drawn so the wizard starts fast.
"""

from __future__ import annotations

from pathlib import Path

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

SHADES = " ░▒▓█"


def load_pixels(path: Path, width: int, height: int) -> tuple[int, int, list[tuple[int, int, int]]] | None:
    """The image at ``path`` scaled to fit ``width`` x ``height`` pixels, as (w, h, RGB list)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            scale = min(width / image.width, height / image.height)
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            data = image.resize(size, Image.Resampling.BILINEAR).tobytes()
            return size[0], size[1], [tuple(data[i:i + 3]) for i in range(0, len(data), 3)]
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def half_blocks(w: int, h: int, pixels: list[tuple[int, int, int]], no_color: bool = False) -> Text:
    """Text of ``ceil(h / 2)`` lines drawing the pixels two rows per line."""
    text = Text(no_wrap=True)
    for y in range(0, h, 2):
        for x in range(w):
            top = pixels[y * w + x]
            bottom = pixels[(y + 1) * w + x] if y + 1 < h else top
            if no_color:
                level = (sum(top) + sum(bottom)) / (6 * 255)
                text.append(SHADES[min(len(SHADES) - 1, int(level * len(SHADES)))])
            else:
                text.append("▀", Style(color=f"rgb({top[0]},{top[1]},{top[2]})",
                                       bgcolor=f"rgb({bottom[0]},{bottom[1]},{bottom[2]})"))
        if y + 2 < h:
            text.append("\n")
    return text


class Picture(Widget):
    """Shows the image file at ``path`` scaled to the widget's size (or a caption when there is none)."""

    DEFAULT_CSS = """
    Picture { width: 1fr; height: 1fr; content-align: center middle; }
    """

    path: reactive[Path | None] = reactive(None, always_update=True)
    """The image file to draw; None shows ``caption`` instead (set again to redraw a rewritten file)."""
    caption: reactive[str] = reactive("no picture yet")
    """What to show when there is no image (or it cannot be read)."""

    def __init__(self, path: Path | None = None, caption: str = "no picture yet", **kwargs) -> None:
        super().__init__(**kwargs)
        self.set_reactive(Picture.path, path)
        self.set_reactive(Picture.caption, caption)
        self._cache: tuple[tuple, Text] | None = None

    def render(self) -> Text:
        width, height = self.content_size.width, self.content_size.height
        if self.path is None or width < 2 or height < 1:
            return Text(self.caption, style="dim")
        try:
            stamp = self.path.stat().st_mtime_ns
        except OSError:
            return Text(self.caption, style="dim")
        key = (self.path, stamp, width, height, self.app.no_color)
        if self._cache is None or self._cache[0] != key:
            loaded = load_pixels(self.path, width, height * 2)
            if loaded is None:
                return Text(f"cannot read {self.path.name}", style="dim")
            self._cache = (key, half_blocks(*loaded, no_color=self.app.no_color))
        return self._cache[1]
