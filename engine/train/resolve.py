"""From job parameters to a ``RunConfig``: which model, which preset, which options.

Precedence, lowest first: the preset (``--preset``, else ``[train] preset`` in workspace.toml, else
the one the model was created with, else ``saehd``) -> for an existing model, the training options
it was last trained with -> keys of ``[train]`` in workspace.toml -> the job's explicit parameters.
A model's architecture (arch, resolution, dims) is fixed when it is created; asking an existing
model for a different preset or shape is an error, not a silent rebuild.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from engine.errors import UserError
from engine.train.checkpoint import STATE_FILE, CheckpointStore
from engine.train.loop import RunConfig
from engine.train.options import ModelOptions, TrainOptions, from_dict, preset
from engine.workspace import Workspace

MODEL_KEYS = tuple(f.name for f in dataclasses.fields(ModelOptions) if f.name != "face_type")
TRAIN_KEYS = tuple(f.name for f in dataclasses.fields(TrainOptions))
RUN_KEYS = ("save_every_min", "save_every_iters", "backup_every_min", "backups_keep", "preview_every_min",
            "sync_every", "seed", "device", "threads")


def saved_state(store: CheckpointStore) -> dict[str, Any] | None:
    """The newest checkpoint's state.json (cheap: no tensors read), or None for a new model."""
    for path in store.candidates():
        try:
            return json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return None


def _given(params: Any, toml: dict[str, Any], key: str) -> Any:
    value = getattr(params, key, None)
    if value is not None and value != "":
        return value
    return toml.get(key)


def resolve(ws: Workspace, params: Any) -> RunConfig:
    toml = ws.section("train")
    name = params.model or toml.get("model") or "default"
    model_dir = ws.model_dir(name)
    saved = saved_state(CheckpointStore(model_dir))
    preset_name = params.preset or toml.get("preset") or (saved or {}).get("preset") or "saehd"
    if saved and params.preset and saved.get("preset") and params.preset != saved["preset"]:
        raise UserError(f"Model {name!r} was created with the {saved['preset']} preset, not {params.preset}.",
                        f"Leave out --preset to go on training it, or train a new one with --model {params.preset}.")
    base = preset(preset_name)
    model_options = base.model
    train_options = from_dict(TrainOptions, saved["train_options"]) if saved else base.train
    for key in MODEL_KEYS:
        value = _given(params, toml, key)
        if value is None:
            continue
        if saved and value != saved["model_options"].get(key):
            raise UserError(f"Model {name!r} already exists with {key} = {saved['model_options'].get(key)}.",
                            "A model's shape is fixed when it is created: train a new one with --model NAME.")
        setattr(model_options, key, value)
    for key in TRAIN_KEYS:
        value = _given(params, toml, key)
        if value is not None:
            setattr(train_options, key, type(getattr(TrainOptions(), key))(value))
    if train_options.colour_transfer not in ("none", "rct"):
        raise UserError(f"Colour transfer {train_options.colour_transfer!r} is not available for training.",
                        "Use none or rct.")
    if train_options.precision not in ("auto", "fp32", "bf16", "fp16"):
        raise UserError(f"Precision {train_options.precision!r} is unknown.", "Use auto, fp32, bf16 or fp16.")
    if train_options.batch_size < 1:
        raise UserError("The batch size must be at least 1.", "Give --batch 4 or more.")
    iters = params.iters if params.iters is not None else toml.get("iters", base.iters)
    config = RunConfig(model_dir=model_dir, model_options=model_options.validate(), train_options=train_options,
                       target_iters=int(iters or 0), preset=preset_name, pretrain_faces=params.pretrain_faces or "",
                       debug_nan_at=params.debug_nan_at, debug_oom_at=params.debug_oom_at)
    for key in RUN_KEYS:
        value = _given(params, toml, key)
        if value is not None:
            setattr(config, key, type(getattr(config, key))(value))
    if config.pretrain_faces and saved and not saved.get("pretraining"):
        raise UserError(f"Model {name!r} is already trained on your pair; pretraining it now would undo that.",
                        "Pretrain a new model with --model NAME --pretrain FACES.")
    return config
