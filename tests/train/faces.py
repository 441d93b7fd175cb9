"""Face crops for training tests.

``centre_crops`` cuts the middle of frames of the shipped sample clips (talking heads, face centred)
into ``WS/data_<side>/aligned/`` -- the stand-in used where a test must not depend on extraction.
``extracted_workspace`` runs the real extraction when it is available.
"""

from __future__ import annotations

from pathlib import Path

import cv2

from engine.workspace import Workspace

SAMPLES = Path(__file__).resolve().parents[2] / "engine" / "samples"


def centre_crops(ws: Workspace, side: str, count: int = 24, size: int = 128, start: int = 0, step: int = 2) -> list[Path]:
    capture = cv2.VideoCapture(str(SAMPLES / f"{side}.mp4"))
    folder = ws.aligned_dir(side)
    folder.mkdir(parents=True, exist_ok=True)
    written, index = [], 0
    while len(written) < count:
        ok, frame = capture.read()
        if not ok:
            break
        if index >= start and (index - start) % step == 0:
            h, w = frame.shape[:2]
            side_px = int(min(h, w) * 0.6)
            y0, x0 = (h - side_px) // 2 - h // 20, (w - side_px) // 2
            crop = cv2.resize(frame[y0:y0 + side_px, x0:x0 + side_px], (size, size), interpolation=cv2.INTER_AREA)
            path = folder / f"{index:06d}_0.png"
            cv2.imwrite(str(path), crop)
            written.append(path)
        index += 1
    capture.release()
    return written


def crops_workspace(root: Path, count: int = 24, size: int = 128) -> Workspace:
    ws = Workspace.create(root, SAMPLES / "src.mp4", SAMPLES / "dst.mp4")
    for side in ("src", "dst"):
        centre_crops(ws, side, count, size)
    return ws
