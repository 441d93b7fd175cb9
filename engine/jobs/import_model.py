"""Job ``import_model``: a ``.dfm`` or ``.onnx`` file becomes a model of the workspace (engine.interop.importing).

    swapwizard import-model FILE.dfm WS --name NAME [--face-type wf]

Merge, the merge preview and compare can use it; training cannot.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.jobs import JobKind
from engine.report import Reporter
from engine.workspace import Workspace


@dataclass
class Params:
    #: The file (absolute, or relative to the workspace).
    file: str = ""
    name: str = ""
    #: The face type it was trained on, when the file does not say (DeepFaceLab's do not): h, mf, f, wf, head.
    face_type: str = ""


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    from pathlib import Path

    from engine.errors import UserError
    from engine.interop.importing import import_model

    if not params.file or not params.name:
        raise UserError("An import needs a file and a name.", "swapwizard import-model FILE.dfm WS --name NAME.")
    path = Path(params.file).expanduser()
    path = path if path.is_absolute() else ws.root / path
    if not path.is_file():
        raise UserError(f"There is no file at {path}.", "Give the path of a .dfm or .onnx file.")
    if path.suffix.lower() not in (".dfm", ".onnx"):
        raise UserError(f"{path.name} is neither a .dfm nor an .onnx file.", "Give a DeepFaceLab/DeepFaceLive .dfm or an .onnx.")
    return import_model(ws, path, params.name, params.face_type, report)


JOB = JobKind(kind="import_model", params=Params, run=run, lane="interactive", label="Importing a model")
