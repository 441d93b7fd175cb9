"""The SAEHD training loss, after DeepFaceLab.

Per side: ``10 * DSSIM`` (Gaussian-window SSIM; from 256 px on, half from a window of res/11.6 and
half from one of res/23.2) ``+ 10 * MSE``, both inside the blurred face mask when masked training
is on; ``+ 300 * L1`` on the eyes-and-mouth region when that priority is on; ``+ 10 * MSE`` of the
learned mask against the face mask.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


@functools.lru_cache(maxsize=16)
def _gaussian_1d(size: int, sigma: float, device: str, dtype: torch.dtype) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return (g / g.sum()).to(device=device, dtype=dtype)


def _blur(x: torch.Tensor, size: int, sigma: float, padding: str = "valid") -> torch.Tensor:
    """Separable Gaussian filter per channel; ``valid`` (as SSIM uses) or ``same`` (reflect) borders."""
    g = _gaussian_1d(size, sigma, str(x.device), x.dtype)
    c = x.shape[1]
    if padding == "same":
        x = F.pad(x, [size // 2] * 4, mode="reflect")
    x = F.conv2d(x, g.view(1, 1, 1, size).expand(c, 1, 1, size), groups=c)
    return F.conv2d(x, g.view(1, 1, size, 1).expand(c, 1, size, 1), groups=c)


def dssim(a: torch.Tensor, b: torch.Tensor, filter_size: int, sigma: float = 1.5) -> torch.Tensor:
    """(1 - SSIM) / 2 per sample, Gaussian window, images in 0..1."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mu_a, mu_b = _blur(a, filter_size, sigma), _blur(b, filter_size, sigma)
    sigma_a = _blur(a * a, filter_size, sigma) - mu_a ** 2
    sigma_b = _blur(b * b, filter_size, sigma) - mu_b ** 2
    sigma_ab = _blur(a * b, filter_size, sigma) - mu_a * mu_b
    ssim = ((2 * mu_a * mu_b + c1) * (2 * sigma_ab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (sigma_a + sigma_b + c2))
    return ((1 - ssim) / 2).mean(dim=(1, 2, 3))


def ssim(a: torch.Tensor, b: torch.Tensor, filter_size: int = 11) -> torch.Tensor:
    """Mean SSIM per sample (for evaluation)."""
    return 1 - 2 * dssim(a, b, filter_size)


def blur_mask(mask: torch.Tensor, resolution: int) -> torch.Tensor:
    """The face mask softened at its edge, as masked training weights it (DFL: blur, then clip at 0.5, x2)."""
    radius = max(1, resolution // 32)
    size = 2 * radius * 2 + 1
    return (_blur(mask, size, float(radius), padding="same").clamp(0, 0.5) * 2)


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, pred_mask: torch.Tensor,
                        mask: torch.Tensor, eyes_mouth: torch.Tensor, resolution: int,
                        masked: bool, eyes_mouth_prio: bool) -> torch.Tensor:
    """One side's loss, a scalar (mean over the batch)."""
    pred, pred_mask = pred.float(), pred_mask.float()
    if masked:
        weight = blur_mask(mask, resolution)
        pred_m, target_m = pred * weight, target * weight
    else:
        pred_m, target_m = pred, target
    window = max(3, int(resolution / 11.6)) | 1
    if resolution >= 256:
        loss = 5 * dssim(pred_m, target_m, window) + 5 * dssim(pred_m, target_m, max(3, int(resolution / 23.2)) | 1)
    else:
        loss = 10 * dssim(pred_m, target_m, window)
    loss = loss + 10 * ((pred_m - target_m) ** 2).mean(dim=(1, 2, 3))
    if eyes_mouth_prio:
        loss = loss + 300 * (eyes_mouth * (pred - target)).abs().mean(dim=(1, 2, 3))
    loss = loss + 10 * ((pred_mask - mask) ** 2).mean(dim=(1, 2, 3))
    return loss.mean()
