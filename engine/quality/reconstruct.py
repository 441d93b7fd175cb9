"""Reconstruction quality on held-out faces: dst->dst and src->src, SSIM and PSNR inside the face mask.

The model turns each held-out aligned crop of a side back into itself (its own side's decoder); the
result is compared with the crop inside the face mask the extraction recorded. Held-out faces are the
frames training never saw (``engine.faces.split``), so this measures how the model generalises, not
how well it memorised. Used by the quality job (a loaded model) and during training (the trainer's
network, in memory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from engine.faces.records import face_mask
from engine.faces.split import held_out
from engine.quality import metrics
from engine.quality.frames import target_records
from engine.workspace import Workspace

#: At most this many held-out faces per side are reconstructed (evenly spread over the held-out ones).
MAX_FACES = 64


@dataclass
class HeldOutFaces:
    side: str
    crops: np.ndarray  # N x R x R x 3 uint8 BGR
    masks: np.ndarray  # N x R x R float32 0..1
    frames: list[int]
    #: N x 468 x 2 mesh landmarks in crop pixels (for the identity of swaps, engine.quality.likeness)
    landmarks: np.ndarray | None = None


def held_out_faces(ws: Workspace, side: str, resolution: int, limit: int = MAX_FACES) -> HeldOutFaces:
    """The side's held-out aligned crops at ``resolution``, with their face masks (may be empty)."""
    records = target_records(ws, side)
    held = set(held_out(ws, side, records).frames)  # not their guard faces: those are only kept from training
    return _faces(ws, side, resolution, [r for r in records if r.frame in held], limit)


def clip_faces(ws: Workspace, side: str, resolution: int, limit: int = 100_000) -> HeldOutFaces:
    """Every target face of the side, training faces included (what a merge of the whole clip shows),
    evenly thinned to ``limit``; the same shape as ``held_out_faces``."""
    return _faces(ws, side, resolution, target_records(ws, side), limit)


def _faces(ws: Workspace, side: str, resolution: int, records: list[Any], limit: int) -> HeldOutFaces:
    chosen = [r for r in records if r.file and (ws.side_dir(side) / r.file).is_file()]
    if len(chosen) > limit:
        chosen = [chosen[round(i * (len(chosen) - 1) / max(1, limit - 1))] for i in range(limit)]
    crops, masks, frames, points = [], [], [], []
    for record in chosen:
        image = cv2.imread(str(ws.side_dir(side) / record.file), cv2.IMREAD_COLOR)
        if image is None:
            continue
        interp = cv2.INTER_AREA if image.shape[0] > resolution else cv2.INTER_CUBIC
        crops.append(cv2.resize(image, (resolution, resolution), interpolation=interp))
        masks.append(face_mask(record, resolution).astype(np.float32) / 255.0)
        frames.append(int(record.frame))
        points.append(record.aligned_landmarks(resolution).astype(np.float32))
    shape = (0, resolution, resolution)
    return HeldOutFaces(side, np.stack(crops) if crops else np.zeros((*shape, 3), np.uint8),
                        np.stack(masks) if masks else np.zeros(shape, np.float32), frames,
                        np.stack(points) if points else np.zeros((0, 468, 2), np.float32))


def reconstruct(network: Any, crops: np.ndarray, side: str, device: Any, batch: int = 16) -> np.ndarray:
    """``side``->``side`` reconstructions (N x R x R x 3 float32 0..1) by a ``SwapAutoencoder``."""
    import torch

    outputs = []
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(crops), batch):
                x = torch.from_numpy(crops[start:start + batch]).to(device).permute(0, 3, 1, 2).float().div_(255)
                # forward gives (src->src, mask, dst->dst, mask, ...): the reconstructions are 0 and 2.
                outputs_all = network(x, x)
                out = outputs_all[0] if side == "src" else outputs_all[2]
                outputs.append(out.float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy())
    finally:
        network.train(was_training)
    return np.concatenate(outputs) if outputs else np.zeros((0, *crops.shape[1:]), np.float32)


def reconstruction_metrics(network: Any, faces: dict[str, HeldOutFaces], device: Any,
                           samples: dict[str, dict[int, float]] | None = None) -> dict[str, Any]:
    """``ssim_src``, ``psnr_src``, ``ssim_dst``, ``psnr_dst`` (means over the held-out faces; None
    for a side without held-out faces) and how many faces each side had. ``samples``, when given,
    receives the per-face values (metric -> frame index -> value)."""
    result: dict[str, Any] = {}
    for side in ("src", "dst"):
        held = faces.get(side)
        if held is None or not len(held.crops):
            result.update({f"ssim_{side}": None, f"psnr_{side}": None, f"faces_{side}": 0})
            continue
        predicted = reconstruct(network, held.crops, side, device)
        ssims = [metrics.masked_ssim(p, c, m) for p, c, m in zip(predicted, held.crops, held.masks)]
        psnrs = [metrics.masked_psnr(p, c, m) for p, c, m in zip(predicted, held.crops, held.masks)]
        if samples is not None:
            samples[f"ssim_{side}"] = dict(zip(held.frames, ssims))
            samples[f"psnr_{side}"] = dict(zip(held.frames, psnrs))
        result.update({f"ssim_{side}": round(float(np.mean(ssims)), 5), f"psnr_{side}": round(float(np.mean(psnrs)), 3),
                       f"faces_{side}": len(held.crops)})
    return result
