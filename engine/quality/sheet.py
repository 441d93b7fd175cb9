"""Pictures of a comparison: side-by-side video frames and a contact sheet of face close-ups.

Every tile carries a caption bar (the destination, or the model's name and iteration), so a frame or
the sheet read on its own says which column is which. The writers around these (``compare``) label
the files as synthetic media.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

CAPTION_COLOUR, CAPTION_BG = (255, 255, 255), (40, 40, 40)
#: Largest tile height in the side-by-side video (a 1080p destination is shown at this height).
VIDEO_TILE_HEIGHT = 360
#: Side of a face close-up on the contact sheet.
SHEET_TILE = 192


def caption(tile: np.ndarray, text: str) -> np.ndarray:
    """The tile with a caption bar above it (a new array)."""
    width = tile.shape[1]
    scale = max(0.35, min(0.6, width / 500.0))
    (_, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    bar = np.full((th + base + 8, width, 3), CAPTION_BG, np.uint8)
    while len(text) > 3 and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > width - 8:
        text = text[:-2] + "~"  # shorten a long model name to fit the tile
    cv2.putText(bar, text, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, CAPTION_COLOUR, 1, cv2.LINE_AA)
    return np.vstack([bar, tile])


def video_tile_size(width: int, height: int) -> tuple[int, int]:
    """(w, h) of one tile of the side-by-side video: the frame scaled down to at most VIDEO_TILE_HEIGHT, even."""
    scale = min(1.0, VIDEO_TILE_HEIGHT / height)
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def side_by_side(frames: list[np.ndarray], captions: list[str]) -> np.ndarray:
    """One video frame: every frame scaled to a tile, captioned, in a row."""
    w, h = video_tile_size(frames[0].shape[1], frames[0].shape[0])
    tiles = [caption(cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA), c) for f, c in zip(frames, captions)]
    row = np.hstack(tiles)
    if row.shape[0] % 2:
        row = np.vstack([row, np.zeros((1, row.shape[1], 3), np.uint8)])
    return row


def face_box(record: Any, frame_shape: tuple[int, ...], grow: float = 1.6) -> tuple[int, int, int, int]:
    """A square around the face (the record's landmark box grown by ``grow``), clipped to the frame."""
    points = np.asarray(record.landmarks, np.float64)[:, :2]
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    side = max(x1 - x0, y1 - y0) * grow
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    height, width = frame_shape[:2]
    side = min(side, width, height)
    left = int(round(min(max(cx - side / 2, 0), width - side)))
    top = int(round(min(max(cy - side / 2, 0), height - side)))
    return left, top, left + int(side), top + int(side)


def close_up(frame: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return cv2.resize(frame[y0:y1, x0:x1], (SHEET_TILE, SHEET_TILE), interpolation=cv2.INTER_AREA)


def contact_sheet(rows: list[list[np.ndarray]], captions: list[str], row_labels: list[str]) -> np.ndarray:
    """A grid: one row per frame (face close-ups: destination, then each model), captions on top."""
    header = [caption(np.zeros((0, SHEET_TILE, 3), np.uint8), c) for c in captions]
    lines = [np.hstack(header)]
    for tiles, label in zip(rows, row_labels):
        row = np.hstack(tiles).copy()
        cv2.putText(row, label, (4, SHEET_TILE - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        lines.append(row)
    return np.vstack(lines)
