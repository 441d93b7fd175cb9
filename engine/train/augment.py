"""Training batches: sample order, then random warp, flip and colour, all batched on the device.

For each side a batch of raw uint8 faces (``N x 5 x R x R``: BGR, face mask, eyes-and-mouth mask)
becomes float tensors by two ``grid_sample`` calls:

- target, masks: a random affine (rotation +-10 degrees, scale +-10 %, shift +-5 %, optional flip);
- input: the same affine plus a smooth random grid warp (a coarse 3x3, 5x5 or 9x9 lattice of
  offsets of about a quarter cell, upsampled bicubically), which the network learns to undo.

Random numbers come from generators whose state goes into every checkpoint, so a resumed run
draws the same batches it would have drawn without the interruption.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from engine.faces.landmarks import expression
from engine.faces.split import training_faces
from engine.train.checkpoint import decode_bytes, encode_bytes
from engine.train.colour import hsv_jitter, rct
from engine.train.options import TrainOptions
from engine.train.samples import FaceSet
from engine.workspace import Workspace

ROTATION_DEG, SCALE, SHIFT = 10.0, 0.10, 0.05


@dataclass
class Batch:
    src_in: torch.Tensor
    src_target: torch.Tensor
    src_mask: torch.Tensor
    src_em: torch.Tensor
    dst_in: torch.Tensor
    dst_target: torch.Tensor
    dst_mask: torch.Tensor
    dst_em: torch.Tensor


class Sampler:
    """Shuffled epochs over one face set; its state is JSON (permutation and position)."""

    def __init__(self, faces: FaceSet, device: torch.device, seed: int) -> None:
        self.faces = faces
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(len(faces), generator=self.generator)
        self.pos = 0
        on_device = device.type == "cuda" and faces.data.numel() < _device_budget(device)
        self.data = faces.data.to(device) if on_device else faces.data
        self.device = device

    def take(self, n: int, like: torch.Tensor | None = None) -> torch.Tensor:
        """The next ``n`` faces (``like``: the other side's picks, used by ``MatchingSampler``)."""
        picks = []
        while n > 0:
            if self.pos >= len(self.order):
                self.order = torch.randperm(len(self.faces), generator=self.generator)
                self.pos = 0
            chunk = self.order[self.pos:self.pos + n]
            self.pos += len(chunk)
            n -= len(chunk)
            picks.append(chunk)
        return self.gather(torch.cat(picks))

    def gather(self, index: torch.Tensor) -> torch.Tensor:
        self.last = index
        if self.device.type != "cuda":
            return self.data.index_select(0, index)
        # Copies from pinned host memory are asynchronous; from pageable memory they would wait for the
        # GPU to finish all queued work, every batch.
        if self.data.device.type == "cuda":
            return self.data.index_select(0, index.pin_memory().to(self.device, non_blocking=True))
        return self.data.index_select(0, index).pin_memory().to(self.device, non_blocking=True)

    def state(self) -> dict:
        return {"rng": encode_bytes(self.generator.get_state()), "order": self.order.tolist(), "pos": self.pos,
                "count": len(self.faces)}

    def load_state(self, state: dict) -> bool:
        """Restore; False (and a fresh epoch) when the face set changed size since the save."""
        self.generator.set_state(decode_bytes(state["rng"]))
        if state.get("count") != len(self.faces):
            self.order = torch.randperm(len(self.faces), generator=self.generator)
            self.pos = 0
            return False
        self.order = torch.tensor(state["order"], dtype=torch.long)
        self.pos = int(state["pos"])
        return True


class MatchingSampler(Sampler):
    """src faces picked to match the dst faces of the same batch: for each dst face, one of the
    ``neighbours`` src faces nearest to it in mouth opening, eye opening and pose
    (``engine.faces.landmarks.expression``, each measure scaled by its spread over both sides). The
    src decoder then sees the dst's expressions as often as the dst has them, rather than the src
    clip's own mix (DeepFaceLab's uniform-yaw sampling, extended to the expression)."""

    def __init__(self, faces: FaceSet, device: torch.device, seed: int, src_features: np.ndarray,
                 dst_features: np.ndarray, neighbours: int = 8) -> None:
        super().__init__(faces, device, seed)
        both = np.concatenate([src_features, dst_features])
        spread = both.std(0) + 1e-6
        src, dst = src_features / spread, dst_features / spread
        distances = ((dst[:, None, :] - src[None, :, :]) ** 2).sum(-1)
        k = max(1, min(neighbours, len(src)))
        self.nearest = torch.from_numpy(np.argsort(distances, axis=1)[:, :k].copy())

    def take(self, n: int, like: torch.Tensor | None = None) -> torch.Tensor:
        if like is None or len(like) != n:
            return super().take(n)
        column = torch.randint(0, self.nearest.shape[1], (n,), generator=self.generator)
        return self.gather(self.nearest[like.cpu(), column])


def expression_features(ws: Workspace, side: str, faces: FaceSet) -> np.ndarray | None:
    """Each face's (mouth opening, eye opening, yaw, pitch) from its extraction record
    (``engine.faces.landmarks.expression``), in the face set's order; None when a face has no record."""
    if not ws.alignments_path(side).is_file():
        return None
    by_path = {str(ws.side_dir(side) / r.file): r for r in training_faces(ws, side) if r.file}
    records = [by_path.get(path) for path in faces.files]
    if not records or any(r is None for r in records):
        return None
    return np.stack([expression(r.aligned_landmarks()) for r in records])


def _device_budget(device: torch.device) -> int:
    free, _ = torch.cuda.mem_get_info(device)
    return free // 5


class Augmenter:
    """Turns raw uint8 batches into a training ``Batch`` on the device."""

    def __init__(self, resolution: int, options: TrainOptions, device: torch.device, seed: int) -> None:
        self.res = resolution
        self.options = options
        self.device = device
        self.generator = torch.Generator(device=device).manual_seed(seed)
        # Per-batch choices are drawn on the host: reading a device number back would stall the GPU.
        self.host_generator = torch.Generator().manual_seed(seed + 1)

    def state(self) -> dict:
        return {"rng": encode_bytes(self.generator.get_state()),
                "host_rng": encode_bytes(self.host_generator.get_state())}

    def load_state(self, state: dict) -> None:
        self.generator.set_state(decode_bytes(state["rng"]))
        self.host_generator.set_state(decode_bytes(state["host_rng"]))

    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, device=self.device, generator=self.generator)

    def _affine_grid(self, n: int, flip: bool) -> torch.Tensor:
        r = self._rand(n, 5)
        angle = (r[:, 0] * 2 - 1) * math.radians(ROTATION_DEG)
        scale = 1 + (r[:, 1] * 2 - 1) * SCALE
        shift = (r[:, 2:4] * 2 - 1) * SHIFT * 2  # grid coordinates span 2 units
        sign = torch.where(r[:, 4] < 0.5, -1.0, 1.0) if flip else torch.ones(n, device=self.device)
        cos, sin = angle.cos() / scale, angle.sin() / scale
        theta = torch.stack([torch.stack([cos * sign, -sin, shift[:, 0]], 1),
                             torch.stack([sin * sign, cos, shift[:, 1]], 1)], 1)
        return F.affine_grid(theta, [n, 1, self.res, self.res], align_corners=False)

    def _warp_offsets(self, n: int) -> torch.Tensor:
        cells = 2 ** int(torch.randint(1, 4, (1,), generator=self.host_generator))
        noise = torch.randn(n, 2, cells + 1, cells + 1, device=self.device, generator=self.generator)
        noise = noise * (0.24 * 2 / cells)
        noise[:, :, 0, :] = noise[:, :, -1, :] = noise[:, :, :, 0] = noise[:, :, :, -1] = 0
        offsets = F.interpolate(noise, size=(self.res, self.res), mode="bicubic", align_corners=True)
        return offsets.permute(0, 2, 3, 1)

    def side(self, raw: torch.Tensor, flip: bool, colour_ref: torch.Tensor | None = None,
             hsv: bool = False) -> tuple[torch.Tensor, ...]:
        n = raw.shape[0]
        x = raw.float().div_(255)
        image, masks = x[:, :3], x[:, 3:]
        if colour_ref is not None:
            ref = colour_ref.float().div_(255)
            image = rct(image, ref[:, :3], masks[:, :1], ref[:, 3:4])
        grid = self._affine_grid(n, flip)
        target_all = F.grid_sample(torch.cat([image, masks], 1), grid, mode="bilinear",
                                   padding_mode="border", align_corners=False)
        target, mask, em = target_all[:, :3], target_all[:, 3:4], target_all[:, 4:5]
        if self.options.random_warp:
            inp = F.grid_sample(image, grid + self._warp_offsets(n), mode="bilinear",
                                padding_mode="border", align_corners=False)
        else:
            inp = target
        if hsv and self.options.hsv_power > 0:
            inp, target = hsv_jitter([inp, target], self.options.hsv_power, self.generator)
        return inp, target, mask, em

    def __call__(self, raw_src: torch.Tensor, raw_dst: torch.Tensor) -> Batch:
        o = self.options
        ref = None
        if o.colour_transfer == "rct":
            # Each src sample takes the colours of a random dst sample of this batch.
            pick = torch.randint(0, raw_dst.shape[0], (raw_src.shape[0],), device=self.device,
                                 generator=self.generator)
            ref = raw_dst.index_select(0, pick)
        src = self.side(raw_src, o.flip_src, ref, hsv=True)
        dst = self.side(raw_dst, o.flip_dst)
        return Batch(*src, *dst)
