"""Model options (fixed when a model is created) and training options (may change between runs), with presets.

``PRESETS`` below is the one place a preset is written: its shape, training options, target iteration
and one-line description (saehd follows DeepFaceLab's SAEHD defaults, amp its AMP, cnn Korshunova et al.
2017). Print them with ``python -m engine.train.options``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import settings
from engine.errors import UserError

ARCHS = ("df", "liae", "amp", "cnn")


@dataclass
class ModelOptions(settings.values_class("ModelShape", "train", group="model", module=__name__)):
    """The network's shape ([train] settings of group "model": arch, resolution, ae/e/d/d_mask dims);
    stored with every checkpoint and never changed after creation."""

    #: What the aligned crops cover (from extraction): merging must crop the same way.
    face_type: str = "whole_face"

    @property
    def base(self) -> str:
        return self.arch.split("-")[0]

    @property
    def variants(self) -> str:
        return self.arch.split("-")[1] if "-" in self.arch else ""

    def validate(self) -> ModelOptions:
        if self.base not in ARCHS or any(v not in "ud" for v in self.variants) or (self.base == "cnn" and self.variants):
            raise UserError(f"{self.arch!r} is not an architecture swapwizard knows.",
                            "Use df, liae or amp, optionally with -u, -d or -ud (for example liae-ud), or cnn.")
        if self.base == "cnn":
            if self.resolution < 64 or self.resolution % 16:
                raise UserError(f"Resolution {self.resolution} does not suit cnn.",
                                "Use a multiple of 16 of at least 64 (128 is the paper's).")
            return self
        step = 32 if "d" in self.variants else 16
        if self.resolution < step * 2 or self.resolution % step:
            raise UserError(f"Resolution {self.resolution} does not suit {self.arch}.",
                            f"Use a multiple of {step} of at least {step * 2} (the -d variant needs 32).")
        return self


#: How to train ([train] settings of group "options": batch size, lr, losses, augmentation...); may
#: differ from run to run of the same model. Declared, with ranges and help, in engine/settings.py.
TrainOptions = settings.values_class("TrainOptions", "train", group="options", module=__name__)


@dataclass(kw_only=True)
class RunConfig(settings.values_class("RunSettings", "train", group="run", module=__name__)):
    """Everything a training run needs, resolved (engine.train.resolve): the model's folder, shape and
    training options, plus the loop's schedule ([train] settings of group "run": device, save and
    preview intervals, backups, seed, threads). Plain data: the DDP worker gets it as JSON."""

    model_dir: Path
    model_options: ModelOptions
    train_options: TrainOptions
    #: Stop at this iteration (absolute, as DeepFaceLab's target iteration); 0 trains until stopped.
    target_iters: int = 0
    #: A folder of aligned faces (or a workspace) to pretrain on: both sides come from it.
    pretrain_faces: str = ""
    preset: str = ""
    #: Test switches: make the loss NaN / raise out-of-memory once at this iteration (-1 = never).
    debug_nan_at: int = -1
    debug_oom_at: int = -1
    max_rollbacks: int = 5

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "model_dir": str(self.model_dir)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RunConfig:
        return cls(**{**raw, "model_dir": Path(raw["model_dir"]), "model_options": ModelOptions(**raw["model_options"]),
                      "train_options": TrainOptions(**raw["train_options"])})


@dataclass
class Preset:
    """A preset: the one place its shape, training options, target and description are written. The CLI,
    the wizard's new-model screen and the docs' settings reference all show these (``line()``)."""

    model: ModelOptions
    train: TrainOptions = field(default_factory=TrainOptions)
    #: Target iteration when none is given (``--iters`` or ``[train] iters``).
    iters: int = 100_000
    #: What it is for, in one short sentence.
    description: str = ""

    def shape(self) -> str:
        m = self.model
        dims = f"e-dims {m.e_dims}" if m.base == "cnn" else f"{m.ae_dims}/{m.e_dims}/{m.d_dims}/{m.d_mask_dims}"
        target = f"{self.iters:,}".replace(",", " ")
        return f"{m.resolution} px {m.arch} {dims}, batch {self.train.batch_size}, target {target}"

    def line(self, name: str) -> str:
        """``tiny: 64 px df-ud 64/16/16/8, batch 8, target 300: minutes on a CPU; ...``"""
        return f"{name}: {self.shape()}. {self.description}"


#: Every preset, in the order a person meets them (smallest first). ``[train]``'s declared defaults
#: (engine/settings.py) are saehd's, the default preset (a test holds them equal).
PRESETS: dict[str, Preset] = {
    # Expression-matched src sampling: at 20 minutes on 2 CPU cores (11 500 iterations) the mouth follows
    # the destination better than with shuffled epochs on every figure (docs: benchmarks, recipes).
    "tiny": Preset(ModelOptions("df-ud", 64, 64, 16, 16, 8),
                   TrainOptions(batch_size=8, lr=3e-4, warmup_iters=20, channels_last=False,
                                src_sampling="expression"), 300,
                   "Minutes on a CPU: for trying the flow and for tests."),
    "quick": Preset(ModelOptions("df-ud", 96, 128, 48, 48, 16), TrainOptions(batch_size=16, lr=1e-4), 20_000,
                    "A first usable result in about an hour on one GPU."),
    "saehd": Preset(ModelOptions("liae-ud", 128, 256, 64, 64, 22), TrainOptions(batch_size=16, lr=5e-5), 100_000,
                    "DeepFaceLab's SAEHD defaults, full quality: a day or more on a GPU."),
    "amp": Preset(ModelOptions("amp-ud", 128, 256, 64, 64, 22), TrainOptions(batch_size=16, lr=5e-5), 100_000,
                  "DeepFaceLab's AMP (one decoder; the morph knob at merge time), on a GPU."),
    # Korshunova et al. train about 10^4 steps; the style set of each dst face is src faces of like pose.
    "cnn": Preset(ModelOptions("cnn", 128, 256, 32, 32, 22),
                  TrainOptions(batch_size=8, lr=1e-3, src_sampling="expression", random_warp=False,
                               masked_training=True), 10_000,
                  "The multi-scale CNN of Korshunova et al. 2017; needs the VGG-19 weights."),
}
DEFAULT_PRESET = settings.get("train", "preset").default


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise UserError(f"There is no preset {name!r}.", f"Presets: {', '.join(PRESETS)}.")
    found = PRESETS[name]
    return dataclasses.replace(found, model=dataclasses.replace(found.model), train=dataclasses.replace(found.train))


def from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Build a dataclass from a dict, ignoring unknown keys (older or newer checkpoints)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


if __name__ == "__main__":
    for _name, _preset in PRESETS.items():
        print(_preset.line(_name))
