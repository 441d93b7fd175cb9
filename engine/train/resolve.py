"""From a training request to a ``RunConfig``: which model, which preset, which options.

The request is plain data: ``[train]`` settings (declared in engine/settings.py) that the user gave,
plus the run's own switches (pretrain faces, test switches); no job type is needed, so the job, the
DDP launcher, the evaluation script and the benchmarks all resolve the same way.

Precedence, lowest first: the preset (``--preset``, else ``[train] preset`` in workspace.toml, else
the one the model was created with, else ``saehd``) -> for an existing model, the training options
it was last trained with -> keys of ``[train]`` in workspace.toml -> the request. Every value is
checked against its declaration (``engine.settings.layered``). A model's architecture (arch,
resolution, dims) is fixed when it is created; asking an existing model for a different preset or
shape is an error, not a silent rebuild.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from engine import settings
from engine.errors import UserError
from engine.train.checkpoint import STATE_FILE, CheckpointStore
from engine.train.cnn import require_weights
from engine.train.options import DEFAULT_PRESET, ModelOptions, RunConfig, TrainOptions, preset
from engine.workspace import Workspace

TOML, REQUEST, LAST_RUN = "workspace.toml", "the request", "the model's last run"


def saved_state(store: CheckpointStore) -> dict[str, Any] | None:
    """The newest checkpoint's state.json (cheap: no tensors read), or None for a new model."""
    for path in store.candidates():
        try:
            return json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return None


def resolve(ws: Workspace, request: Mapping[str, Any], *, pretrain_faces: str = "", debug_nan_at: int = -1,
            debug_oom_at: int = -1) -> RunConfig:
    """The run ``request`` (a mapping of [train] settings; None or absent: not given) asks for."""
    toml = ws.section("train")
    # What the user chose: workspace.toml under the request, each value checked; nothing else yet.
    given = settings.layered("train", (TOML, toml), (REQUEST, request), base={})
    name = ws.model_name(request.get("model"))
    model_dir = ws.model_dir(name)
    saved = saved_state(CheckpointStore(model_dir))
    asked_preset = request.get("preset")
    preset_name = given.get("preset") or (saved or {}).get("preset") or DEFAULT_PRESET
    if saved and asked_preset and saved.get("preset") and asked_preset != saved["preset"]:
        raise UserError(f"Model {name!r} was created with the {saved['preset']} preset, not {asked_preset}.",
                        f"Leave out --preset to go on training it, or train a new one with --model {asked_preset}.")
    base = preset(preset_name)
    shape = {key: value for key, value in given.items() if key in settings.keys("train", "model")}
    if saved:
        for key, value in shape.items():
            if value != saved["model_options"].get(key):
                raise UserError(f"Model {name!r} already exists with {key} = {saved['model_options'].get(key)}.",
                                "A model's shape is fixed when it is created: train a new one with --model NAME.")
    model_options = dataclasses.replace(base.model, **shape).validate()
    if ((saved or {}).get("model_options") or {}).get("arch", model_options.arch) == "cnn":
        require_weights()  # said before any face is loaded, not after: no VGG-19, no cnn training
    last_run = saved["train_options"] if saved else None
    train_options = TrainOptions(**settings.layered(
        "train", (LAST_RUN, last_run), (TOML, toml), (REQUEST, request), group="options",
        base=dataclasses.asdict(base.train)))
    iters = given.get("iters", base.iters)
    run = settings.layered("train", (TOML, toml), (REQUEST, request), group="run")
    config = RunConfig(**run, model_dir=model_dir, model_options=model_options, train_options=train_options,
                       target_iters=int(iters or 0), preset=preset_name, pretrain_faces=pretrain_faces or "",
                       debug_nan_at=debug_nan_at, debug_oom_at=debug_oom_at)
    if config.pretrain_faces and saved and not saved.get("pretraining"):
        raise UserError(f"Model {name!r} is already trained on your pair; pretraining it now would undo that.",
                        "Pretrain a new model with --model NAME --pretrain FACES.")
    return config


__all__ = ["ModelOptions", "RunConfig", "TrainOptions", "resolve", "saved_state"]
