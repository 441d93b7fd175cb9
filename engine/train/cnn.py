"""The convolutional face swap of Korshunova et al., "Fast Face-swap Using Convolutional Neural
Networks" (ICCV 2017): what the write-up this project grew from calls faceswap's "VGG16 CNN".

Unlike the autoencoders (engine.train.models) it learns no code shared by two people. One feed-forward
*transformation network* turns a destination face into the source person directly, trained per pair
(destination -> source) with losses on VGG-19 features:

- **content**: the output's ``relu4_2`` features stay those of the destination face (pose, expression,
  framing are kept);
- **style**: every 3x3 patch of the output's ``relu3_1`` and ``relu4_1`` features is pulled toward its
  nearest patch (normalised cross-correlation) among the source faces of the batch, as in the paper's
  patch-based style loss (after Li and Wand 2016). The paper takes the style patches from source
  images of like pose; here the batch's source faces, which ``[train] src_sampling = "expression"``
  (the ``cnn`` preset's choice) matches to each destination face by pose and expression;
- **light**: the output keeps the destination's lighting. The paper measures lighting with a small
  network trained on the Extended Yale B faces, which is not available here; this loss compares the
  low-frequency luminance (the face blurred to a 1/16 grid) instead, an approximation that says the
  same thing (keep the shading, not the texture) more coarsely;
- a small total-variation term against high-frequency artefacts, as in the paper.

The network (``FaceSwapCNN``) is the paper's multi-scale architecture (after Ulyanov et al.'s texture
networks): the input face is downsampled to 8, 16, 32, ... px; each scale has a block of 3x3, 3x3 and
1x1 convolutions (batch norm, leaky ReLU); the coarsest output is upsampled and concatenated with the
next scale's, and so on up to full resolution, where a 1x1 convolution gives the RGB face. At 128 px
that is five branches and about 1 M parameters with ``e_dims = 32`` (the paper's width); 256 and 512 px
add a branch each.

VGG-19's ImageNet weights are needed and never downloaded: they are looked up as the perceptual loss
looks them up (engine.train.perceptual: ``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth``), and a cnn
model is refused before training starts when they are absent (``require_weights``). A user with
internet fetches them once with::

    python -c "import torch; torch.hub.load_state_dict_from_url('https://download.pytorch.org/models/vgg19-dcbb9e9d.pth')"

The model fits the engine's contract: ``forward(src, dst, with_swap)`` gives (src->cnn, mask,
dst->cnn, mask[, swap, mask]) and ``swap(dst)`` (face, mask, mask) for merging. It learns no mask
(the masks are all ones): merge it with a hull or segmenter mask.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import UserError
from engine.train import perceptual

#: Feature maps of torchvision's VGG-19 ``features`` (index of the ReLU).
RELU3_1, RELU4_1, RELU4_2 = 11, 20, 22
CONTENT_LAYER, STYLE_LAYERS = RELU4_2, (RELU3_1, RELU4_1)
#: Loss weights: content 1, style, light and total variation relative to it.
STYLE_WEIGHT, LIGHT_WEIGHT, TV_WEIGHT = 1.0, 10.0, 1e-4
#: Coarsest branch of the multi-scale network, in pixels.
COARSEST = 8


def require_weights() -> None:
    """``UserError`` (one sentence, the file and the command to fetch it) when VGG-19's weights are absent."""
    if perceptual.find_weights("vgg19") is None:
        name = perceptual.WEIGHT_FILES["vgg19"][0]
        raise UserError(
            f"The cnn model needs VGG-19's ImageNet weights, which are not on this machine (looked for {name} "
            f"in {perceptual.weights_dir()}); nothing was trained.",
            "swapwizard never downloads them. On a machine with internet run: python -c \"import torch; "
            f"torch.hub.load_state_dict_from_url('{perceptual.DOWNLOAD_URL.format(name=name)}')\" and copy "
            f"~/.cache/torch/hub/checkpoints/{name} into {perceptual.weights_dir()} (or set TORCH_HOME), "
            "or train another model (--arch df, liae or amp).")


def _block(cin: int, cout: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, kernel in enumerate((3, 3, 1)):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, kernel, padding=kernel // 2),
                   nn.BatchNorm2d(cout), nn.LeakyReLU(0.01)]
    return nn.Sequential(*layers)


