"""The merge knobs: one dataclass, checked, read from and written back to ``[merge]`` in workspace.toml.

A second merge reuses the last choices: the merge job writes the settings it used back to the
workspace, and every knob is also a CLI option and a job parameter (``None`` there means "the
workspace's value").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from engine.errors import UserError

MASK_MODES = ("hull", "learned-prd", "learned-dst", "learned-prd*learned-dst", "hull*learned-prd",
              "hull*learned-dst", "hull*learned-prd*learned-dst")
COLOUR_MODES = ("none", "rct", "lct", "mkl", "idt", "sot")
BLEND_MODES = ("overlay", "seamless", "histogram")
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


@dataclass
class MergeSettings:
    #: Which mask cuts the new face out: the landmark hull, the model's learned masks, or products.
    mask: str = "hull"
    #: Shrink (positive) or grow (negative) the mask, in pixels of a 256-pixel face crop.
    erode: int = 0
    #: Soften the mask edge, in pixels of a 256-pixel face crop.
    blur: int = 16
    #: Fade the mask to nothing this far before the crop's edge (pixels of a 256-pixel crop).
    edge_fade: int = 12
    #: Recolour the new face toward the destination's skin: none, rct, lct, mkl, idt, sot.
    colour: str = "rct"
    #: How the face goes in: overlay (alpha blend), seamless (Poisson), histogram (match, then overlay).
    blend: str = "overlay"
    #: Scale the new face about the crop centre (1.0 = as predicted).
    face_scale: float = 1.0
    #: Unsharp-mask amount on the new face (0 = off, 1 = strong).
    sharpen: float = 0.0
    #: Video quality: x264 CRF (lower is better and bigger; 18 is visually lossless).
    crf: int = 18
    #: x264 speed preset: faster presets encode quicker and give bigger files.
    preset: str = "veryfast"
    #: Audio: "" copies the destination's; a path (relative to the workspace) uses that file; "none" drops it.
    audio: str = ""
    #: Burn a small visible "SYNTHETIC" mark into the corner (the metadata label is always written).
    mark: bool = False
    #: Also write output/frames/NNNNNN.png (each labelled with PNG text chunks).
    png: bool = False
    #: Also write output/result_mask.mp4 (the mask used per frame, white = new face).
    mask_video: bool = False

    def check(self) -> MergeSettings:
        """Raise ``UserError`` naming the first knob with a bad value; returns self."""
        choices = {"mask": MASK_MODES, "colour": COLOUR_MODES, "blend": BLEND_MODES, "preset": PRESETS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise UserError(f"Merge setting {name} = {getattr(self, name)!r} is not one of the choices.",
                                f"Use one of: {', '.join(allowed)}.")
        ranges = {"erode": (-128, 128), "blur": (0, 256), "edge_fade": (0, 128), "face_scale": (0.5, 1.5),
                  "sharpen": (0.0, 2.0), "crf": (0, 51)}
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise UserError(f"Merge setting {name} = {value} is out of range.", f"Use {low} to {high}.")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> MergeSettings:
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise UserError(f"Unknown merge setting(s): {', '.join(unknown)}.", f"Known: {', '.join(sorted(known))}.")
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def _coerce(field: dataclasses.Field, value: Any) -> Any:
    kind = type(field.default)
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(value, str):
        return value
    raise UserError(f"[merge] {field.name} in workspace.toml has a value of the wrong type: {value!r}.",
                    f"Expected a {kind.__name__}, e.g. {field.name} = {field.default!r}.")


def from_section(section: dict[str, Any]) -> MergeSettings:
    """Settings from a ``[merge]`` table; unknown keys are ignored (other versions may add some)."""
    fields = {f.name: f for f in dataclasses.fields(MergeSettings)}
    values = {name: _coerce(fields[name], value) for name, value in section.items() if name in fields}
    return MergeSettings(**values).check()


def load(ws: Any, **overrides: Any) -> MergeSettings:
    """The workspace's [merge] settings with any non-None overrides applied, checked."""
    return from_section(ws.section("merge")).replace(**overrides).check()


def save(ws: Any, settings: MergeSettings) -> None:
    """Write every knob back to [merge] so the next merge (and the wizard) starts from these choices."""
    ws.update_settings("merge", settings.to_dict())
