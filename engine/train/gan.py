"""The optional GAN term (``gan_power``): a patch discriminator on the src reconstruction.

A small PatchGAN (strided convolutions, one logit per patch) judges masked real src faces against
the model's src->src reconstructions; the generator's extra loss is ``gan_power`` times its
non-saturating adversarial loss. It sharpens detail late in training, as in DeepFaceLab.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchDiscriminator(nn.Module):
    def __init__(self, resolution: int, base: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin, ch = 3, base
        # Patches of roughly an eighth of the face: three stride-2 layers.
        for _ in range(3):
            layers += [nn.Conv2d(cin, ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            cin, ch = ch, min(ch * 2, 256)
        layers += [nn.Conv2d(cin, cin, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(cin, 1, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def generator_loss(disc: nn.Module, fake: torch.Tensor) -> torch.Tensor:
    logits = disc(fake).float()
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def discriminator_loss(disc: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    real_logits, fake_logits = disc(real).float(), disc(fake.detach()).float()
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))) / 2
