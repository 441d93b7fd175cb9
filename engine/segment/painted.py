"""Checking a folder of painted masks before anything is imported (no OpenCV or torch: Pillow).

``check_folder(folder, side, sizes, root)`` is the one check of ``masks import``: the ``masks_import``
job runs it on the side's face records, and ``swapwizard masks import`` runs it first, on the crops
in ``data_<side>/aligned/`` (``crop_sizes``), so a user's bad folder is refused as a usage error
(exit 2, one sentence and a hint) before a job is queued. It returns every mask read as greyscale
uint8; an unknown name, a mask of the wrong size (read from the PNG header, before decoding), not a
PNG, not greyscale, a link, a folder or another special file named ``*.png`` refuses the whole folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import UserError

SUFFIX = "_mask.png"
CROP_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")


def crop_sizes(side_dir: Path) -> dict[str, int]:
    """``{crop stem: width}`` of the crops in ``side_dir/aligned/`` (image headers only)."""
    from PIL import Image, UnidentifiedImageError

    sizes: dict[str, int] = {}
    folder = Path(side_dir) / "aligned"
    if folder.is_dir():
        for path in folder.iterdir():
            if path.suffix.lower() in CROP_EXTENSIONS:
                try:
                    with Image.open(path) as image:
                        sizes[path.stem] = image.width
                except (OSError, UnidentifiedImageError, ValueError):
                    continue
    return sizes


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: What the first bytes of other images say they are (a mask saved in the wrong format keeps its name).
_OTHER_FORMATS = ((b"\xff\xd8\xff", "a JPEG"), (b"GIF8", "a GIF"), (b"BM", "a BMP"), (b"RIFF", "a WebP"),
                  (b"II*\x00", "a TIFF"), (b"MM\x00*", "a TIFF"))


def png_size(path: Path, hint: str) -> tuple[int, int]:
    """A PNG's width and height from its header (33 bytes: nothing is decoded); ``UserError`` when the
    file is not a PNG, with what it is when its first bytes say so."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(33)
    except OSError as exc:
        raise UserError(f"{path.name} cannot be read ({exc.strerror or exc}).", hint) from None
    if not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        what = next((name for magic, name in _OTHER_FORMATS if head.startswith(magic)), "")
        raise UserError(f"{path.name} is {what + ' image' if what else 'not a PNG image'}"
                        f"{' named .png' if what else ''}.", hint)
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def read_grey(path: Path, size: int) -> np.ndarray:
    """A painted mask as uint8 (size x size); ``UserError`` when it cannot be one. The size is checked
    in the header first, so a huge image is refused without being decoded."""
    from PIL import Image, UnidentifiedImageError

    hint = f"Save {path.name} as a greyscale PNG of {size} x {size} pixels (white = face, black = not face)."
    width, height = png_size(path, hint)
    if width != size or height != size:
        raise UserError(f"{path.name} is {width} x {height} pixels, but its face crop is {size} x {size}.", hint)
    try:
        with Image.open(path, formats=("PNG",)) as opened:
            image = opened.copy()
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        raise UserError(f"{path.name} is not a readable PNG image.", hint) from None
    if image.width != size or image.height != size:
        raise UserError(f"{path.name} is {image.width} x {image.height} pixels, but its face crop is "
                        f"{size} x {size}.", hint)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.clip(np.asarray(image, np.float64) / 257.0 + 0.5, 0, 255).astype(np.uint8)
    if image.mode in ("1", "L", "LA"):
        return np.ascontiguousarray(np.asarray(image.convert("L"), np.uint8))
    if image.mode not in ("RGB", "RGBA", "P"):
        raise UserError(f"{path.name} has pixels of a kind a mask cannot have ({image.mode}).", hint)
    colour = np.asarray(image.convert("RGB"), np.uint8)
    if _coloured(colour):
        raise UserError(f"{path.name} is not greyscale (it has colours).", hint)
    return np.ascontiguousarray(colour[..., 0])


def _coloured(rgb: np.ndarray) -> bool:
    return not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))


def check_folder(folder: Path, side: str, sizes: dict[str, int], root: Path | str) -> dict[str, np.ndarray]:
    """Every ``NAME_mask.png`` of ``folder`` read and checked against the faces ``sizes`` names
    (``{crop stem: crop size}``); one ``UserError`` for the first problem, nothing read half."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"There is no folder {folder}.", "Give the folder that swapwizard masks export wrote.")
    masks: list[tuple[str, Path]] = []
    unknown: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() != ".png":
            continue  # README.txt, editor backups
        if path.is_symlink() or not path.is_file():
            what = "a link" if path.is_symlink() else "a folder" if path.is_dir() else "not a regular file"
            raise UserError(f"{path.name} in {folder} is {what}; nothing was imported.",
                            f"Masks must be PNG files in the folder itself: replace {path.name} with the file, "
                            "or remove it.")
        if path.name.endswith(SUFFIX):
            name = path.name[: -len(SUFFIX)]
            (masks.append((name, path)) if name in sizes else unknown.append(path.name))
        elif path.stem not in sizes:
            unknown.append(path.name)
    if unknown:
        shown = ", ".join(unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
        raise UserError(f"{folder} holds images that match no {side} face: {shown}; nothing was imported.",
                        f"Keep the names swapwizard masks export --side {side} wrote (NAME.png and NAME_mask.png), "
                        "or remove the others.")
    if not masks:
        raise UserError(f"{folder} holds no masks (files named NAME{SUFFIX}).",
                        f"Export some first: swapwizard masks export {root} --side {side} --to {folder}")
    return {name: read_grey(path, sizes[name]) for name, path in masks}
