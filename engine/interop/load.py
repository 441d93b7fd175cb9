"""Which model a merge, its preview and a comparison get: a trained model on PyTorch or on ONNX Runtime
(``[merge] runtime``), or an imported ``.dfm``/``.onnx`` (ONNX Runtime only).

::

    from engine.interop.load import load_model, model_exists
    model = load_model(ws.model_dir("default"), device="auto", runtime="auto")

An imported model is ``model/<name>/imported.onnx`` with ``imported.json`` beside it (face type,
resolution, where it came from, its SHA-256): engine.interop.importing writes them. ``runtime = "onnx"``
on a trained model exports its swap path in memory when it loads (seconds; nothing is written to the
model's folder), so merging runs the same graph DeepFaceLive would. ``auto`` takes ONNX Runtime where
``swapwizard bench merge --runtime`` measured it faster for this device, architecture and resolution
(the record in ``$XDG_CACHE_HOME/swapwizard/merge-runtime.json``), else PyTorch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.atomic import atomic_write_json, read_json
from engine.errors import UserError
from engine.settings import MERGE_RUNTIMES
from engine.train import api as torch_api

IMPORTED = "imported.onnx"
IMPORTED_INFO = "imported.json"
RUNTIMES = MERGE_RUNTIMES


def is_imported(model_dir: str | os.PathLike[str]) -> bool:
    return (Path(model_dir) / IMPORTED_INFO).is_file() and (Path(model_dir) / IMPORTED).is_file()


def model_exists(model_dir: str | os.PathLike[str]) -> bool:
    """True for a trained model with at least one checkpoint, or an imported one."""
    return is_imported(model_dir) or torch_api.model_exists(model_dir)


def record_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "swapwizard" / "merge-runtime.json"


def record_key(device_type: str, arch: str, resolution: int) -> str:
    return f"{device_type}:{arch}:{resolution}"


def record_measurement(key: str, figures: dict[str, Any]) -> Path:
    """Keep ``bench merge --runtime``'s figures for ``key`` (its ``faster`` is what ``auto`` picks)."""
    path = record_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    known = read_json(path, {})
    known = known if isinstance(known, dict) else {}
    known[key] = figures
    atomic_write_json(path, known)
    return path


def measured_faster(key: str) -> str | None:
    """The runtime ``bench merge --runtime`` found faster for ``key``, or None when it was not measured."""
    found = read_json(record_path(), {})
    entry = found.get(key) if isinstance(found, dict) else None
    faster = entry.get("faster") if isinstance(entry, dict) else None
    return faster if faster in ("torch", "onnx") else None


def load_imported(model_dir: Path, device: str = "auto") -> Any:
    """An imported model, checked again as it loads: the folder may have come in a workspace archive."""
    from engine.interop.contract import DFL_FACE_TYPES, describe
    from engine.interop.runtime import OnnxSwapModel

    info = read_json(model_dir / IMPORTED_INFO, {})
    if not isinstance(info, dict) or info.get("face_type") not in DFL_FACE_TYPES:
        raise UserError(f"{model_dir.name}'s imported.json is damaged.",
                        "Import the model again: swapwizard import-model FILE WS --name NAME.")
    describe(model_dir / IMPORTED)
    return OnnxSwapModel((model_dir / IMPORTED).read_bytes(), str(info["face_type"]), 0, device)


def load_model(model_dir: str | os.PathLike[str], device: str = "auto", which: str = "latest", warn: Any = None,
               runtime: str = "torch") -> Any:
    """A model ready to ``predict``: imported ones on ONNX Runtime, trained ones on ``runtime``."""
    model_dir = Path(model_dir)
    if runtime not in RUNTIMES:
        raise UserError(f"{runtime!r} is not a merge runtime.", f"Use one of: {', '.join(RUNTIMES)}.")
    if is_imported(model_dir):
        return load_imported(model_dir, device)
    model = torch_api.load_model(model_dir, device=device, which=which, warn=warn)
    if runtime == "auto":
        options = model.network.options
        runtime = measured_faster(record_key(model.device.type, options.arch, options.resolution)) or "torch"
    if runtime == "torch":
        return model
    from engine.interop.export import onnx_bytes
    from engine.interop.runtime import OnnxSwapModel

    data = onnx_bytes(model.network, model.face_type, model.iteration)
    return OnnxSwapModel(data, model.face_type, model.iteration, device)
