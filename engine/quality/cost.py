"""What a model cost to train: iterations, wall time and device, from its model folder's JSON files.

``training_cost.json`` (written at each save by ``engine.quality.training``) carries the seconds spent
training and the device; for a model trained without it, the wall time is estimated from the loss
history's timestamps (gaps over ``PAUSE_S`` are taken as pauses between runs and left out) and the
device is unknown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.atomic import read_json

PAUSE_S = 300.0


def estimate_seconds(model_dir: Path) -> float:
    """Training time from the loss history's timestamps, pauses between runs left out."""
    history = read_json(Path(model_dir) / "loss_history.json", default={}) or {}
    times = [p[3] for p in history.get("points", []) if isinstance(p, list) and len(p) >= 4]
    return float(sum(b - a for a, b in zip(times, times[1:]) if 0 <= b - a <= PAUSE_S))


def training_cost(model_dir: Path) -> dict[str, Any]:
    model_dir = Path(model_dir)
    summary = read_json(model_dir / "model.json", default={}) or {}
    options = summary.get("train_options") or {}
    shape = summary.get("model_options") or {}
    recorded = read_json(model_dir / "training_cost.json", default={}) or {}
    seconds = recorded.get("train_seconds")
    estimated = bool(recorded.get("train_seconds_estimated"))
    if not isinstance(seconds, (int, float)):
        seconds = estimate_seconds(model_dir)
        estimated = True
    return {"iterations": summary.get("iteration"), "train_seconds": round(float(seconds), 1),
            "train_seconds_estimated": estimated, "device": recorded.get("device") or "not recorded",
            "preset": summary.get("preset"), "arch": shape.get("arch"), "resolution": shape.get("resolution"),
            "gan_power": options.get("gan_power"), "batch_size": options.get("batch_size"),
            "never_trained_on": recorded.get("never_trained_on"),
            # Started from a model pretrained on other faces (engine.train.loop archives it there).
            "pretrained": (model_dir / "pretrained").is_dir()}


def unseen_check(cost: dict[str, Any], frames: list[int]) -> str:
    """Whether the model never trained on these destination frames: "yes", "no (N of them)" or "unknown"."""
    recorded = cost.get("never_trained_on")
    if not isinstance(recorded, dict) or "dst" not in recorded:
        if cost.get("pretrained"):
            return "unknown (pretrained on other faces first, which may include these frames)"
        return "unknown (trained before swapwizard recorded its held-out frames)"
    seen = [f for f in frames if f not in set(recorded["dst"])]
    return "yes" if not seen else f"no ({len(seen)} of the {len(frames)} measured frames were trained on)"
