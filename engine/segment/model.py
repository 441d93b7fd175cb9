"""A segmenter on disk: weights as safetensors, its description as JSON (nothing that runs code on load).

``Segmenter.load(folder)`` checks the JSON's fields and that every tensor of the file has the name and
shape the described network has (a file from elsewhere that does not match is refused with one
sentence); ``save(folder)`` writes both atomically, the JSON last. ``predict(crops)`` gives the visible
face's probability for uint8 BGR crops of any size.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.atomic import atomic_write_bytes, atomic_write_json
from engine.errors import UserError
from engine.segment import store
from engine.segment.net import UNet

FORMAT = "swapwizard-segmenter"
VERSION = 1


@dataclass
class Description:
    """segmenter.json."""

    format: str = FORMAT
    version: int = VERSION
    arch: str = "unet"
    width: int = 8
    resolution: int = 128
    iteration: int = 0
    target: int = 0
    #: What the labels were when it was trained (user-painted masks count and newest time).
    labels: dict[str, Any] = field(default_factory=dict)
    sides: list[str] = field(default_factory=list)
    faces: int = 0
    #: Held-out IoU with synthetic occluders, and without.
    iou: float | None = None
    iou_clean: float | None = None
    seconds: float = 0.0
    #: Workspace it was trained in (its folder name only), when imported.
    origin: str = ""

    @classmethod
    def from_json(cls, data: Any, where: str) -> Description:
        hint = "Export it again with swapwizard segment WS --export FOLDER, or train one here."
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise UserError(f"{where} is not a swapwizard segmenter description.", hint)
        if not isinstance(data.get("version"), int) or data["version"] > VERSION:
            raise UserError(f"{where} was written by a newer swapwizard.", "Upgrade swapwizard, or train one here.")
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            expected = {"int": int, "str": str, "float": (int, float), "dict[str, Any]": dict, "list[str]": list,
                        "float | None": (int, float, type(None))}.get(str(f.type), object)
            if not isinstance(value, expected) or isinstance(value, bool):
                raise UserError(f"{where}: {f.name} has a value of the wrong kind.", hint)
            values[f.name] = value
        description = cls(**values)
        if description.arch != "unet" or not 1 <= description.width <= 64 or \
                description.resolution not in range(32, 1025, 16):
            raise UserError(f"{where} describes a network this swapwizard does not know "
                            f"({description.arch}, width {description.width}, {description.resolution} px).", hint)
        return description


class Segmenter:
    def __init__(self, description: Description, device: str = "cpu") -> None:
        self.description = description
        self.device = torch.device(device)
        self.net = UNet(description.width).to(self.device)

    @property
    def resolution(self) -> int:
        return self.description.resolution

    @classmethod
    def load(cls, folder: Path, device: str = "cpu") -> Segmenter:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(folder)
        config, weights = folder / store.CONFIG, folder / store.WEIGHTS
        if not config.is_file() or not weights.is_file():
            raise UserError(f"There is no segmenter in {folder} ({store.CONFIG} and {store.WEIGHTS}).",
                            "Train one: swapwizard segment WS (or give the folder an export was written to).")
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{config} cannot be read ({exc}).", "Train the segmenter again.") from None
        segmenter = cls(Description.from_json(data, str(config)), device)
        try:
            state = load_file(str(weights), device=str(segmenter.device))
        except (SafetensorError, OSError, ValueError) as exc:
            raise UserError(f"{weights} is not a readable safetensors file ({exc}).",
                            "Train the segmenter again, or export it again from its workspace.") from None
        own = segmenter.net.state_dict()
        wrong = sorted(set(own) ^ set(state)) or [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
        if wrong:
            raise UserError(f"{weights} does not hold the network {config.name} describes ({wrong[0]} differs).",
                            "Export both files of the segmenter together, from one swapwizard.")
        segmenter.net.load_state_dict(state)
        segmenter.net.eval()
        return segmenter

    def save(self, folder: Path) -> None:
        from safetensors.torch import save

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.net.state_dict().items()}
        atomic_write_bytes(folder / store.WEIGHTS, save(state))
        atomic_write_json(folder / store.CONFIG, asdict(self.description))

    @torch.no_grad()
    def predict(self, crops: list[np.ndarray] | np.ndarray, batch: int = 32) -> np.ndarray:
        """Probability of visible face (float32 N x R x R at the segmenter's resolution)."""
        import cv2

        self.net.eval()
        res = self.resolution
        outputs = []
        for start in range(0, len(crops), batch):
            chunk = [c if c.shape[0] == res else
                     cv2.resize(c, (res, res), interpolation=cv2.INTER_AREA if c.shape[0] > res else cv2.INTER_LINEAR)
                     for c in crops[start:start + batch]]
            x = torch.from_numpy(np.stack(chunk)).to(self.device).permute(0, 3, 1, 2).float() / 255.0
            outputs.append(torch.sigmoid(self.net(x))[:, 0].float().cpu().numpy())
        return np.concatenate(outputs) if outputs else np.zeros((0, res, res), np.float32)
