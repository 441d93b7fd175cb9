"""A picture: a real image where the terminal draws them (kitty graphics or sixel), else half-blocks.

How pictures are drawn is chosen once at start (``tui.graphics``). In ``kitty`` and ``sixel`` modes a
``textual-image`` widget inside this one draws the image at the size the layout gives it (aspect
kept, the spare pixels transparent), from the full-resolution file. In ``blocks`` mode (tmux without
passthrough, plain terminals, tests) each cell shows two pixels: ``▀`` with the upper pixel as
foreground and the lower as background; with NO_COLOR it falls back to shades (`` ░▒▓█``) of the
brightness. Images are decoded with Pillow, imported only when the first picture is drawn so the
wizard starts fast.

``z`` opens every picture of the screen full size (``tui/screens/picture_view.py``); ``w`` shows the
shown picture's path and copies it (OSC 52).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui import graphics

SHADES = " ░▒▓█"
#: The keys a picture answers (bound by the app so that every screen has them).
HINT = "z full size"


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


def fit_cells(image_w: int, image_h: int, cells_w: int, cells_h: int, cell_px: tuple[int, int]) -> tuple[int, int, int, int]:
    """The image fitted into ``cells_w`` x ``cells_h`` cells, aspect kept: (cells wide, cells high,
    pixels wide, pixels high) of the scaled image; the cells are the smallest box holding it."""
    px, py = cell_px
    scale = min(cells_w * px / image_w, cells_h * py / image_h)
    width, height = max(1, round(image_w * scale)), max(1, round(image_h * scale))
    return min(cells_w, -(-width // px)), min(cells_h, -(-height // py)), width, height


def fitted_image(path: Path, cells_w: int, cells_h: int, cell_px: tuple[int, int]) -> Any:
    """The picture scaled to fit the cells and centred on a transparent canvas of exactly those
    cells, so the image protocols draw it undistorted; None when the file cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGBA")
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    cw, ch, width, height = fit_cells(image.width, image.height, cells_w, cells_h, cell_px)
    scaled = image.resize((width, height), Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (cw * cell_px[0], ch * cell_px[1]), (0, 0, 0, 0))
    canvas.paste(scaled, ((canvas.width - width) // 2, (canvas.height - height) // 2))
    return canvas


def _image_widget_class() -> type[Widget] | None:
    """textual-image's widget for the chosen protocol (None: blocks)."""
    mode = graphics.current().mode
    if mode == "kitty":
        from textual_image.widget import TGPImage

        return TGPImage
    if mode == "sixel":
        from textual_image.widget import SixelImage

        return SixelImage
    return None


def _free_kitty_image(widget: Widget) -> None:
    """Delete the kitty image ``widget`` shows, placement and data, before it is replaced.

    textual-image's own clean-up sends ``a=d,I=<id>``, which names no ``d=`` target and so falls to
    "every visible placement": kitty leaves virtual (placeholder) placements out of that, so the old
    image would stay in the terminal's memory until its quota evicts it. ``d=I`` with ``i=`` frees it."""
    renderable = getattr(widget, "_renderable", None)
    image_id = getattr(renderable, "terminal_image_id", None)
    if graphics.current().mode != "kitty" or not image_id:
        return
    from textual_image.renderable import tgp

    tgp._send_tgp_message(a="d", d="I", i=image_id, q=2)


class Picture(Widget):
    """Shows the image file at ``path`` scaled to the widget's size (or a caption when there is none).

    ``small`` may name a low-resolution copy of the same picture (the trainer's 160 px preview, the
    merge preview's JPEG): half-blocks draw from it (faster to decode); real images, the full-size
    view and ``w`` always use ``path``.
    """

    DEFAULT_CSS = """
    Picture { width: 1fr; height: 1fr; content-align: center middle; align: center middle; }
    Picture > .picture-image { width: 1; height: 1; }
    """

    path: reactive[Path | None] = reactive(None, always_update=True)
    """The image file to draw; None shows ``caption`` instead (set again to redraw a rewritten file)."""
    caption: reactive[str] = reactive("no picture yet")
    """What to show when there is no image (or it cannot be read)."""

    def __init__(self, path: Path | None = None, caption: str = "no picture yet", *,
                 small: Path | None = None, title: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.set_reactive(Picture.path, path)
        self.set_reactive(Picture.caption, caption)
        self.small = small
        #: What the full-size view calls this picture ("train preview", "after"...).
        self.title = title
        self._cache: tuple[tuple, Text] | None = None
        self._image_key: tuple | None = None
        self._image: Widget | None = None
        self._shown = False  # the image widget holds the current picture

    def show(self, path: Path | None, small: Path | None = None) -> None:
        """Draw ``path`` (with ``small`` as its low-resolution copy for half-blocks)."""
        self.small = small
        self.path = path

    def on_mount(self) -> None:
        image_class = _image_widget_class()
        if image_class is not None:
            self._image = image_class(classes="picture-image")
            self._image.display = False
            self.mount(self._image)
        self._update_hint()

    def on_unmount(self) -> None:
        if self._image is not None:
            _free_kitty_image(self._image)
            self._image.image = None  # type: ignore[attr-defined]

    def watch_path(self) -> None:
        self._update_hint()
        if self._image is not None and self.is_mounted:
            self.call_after_refresh(self._update_image)

    def on_resize(self) -> None:
        if self._image is not None:
            self._update_image()

    def _update_hint(self) -> None:
        if "panel" in self.classes:
            self.border_subtitle = HINT if self.path is not None else ""

    def _stamp(self, path: Path | None) -> int | None:
        try:
            return path.stat().st_mtime_ns if path is not None else None
        except OSError:
            return None

    def _update_image(self) -> None:
        """Give the image widget the picture, fitted to this widget's content box."""
        image = self._image
        if image is None:
            return
        width, height = self.content_size.width, self.content_size.height
        stamp = self._stamp(self.path)
        key = (self.path, stamp, width, height)
        if key == self._image_key:
            return
        self._image_key = key
        picture = None
        if self.path is not None and stamp is not None and width >= 1 and height >= 1:
            cell_px = graphics.cell_pixels()
            picture = fitted_image(self._source_for(width * cell_px[0], height * cell_px[1]), width, height, cell_px)
        _free_kitty_image(image)
        if picture is None:
            image.image = None  # type: ignore[attr-defined]
            image.display = False
            self._shown = False
        else:
            cells_w, cells_h = picture.width // graphics.cell_pixels()[0], picture.height // graphics.cell_pixels()[1]
            image.styles.width, image.styles.height = cells_w, cells_h
            image.image = picture  # type: ignore[attr-defined]
            image.display = True
            self._shown = True
        self.refresh()

    def _source_for(self, width: int, height: int) -> Path:
        """The file to draw ``width`` x ``height`` pixels from: the small copy when it has enough pixels
        (a 1080p merge preview decodes in tens of milliseconds, its 480 px JPEG in a few), else ``path``."""
        assert self.path is not None
        if self.small is None or self._stamp(self.small) is None:
            return self.path
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(self.small) as small:  # reads the header only
                enough = small.width >= width or small.height >= height
        except (OSError, UnidentifiedImageError, ValueError):
            return self.path
        return self.small if enough else self.path

    def render(self) -> Text:
        width, height = self.content_size.width, self.content_size.height
        if self.path is None or width < 2 or height < 1:
            return Text(self.caption, style="dim")
        if self._image is not None:
            if self._image_key is None or self._image_key[:2] != (self.path, self._stamp(self.path)):
                self.call_after_refresh(self._update_image)
            return Text("" if self._shown else self.caption, style="dim")
        source = self.small if self.small is not None and self._stamp(self.small) is not None else self.path
        try:
            stamp = source.stat().st_mtime_ns
        except OSError:
            return Text(self.caption, style="dim")
        key = (source, stamp, width, height, self.app.no_color)
        if self._cache is None or self._cache[0] != key:
            loaded = load_pixels(source, width, height * 2)
            if loaded is None:
                return Text(f"cannot read {source.name}", style="dim")
            self._cache = (key, half_blocks(*loaded, no_color=self.app.no_color))
        return self._cache[1]
