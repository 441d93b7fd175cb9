"""Colour for training samples, batched in torch on the training device.

- ``rct``: Reinhard colour transfer in L*a*b* (per-channel mean and spread measured under the face
  mask), the same method as ``engine.merge.colour.rct`` (which works on one float32 crop with cv2,
  for merging); this one recolours a whole batch of src samples toward random dst samples on the
  GPU, so colour augmentation never waits on the CPU.
- ``hsv_jitter``: random hue rotation, saturation and brightness scaling (hue rotated in the YIQ
  plane, which needs no branchy HSV conversion and gives the same effect).

Images are N x 3 x H x W BGR in 0..1.
"""

from __future__ import annotations

import torch

_RGB2XYZ = torch.tensor([[0.412453, 0.357580, 0.180423],
                         [0.212671, 0.715160, 0.072169],
                         [0.019334, 0.119193, 0.950227]])
_XYZ2RGB = torch.linalg.inv(_RGB2XYZ)
_WHITE = torch.tensor([0.950456, 1.0, 1.088754])


def bgr_to_lab(bgr: torch.Tensor) -> torch.Tensor:
    rgb = bgr.flip(1).clamp(0, 1)
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = torch.einsum("ij,njhw->nihw", _RGB2XYZ.to(bgr), linear) / _WHITE.to(bgr).view(1, 3, 1, 1)
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-12) ** (1 / 3), 7.787 * xyz + 16 / 116)
    lum = 116 * f[:, 1] - 16
    a = 500 * (f[:, 0] - f[:, 1])
    b = 200 * (f[:, 1] - f[:, 2])
    return torch.stack([lum, a, b], 1)


def lab_to_bgr(lab: torch.Tensor) -> torch.Tensor:
    fy = (lab[:, 0] + 16) / 116
    fx = fy + lab[:, 1] / 500
    fz = fy - lab[:, 2] / 200
    f = torch.stack([fx, fy, fz], 1)
    xyz = torch.where(f > 0.206893, f ** 3, (f - 16 / 116) / 7.787) * _WHITE.to(lab).view(1, 3, 1, 1)
    linear = torch.einsum("ij,njhw->nihw", _XYZ2RGB.to(lab), xyz).clamp(0, 1)
    rgb = torch.where(linear > 0.0031308, 1.055 * linear.clamp_min(1e-12) ** (1 / 2.4) - 0.055, 12.92 * linear)
    return rgb.flip(1).clamp(0, 1)


def _masked_stats(lab: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    weight = (mask > 0.5).to(lab)
    count = weight.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
    mean = (lab * weight).sum(dim=(2, 3), keepdim=True) / count
    var = ((lab - mean) ** 2 * weight).sum(dim=(2, 3), keepdim=True) / count
    return mean, var.sqrt()


def rct(source: torch.Tensor, target: torch.Tensor, source_mask: torch.Tensor,
        target_mask: torch.Tensor) -> torch.Tensor:
    """Recolour each ``source`` image so its L*a*b* statistics under its mask match ``target``'s."""
    src_lab, tgt_lab = bgr_to_lab(source.float()), bgr_to_lab(target.float())
    s_mean, s_std = _masked_stats(src_lab, source_mask)
    t_mean, t_std = _masked_stats(tgt_lab, target_mask)
    out = (src_lab - s_mean) * (t_std / s_std.clamp_min(1e-6)) + t_mean
    out = torch.cat([out[:, :1].clamp(0, 100), out[:, 1:].clamp(-127, 127)], 1)
    return lab_to_bgr(out).to(source.dtype)


_BGR2YIQ = torch.tensor([[0.114, 0.587, 0.299],
                         [-0.32134392, -0.27455667, 0.59590059],
                         [0.31119955, -0.52273617, 0.21153661]])
# Inverted once on the host: torch.linalg.inv on a GPU checks its result and so waits for the device.
_YIQ2BGR = torch.linalg.inv(_BGR2YIQ)


def hsv_jitter(images: list[torch.Tensor], power: float, generator: torch.Generator) -> list[torch.Tensor]:
    """The same random hue/saturation/value change applied to each tensor of ``images`` (a sample's
    input and its target must change together)."""
    n, device = images[0].shape[0], images[0].device
    rand = torch.rand(n, 3, device=device, generator=generator) * 2 - 1
    angle = rand[:, 0] * power * torch.pi
    sat = 1 + rand[:, 1] * power
    val = 1 + rand[:, 2] * power
    cos, sin = angle.cos(), angle.sin()
    rot = torch.zeros(n, 3, 3, device=device)
    rot[:, 0, 0] = val
    rot[:, 1, 1] = cos * sat
    rot[:, 1, 2] = -sin * sat
    rot[:, 2, 1] = sin * sat
    rot[:, 2, 2] = cos * sat
    matrix = _YIQ2BGR.to(device) @ rot @ _BGR2YIQ.to(device)  # n x 3 x 3, BGR -> BGR
    return [torch.einsum("nij,njhw->nihw", matrix.to(img.dtype), img).clamp(0, 1) for img in images]
