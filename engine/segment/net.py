"""The segmenter's network: a small U-Net, most of its work at half the input resolution.

A strided first convolution halves the input (a mask is smooth: half resolution loses nothing a
blurred merge mask shows), four levels of two 3x3 convolutions with batch norm, skip connections,
and a bilinear upsampling of the logits back to the input size. ``width`` 8 (the default) is about
0.2 M parameters: 229 faces a second at 128 pixels on one busy CPU core (``swapwizard bench segment``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def _block(c_in: int, c_out: int, convs: int = 2) -> nn.Sequential:
    layers = _conv(c_in, c_out)
    for _ in range(convs - 1):
        layers += _conv(c_out, c_out)
    return nn.Sequential(*layers)


class UNet(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        c = [width, width * 3, width * 6, width * 8]
        self.stem = nn.Sequential(nn.Conv2d(3, c[0], 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c[0]),
                                  nn.ReLU(inplace=True))
        self.enc0 = _block(c[0], c[0], 1)
        self.enc1 = _block(c[0], c[1])
        self.enc2 = _block(c[1], c[2])
        self.enc3 = _block(c[2], c[3])
        self.dec2 = _block(c[3] + c[2], c[2])
        self.dec1 = _block(c[2] + c[1], c[1])
        self.dec0 = _block(c[1] + c[0], c[0], 1)
        self.head = nn.Conv2d(c[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: N x 3 x R x R, BGR in 0..1; returns N x 1 x R x R logits (visible face > 0)."""
        size = x.shape[-2:]
        e0 = self.enc0(self.stem(x - 0.5))
        e1 = self.enc1(F.max_pool2d(e0, 2))
        e2 = self.enc2(F.max_pool2d(e1, 2))
        e3 = self.enc3(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([F.interpolate(e3, size=e2.shape[-2:], mode="bilinear", align_corners=False), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, size=e1.shape[-2:], mode="bilinear", align_corners=False), e1], 1))
        d0 = self.dec0(torch.cat([F.interpolate(d1, size=e0.shape[-2:], mode="bilinear", align_corners=False), e0], 1))
        return F.interpolate(self.head(d0), size=size, mode="bilinear", align_corners=False)
