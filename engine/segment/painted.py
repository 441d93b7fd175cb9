"""Checking a folder of painted masks before anything is imported (no OpenCV or torch: Pillow).

``check_folder(folder, side, sizes, root)`` is the one check of ``masks import``: the ``masks_import``
job runs it on the side's face records, and ``swapwizard masks import`` runs it first, on the crops
in ``data_<side>/aligned/`` (``crop_sizes``), so a user's bad folder is refused as a usage error
(exit 2, one sentence and a hint) before a job is queued. It returns every mask read as greyscale
uint8; an unknown name, a mask of the wrong size or not greyscale refuses the whole folder.
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


def read_grey(path: Path, size: int) -> np.ndarray:
    """A painted mask as uint8 (size x size); ``UserError`` when it cannot be one."""
    from PIL import Image, UnidentifiedImageError

    hint = f"Save {path.name} as a greyscale PNG of {size} x {size} pixels (white = face, black = not face)."
    try:
        with Image.open(path) as opened:
            image = opened.copy()
    except (OSError, UnidentifiedImageError, ValueError):
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
        if not path.is_file() or path.suffix.lower() != ".png":
            continue  # README.txt, editor backups
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
