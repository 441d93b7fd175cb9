"""What merging needs from a trained model: load it and predict swapped faces.

Usage::

    from engine.train.api import load_model, model_exists
    if model_exists(ws.model_dir("default")):
        model = load_model(ws.model_dir("default"))          # device="auto": GPU when there is one
        preds = model.predict(crops)    # crops: list of HxWx3 uint8 BGR at model.resolution
        preds[0].face      # float32 HxWx3 BGR in 0..1: the dst face turned into the src person
        preds[0].mask_src  # float32 HxW in 0..1: the mask the swap decoder learned
        preds[0].mask_dst  # float32 HxW in 0..1: the mask of the dst reconstruction

``model.resolution`` is the crop size the model expects; ``model.face_type`` is what its training
crops covered (merging must crop dst frames the same way). ``model.iteration`` says how far it was
trained. Prediction runs in batches under ``torch.no_grad`` (and autocast on a GPU). The weights
come from the newest whole checkpoint (``which="best"`` for the lowest smoothed loss); a damaged
newest checkpoint falls back to the previous one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.errors import UserError
from engine.train.checkpoint import CheckpointStore
from engine.train.device import autocast, autocast_dtype, pick_device
from engine.train.models import SwapAutoencoder, build_model
from engine.train.options import ModelOptions, from_dict


@dataclass
class Prediction:
    face: np.ndarray  # float32 HxWx3, BGR, 0..1
    mask_src: np.ndarray  # float32 HxW, 0..1
    mask_dst: np.ndarray  # float32 HxW, 0..1


def check_crops(crops: list[np.ndarray], res: int) -> None:
    """``ValueError`` unless every crop is ``res`` x ``res`` x 3 uint8 (what ``predict`` takes, on any runtime)."""
    for crop in crops:
        if crop.shape != (res, res, 3) or crop.dtype != np.uint8:
            raise ValueError(f"predict needs {res}x{res}x3 uint8 crops, got {crop.shape} {crop.dtype}")


def model_exists(model_dir: str | os.PathLike[str]) -> bool:
    """True when the folder holds at least one saved checkpoint (whole or not)."""
    return CheckpointStore(Path(model_dir)).exists()


class SwapModel:
    """A trained model, ready to turn dst crops into src faces."""

    def __init__(self, network: SwapAutoencoder, device: torch.device, iteration: int,
                 batch_size: int = 16) -> None:
        self.network = network.eval()
        self.device = device
        self.iteration = iteration
        self.batch_size = batch_size
        self._dtype = autocast_dtype(device)

    @property
    def morph(self) -> float:
        """AMP: how far toward the source the face goes (``[merge] morph``, 0..1); others ignore it."""
        return float(getattr(self.network, "morph", 1.0))

    @morph.setter
    def morph(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise UserError(f"morph = {value} is out of range.", "Use 0 to 1.")
        self.network.morph = float(value)

    @property
    def resolution(self) -> int:
        return self.network.options.resolution

    @property
    def face_type(self) -> str:
        return self.network.options.face_type

    @torch.no_grad()
    def predict(self, crops_bgr_uint8: list[np.ndarray]) -> list[Prediction]:
        check_crops(crops_bgr_uint8, self.resolution)
        results: list[Prediction] = []
        for start in range(0, len(crops_bgr_uint8), self.batch_size):
            chunk = np.stack(crops_bgr_uint8[start:start + self.batch_size])
            x = torch.from_numpy(chunk).to(self.device).permute(0, 3, 1, 2).float().div_(255)
            with autocast(self.device, self._dtype):
                face, mask_src, mask_dst = self.network.swap(x)
            face = face.float().permute(0, 2, 3, 1).cpu().numpy()
            mask_src = mask_src.float()[:, 0].cpu().numpy()
            mask_dst = mask_dst.float()[:, 0].cpu().numpy()
            results += [Prediction(np.ascontiguousarray(f), m, d) for f, m, d in zip(face, mask_src, mask_dst)]
        return results


def load_model(model_dir: str | os.PathLike[str], device: str = "auto", which: str = "latest",
               warn=None) -> SwapModel:
    """Load a trained model for prediction; raises ``UserError`` if there is none or all are damaged."""
    store = CheckpointStore(Path(model_dir))
    loaded = store.load(with_optimizer=False, which=which, warn=warn)
    if loaded is None:
        raise UserError(f"There is no trained model in {model_dir}.", "Train one first: swapwizard train WS.")
    options = from_dict(ModelOptions, loaded.state["model_options"])
    network = build_model(options)
    weights = {k[len("model."):]: v for k, v in loaded.model.items() if k.startswith("model.")}
    network.load_state_dict(weights, strict=True)
    dev = pick_device(device)
    network.to(dev)
    return SwapModel(network, dev, int(loaded.state["iteration"]))
