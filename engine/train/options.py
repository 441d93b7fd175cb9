"""Model options (fixed when a model is created) and training options (may change between runs), with presets.

Presets follow DeepFaceLab's SAEHD defaults where they exist:

- ``saehd``: 128 px, liae-ud, ae/e/d/d_mask dims 256/64/64/22 (the well-known defaults).
- ``quick``: 96 px, df-ud, small dims: a first usable result within about an hour on one GPU.
- ``tiny``: 64 px, df-ud, very small dims: for CPU tests and the learning check.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from engine.errors import UserError

ARCHS = ("df", "liae")


@dataclass
class ModelOptions:
    """The network's shape; stored with every checkpoint and never changed after creation."""

    arch: str = "liae-ud"
    resolution: int = 128
    ae_dims: int = 256
    e_dims: int = 64
    d_dims: int = 64
    d_mask_dims: int = 22
    #: What the aligned crops cover (from extraction): merging must crop the same way.
    face_type: str = "whole_face"

    @property
    def base(self) -> str:
        return self.arch.split("-")[0]

    @property
    def variants(self) -> str:
        return self.arch.split("-")[1] if "-" in self.arch else ""

    def validate(self) -> ModelOptions:
        if self.base not in ARCHS or any(v not in "ud" for v in self.variants):
            raise UserError(f"{self.arch!r} is not an architecture swapwizard knows.",
                            "Use df or liae, optionally with -u, -d or -ud (for example liae-ud).")
        step = 32 if "d" in self.variants else 16
        if self.resolution < step * 2 or self.resolution % step:
            raise UserError(f"Resolution {self.resolution} does not suit {self.arch}.",
                            f"Use a multiple of {step} of at least {step * 2} (the -d variant needs 32).")
        for name in ("ae_dims", "e_dims", "d_dims", "d_mask_dims"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1.", "Pick a preset, or give positive dims.")
        return self


@dataclass
class TrainOptions:
    """How to train; may differ from run to run of the same model."""

    batch_size: int = 8
    lr: float = 5e-5
    optimizer: str = "adamw"  # or "rmsprop"
    weight_decay: float = 0.0
    #: Linear learning-rate warm-up over this many iterations.
    warmup_iters: int = 100
    clip_grad: float = 0.0  # max gradient norm; 0 = off
    masked_training: bool = True
    eyes_mouth_prio: bool = True
    gan_power: float = 0.0
    #: Weight of the VGG19 perceptual loss (0 = off); needs cached weights (engine.train.perceptual).
    perceptual_power: float = 0.0
    random_warp: bool = True
    flip_src: bool = False
    flip_dst: bool = True
    hsv_power: float = 0.0  # 0 = off; 0.1 is a gentle jitter
    colour_transfer: str = "none"  # or "rct"
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    channels_last: bool = True  # used on CUDA only
    compile: bool = False


@dataclass
class Preset:
    model: ModelOptions
    train: TrainOptions = field(default_factory=TrainOptions)
    #: Target iteration when none is given (``--iters`` or ``[train] iters``).
    iters: int = 100_000


PRESETS: dict[str, Preset] = {
    "saehd": Preset(ModelOptions("liae-ud", 128, 256, 64, 64, 22), TrainOptions(batch_size=16, lr=5e-5), 100_000),
    "quick": Preset(ModelOptions("df-ud", 96, 128, 48, 48, 16), TrainOptions(batch_size=16, lr=1e-4), 20_000),
    "tiny": Preset(ModelOptions("df-ud", 64, 64, 16, 16, 8),
                   TrainOptions(batch_size=8, lr=3e-4, warmup_iters=20, channels_last=False), 300),
}


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UserError(f"There is no preset {name!r}.", f"Presets: {', '.join(PRESETS)}.")
    found = PRESETS[name]
    return Preset(dataclasses.replace(found.model), dataclasses.replace(found.train), found.iters)


def from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Build a dataclass from a dict, ignoring unknown keys (older or newer checkpoints)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})