class FaceSwapCNN(nn.Module):
    """The multi-scale transformation network: a dst face (BGR 0..1, NCHW) in, the src person out."""

    def __init__(self, options: Any) -> None:
        super().__init__()
        self.options = options
        width = int(options.e_dims)
        self.scales = int(math.log2(options.resolution // COARSEST)) + 1  # 128 px: 8, 16, 32, 64, 128
        self.branches = nn.ModuleList([_block(3, width) for _ in range(self.scales)])
        self.joins = nn.ModuleList([_block(width * (k + 1), width * (k + 1)) for k in range(1, self.scales)])
        self.out = nn.Conv2d(width * self.scales, 3, 1)
        #: Kept for the engine's merge contract (AMP's knob); the CNN ignores it.
        self.morph = 1.0
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.01, nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)

    def inter_modules(self) -> list[str]:
        return []

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-1]
        pyramid = [F.interpolate(x, size=size >> (self.scales - 1 - i), mode="area") if i < self.scales - 1 else x
                   for i in range(self.scales)]  # coarsest first
        y = self.branches[0](pyramid[0])
        for k in range(1, self.scales):
            y = F.interpolate(y, scale_factor=2, mode="nearest")
            y = self.joins[k - 1](torch.cat([y, self.branches[k](pyramid[k])], 1))
        return torch.sigmoid(self.out(y))

    def forward(self, src: torch.Tensor, dst: torch.Tensor, with_swap: bool = False) -> tuple[torch.Tensor, ...]:
        """(cnn(src), ones, cnn(dst), ones[, cnn(dst), ones]): the network applied to each side's faces
        (a source face should come out unchanged); the swap is ``cnn(dst)``."""
        out = self.transform(torch.cat([src, dst]))
        on_src, on_dst = out[: len(src)], out[len(src):]
        ones = torch.ones_like(on_dst[:, :1])
        result = (on_src, ones, on_dst, ones)
        return result + (on_dst, ones) if with_swap else result

    def swap(self, dst: torch.Tensor, morph: float | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        face = self.transform(dst)
        ones = torch.ones_like(face[:, :1])
        return face, ones, ones


def _luminance(bgr: torch.Tensor) -> torch.Tensor:
    return 0.114 * bgr[:, 0:1] + 0.587 * bgr[:, 1:2] + 0.299 * bgr[:, 2:3]


def patch_style_loss(out: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of each 3x3 patch of ``out`` to its nearest (cosine) patch of ``style``."""
    channels = out.shape[1]
    bank = F.unfold(style.detach(), 3).permute(0, 2, 1).reshape(-1, channels * 9)
    unit_bank = F.normalize(bank, dim=1)
    total = out.new_zeros((), dtype=torch.float32)
    for one in out:  # one image at a time: the similarity matrix is patches x bank
        patches = F.unfold(one[None], 3)[0].t()
        with torch.no_grad():
            nearest = (F.normalize(patches.detach(), dim=1) @ unit_bank.t()).argmax(1)
        total = total + (patches - bank[nearest]).pow(2).mean()
    return total / len(out)


class CNNLoss(nn.Module):
    """Content, patch-style, light and total-variation losses on frozen VGG-19 features."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        super().__init__()
        require_weights()
        features = perceptual.load_features("vgg19")
        self.features = features[: CONTENT_LAYER + 1].to(device)
        self.register_buffer("mean", torch.tensor(perceptual.MEAN, device=device).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(perceptual.STD, device=device).view(1, 3, 1, 1))

    def _maps(self, bgr: torch.Tensor) -> dict[int, torch.Tensor]:
        x = (bgr.float().flip(1) - self.mean) / self.std
        maps = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in (CONTENT_LAYER, *STYLE_LAYERS):
                maps[i] = x
        return maps

    def forward(self, swapped: torch.Tensor, dst: torch.Tensor, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(style loss, content + light + tv loss) of ``swapped`` = cnn(``dst``), styled after ``src`` faces."""
        out_maps = self._maps(swapped)
        with torch.no_grad():
            dst_maps = self._maps(dst)
            src_maps = self._maps(src)
        content = (out_maps[CONTENT_LAYER] - dst_maps[CONTENT_LAYER]).pow(2).mean()
        style = sum(patch_style_loss(out_maps[layer], src_maps[layer]) for layer in STYLE_LAYERS) / len(STYLE_LAYERS)
        grid = max(1, swapped.shape[-1] // 16)
        light = (F.adaptive_avg_pool2d(_luminance(swapped.float()), grid)
                 - F.adaptive_avg_pool2d(_luminance(dst.float()), grid)).pow(2).mean()
        tv = (swapped[..., 1:, :] - swapped[..., :-1, :]).abs().mean() + (swapped[..., 1:] - swapped[..., :-1]).abs().mean()
        return STYLE_WEIGHT * style, content + LIGHT_WEIGHT * light + TV_WEIGHT * tv


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
