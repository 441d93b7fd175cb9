"""Preview grids: how the model does on a few fixed faces, as a PNG and a small PNG for terminals.

Columns: src, src->src, dst, dst->dst, dst->src (the swap), the swap's mask, the dst mask. Rows: the
first few faces of each set, unaugmented, so previews are comparable over time. Files go to
``<model>/previews/preview_<iteration>.png`` and ``..._small.png`` (at most 160 px wide), plus
``latest.png`` / ``latest_small.png``; the newest ``KEEP`` previews are kept.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import torch

from engine.atomic import atomic_write_bytes
from engine.train.device import autocast

ROWS, KEEP, SMALL_WIDTH = 4, 30, 160
COLUMNS = ("src", "src->src", "dst", "dst->dst", "dst->src", "mask swap", "mask dst")


def _png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return data.tobytes()


@torch.no_grad()
def render(trainer, src_raw: torch.Tensor, dst_raw: torch.Tensor) -> np.ndarray:
    """The grid image (uint8 BGR) for the given raw faces (N x 5 x R x R uint8)."""
    model = trainer.model
    was_training = model.training
    model.eval()
    try:
        src = src_raw[:, :3].float().div(255).to(trainer.device)
        dst = dst_raw[:, :3].float().div(255).to(trainer.device)
        n = min(len(src), len(dst))
        src, dst = src[:n], dst[:n]
        with autocast(trainer.device, trainer.dtype):
            src_src, _, dst_dst, dst_dstm, swap, swapm = model(src, dst, with_swap=True)
        tiles = [src, src_src, dst, dst_dst, swap, swapm.expand(-1, 3, -1, -1), dst_dstm.expand(-1, 3, -1, -1)]
        grid = torch.cat([torch.cat(list(t.float().clamp(0, 1)), dim=1) for t in tiles], dim=2)
        # Each column stacks the n faces downwards; the columns sit side by side: 3 x nR x colsR.
        image = (grid.permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    finally:
        model.train(was_training)
    return image


def write(model_dir: Path, iteration: int, image: np.ndarray) -> tuple[Path, Path]:
    folder = Path(model_dir) / "previews"
    folder.mkdir(parents=True, exist_ok=True)
    big = folder / f"preview_{iteration:09d}.png"
    small = folder / f"preview_{iteration:09d}_small.png"
    h, w = image.shape[:2]
    small_image = cv2.resize(image, (SMALL_WIDTH, max(1, round(h * SMALL_WIDTH / w))), interpolation=cv2.INTER_AREA)
    atomic_write_bytes(big, _png(image))
    atomic_write_bytes(small, _png(small_image))
    for source, name in ((big, "latest.png"), (small, "latest_small.png")):
        tmp = folder / f".{name}.tmp"
        shutil.copyfile(source, tmp)
        tmp.replace(folder / name)
    olds = sorted(p for p in folder.glob("preview_*.png") if not p.name.endswith("_small.png"))
    for old in olds[:-KEEP]:
        old.unlink(missing_ok=True)
        old.with_name(old.stem + "_small.png").unlink(missing_ok=True)
    return big, small
