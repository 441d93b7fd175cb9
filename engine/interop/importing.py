"""A ``.dfm`` or ``.onnx`` face-swap model (from DeepFaceLab, DeepFaceLive's hub or swapwizard) becomes
``model/<name>/`` of a workspace, which merge, the merge preview and compare use (it cannot train).

::

    import_model(ws, Path("Keanu.dfm"), "keanu", face_type="wf", report=report)

The file is untrusted: engine.interop.contract checks it (ONNX only, no external data, no custom
operators, size, the DFM inputs and outputs) and it runs once on a blank face before anything is kept.
The folder is written under a temporary name and renamed whole, with ``imported.json`` saying the face
type (the file's own metadata, or ``face_type`` for DeepFaceLab's files, which carry none), its
resolution, whether it morphs, the file's name and SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_write_bytes, atomic_write_json, fsync_dir
from engine.errors import UserError
from engine.interop.contract import DFL_FACE_TYPES, coverage, describe, face_type_named
from engine.interop.load import IMPORTED, IMPORTED_INFO, model_exists
from engine.interop.runtime import OnnxSwapModel
from engine.report import NullReporter, Reporter


def import_model(ws: Any, file: Path, name: str, face_type: str = "", report: Reporter | None = None) -> dict[str, Any]:
    report = report or NullReporter()
    file = Path(file)
    target = ws.model_dir(name)  # refuses a bad name
    if model_exists(target) or (target.exists() and any(target.iterdir())):
        raise UserError(f"There is already a model {name!r} in this workspace.",
                        "Choose another name with --name, or delete model/" + name + "/ first.")
    described = describe(file)
    chosen = face_type_named(face_type) if face_type else described.face_type
    if chosen is None:
        raise UserError(f"{file.name} does not say which face type it was trained on (DeepFaceLab's files do not).",
                        "Give it with --face-type: " + ", ".join(f"{ours} ({dfl})" for ours, dfl in DFL_FACE_TYPES.items())
                        + "; DeepFaceLab's SAEHD default is wf.")
    if described.face_type and chosen != described.face_type:
        report.warning(f"{file.name} says it was trained on {described.face_type} crops; merging cuts {chosen} "
                       "crops as --face-type asks.")
    data = file.read_bytes()
    model = OnnxSwapModel(data, chosen, device="cpu", threads=1)
    res = model.resolution
    try:
        outputs = model.run(np.zeros((1, res, res, 3), np.float32))
    except Exception as exc:  # noqa: BLE001 - an untrusted graph may fail in any way; say so in one sentence
        raise UserError(f"{file.name} did not run on ONNX Runtime ({type(exc).__name__}).",
                        "Export it again from DeepFaceLab or swapwizard; nothing was imported.") from None
    wanted = [(1, res, res, 1), (1, res, res, 3), (1, res, res, 1)]
    if [o.shape for o in outputs] != wanted:
        raise UserError(f"{file.name} gave outputs of shapes {[o.shape for o in outputs]}, not {wanted}.",
                        "Give a model that keeps DeepFaceLive's contract; nothing was imported.")
    info = {"version": 1, "face_type": chosen, "resolution": res, "morph_input": described.morph,
            "source": file.name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
            "metadata": described.properties}
    ws.models_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = Path(tempfile.mkdtemp(prefix=f".import-{name}-", dir=ws.models_root))
    try:
        atomic_write_bytes(staging / IMPORTED, data)
        atomic_write_json(staging / IMPORTED_INFO, info)
        if target.exists():
            target.rmdir()  # empty (checked above)
        os.rename(staging, target)
        fsync_dir(ws.models_root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report.log(f"Imported {file.name} as model {name!r}: {res} px, face type {chosen} ({coverage(chosen)})"
               + (", with a morph input ([merge] morph)" if described.morph else "") + ".")
    return {"model": name, "face_type": chosen, "resolution": res, "morph_input": described.morph,
            "sha256": info["sha256"]}
