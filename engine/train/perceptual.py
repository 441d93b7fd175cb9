"""A perceptual loss: distances between VGG feature maps, from weights already on this machine.

The convolutional face swap of Korshunova et al. (2017) trains with such a loss (VGG-19 features);
it rewards getting edges and textures right rather than the pixel-exact average that blurs. The
network is built here in plain torch (torchvision is not a dependency): the ``features`` part of
VGG16 or VGG19 with the layer numbering torchvision uses, so its published weight files load as
they are. Nothing is downloaded: the weights are looked up in the torch hub cache,

    $TORCH_HOME/hub/checkpoints/   (default ~/.cache/torch/hub/checkpoints/)

under the names torchvision saves them (``vgg16-397923af.pth``, ``vgg19-dcbb9e9d.pth``), or as
``vgg16.safetensors`` / ``vgg19.safetensors``. ``.pth`` files are read with
``torch.load(weights_only=True)`` (no code runs). When none is there, ``UserError`` says where to
put which file.

    loss_fn = PerceptualLoss("vgg19", device)
    loss = loss_fn(prediction, target, mask)      # BGR 0..1, N x 3 x H x W; mask N x 1 x H x W
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import UserError

#: Channels per convolution, "M" for a 2x2 max-pool (torchvision's configurations D and E).
CONFIGS = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}
#: File names in the torch hub cache, the torchvision download first.
WEIGHT_FILES = {"vgg16": ("vgg16-397923af.pth", "vgg16.safetensors"),
                "vgg19": ("vgg19-dcbb9e9d.pth", "vgg19.safetensors")}
DOWNLOAD_URL = "https://download.pytorch.org/models/{name}"
#: ImageNet statistics the VGG weights were trained with (RGB).
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
#: Feature maps compared: the last ReLU of each of the first four blocks (relu1_2, relu2_2, relu3_x, relu4_x).
BLOCKS = 4


def weights_dir() -> Path:
    """Where torch (and torchvision) keep downloaded weights: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_weights(arch: str) -> Path | None:
    for name in WEIGHT_FILES[arch]:
        path = weights_dir() / name
        if path.is_file():
            return path
    return None


def build_features(arch: str) -> nn.Sequential:
    """VGG's convolutional part, numbered as torchvision numbers it (``features.<i>.weight``)."""
    layers: list[nn.Module] = []
    channels = 3
    for item in CONFIGS[arch]:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=False)]
            channels = int(item)
    return nn.Sequential(*layers)


def _read(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and safetensors raise many kinds; all mean "unusable file"
        raise UserError(f"The VGG weights in {path} could not be read ({str(exc)[:160]}).",
                        "Replace the file with a fresh copy of the torchvision download.") from None
    if not isinstance(state, dict):
        raise UserError(f"{path} does not hold a VGG state dict.", "Use the file torchvision downloads.")
    return state


def load_features(arch: str = "vgg19") -> nn.Sequential:
    """The VGG feature layers with the cached weights loaded (frozen); ``UserError`` when missing."""
    if arch not in CONFIGS:
        raise UserError(f"{arch!r} is not a VGG the perceptual loss knows.", "Use vgg16 or vgg19.")
    path = find_weights(arch)
    if path is None:
        names = " or ".join(WEIGHT_FILES[arch])
        raise UserError(
            f"The {arch.upper()} weights for the perceptual loss are not on this machine "
            f"(looked for {names} in {weights_dir()}).",
            f"swapwizard never downloads them. Fetch {DOWNLOAD_URL.format(name=WEIGHT_FILES[arch][0])} on a "
            f"machine with internet and copy it into {weights_dir()} (or point TORCH_HOME at a folder whose "
            "hub/checkpoints holds it), or train without the perceptual loss.")
    features = build_features(arch)
    state = _read(path)
    wanted = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    try:
        features.load_state_dict(wanted, strict=True)
    except RuntimeError as exc:
        raise UserError(f"{path.name} does not fit {arch.upper()} ({str(exc)[:160]}).",
                        f"Use torchvision's {WEIGHT_FILES[arch][0]} (not a batch-norm variant).") from None
    features.eval()
    for parameter in features.parameters():
        parameter.requires_grad_(False)
    return features


class PerceptualLoss(nn.Module):
    """Mean absolute difference of VGG feature maps (each block weighted equally), inside an optional mask."""

    def __init__(self, arch: str = "vgg19", device: torch.device | str = "cpu") -> None:
        super().__init__()
        features = load_features(arch)
        # Cut after the last ReLU of block BLOCKS: deeper layers cost time and add little for faces.
        pools = [i for i, layer in enumerate(features) if isinstance(layer, nn.MaxPool2d)]
        self.taps = [p - 1 for p in pools[:BLOCKS]]
        self.features = features[: self.taps[-1] + 1].to(device)
        self.register_buffer("mean", torch.tensor(MEAN, device=device).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD, device=device).view(1, 3, 1, 1))

    def _maps(self, bgr: torch.Tensor) -> list[torch.Tensor]:
        x = (bgr.flip(1) - self.mean) / self.std  # BGR -> RGB, ImageNet normalisation
        maps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                maps.append(x)
        return maps

    def forward(self, prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        pred_maps = self._maps(prediction.float())
        with torch.no_grad():
            target_maps = self._maps(target.float())
        total = prediction.new_zeros((), dtype=torch.float32)
        for p, t in zip(pred_maps, target_maps):
            diff = (p - t).abs()
            if mask is not None:
                weight = F.interpolate(mask.float(), size=diff.shape[-2:], mode="area")
                total = total + (diff * weight).sum() / (weight.sum() * diff.shape[1] + 1e-6)
            else:
                total = total + diff.mean()
        return total / len(pred_maps)
