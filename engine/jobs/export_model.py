"""Job ``export_model``: a trained model's swap path as an ONNX file or a DeepFaceLive ``.dfm``.

    swapwizard export-model WS [--model M] --format onnx|dfm --output FILE

The file takes DeepFaceLive's ``in_face:0`` (and ``morph_value:0`` for AMP), gives the three outputs it
reads, and carries the face type and coverage in its metadata (engine.interop.export); the log and the
result say them, so a DeepFaceLive user sets the same face type.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.jobs import JobKind
from engine.report import Reporter
from engine.workspace import Workspace

FORMATS = ("onnx", "dfm")


@dataclass
class Params:
    #: Model name (model/<name>/); "" takes [train] model from workspace.toml, else "default".
    model: str = ""
    format: str = "dfm"
    #: The file to write (absolute, or relative to the workspace); "" writes output/<model>.<format>.
    output: str = ""
    #: "latest" (the newest whole checkpoint) or "best" (the lowest smoothed loss).
    which: str = "latest"


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    from pathlib import Path

    from engine.errors import UserError

    name = ws.model_name(params.model)
    if params.format not in FORMATS:
        raise UserError(f"{params.format!r} is not an export format.", "Use --format onnx or --format dfm.")
    if params.which not in ("latest", "best"):
        raise UserError(f"{params.which!r} is not a checkpoint choice.", "Use latest or best.")
    from engine.interop.load import is_imported, model_exists

    model_dir = ws.model_dir(name)
    if not model_exists(model_dir):
        raise UserError(f"There is no trained model {name!r} in this workspace to export.",
                        "Train one first: swapwizard train WS.")
    if is_imported(model_dir):
        raise UserError(f"Model {name!r} was imported from a file, which is already the export.",
                        f"Copy {ws.rel(model_dir)}/imported.onnx (it is that file).")
    output = Path(params.output).expanduser() if params.output else ws.output_dir / f"{name}.{params.format}"
    output = output if output.is_absolute() else ws.root / output
    if output.suffix.lower() != f".{params.format}":
        raise UserError(f"{output.name} does not end in .{params.format}, the format asked for.",
                        f"Name the file something.{params.format} (DeepFaceLive lists .dfm files only).")
    if not output.parent.is_dir():
        raise UserError(f"The folder {output.parent} does not exist.", "Create it, or give --output a path in an existing one.")
    from engine.interop.export import export_model

    report.progress("export", 0, 1)
    result = export_model(model_dir, output, which=params.which, warn=report.warning)
    report.progress("export", 1, 1)
    report.log(f"Wrote {output} ({result['bytes'] / 2**20:.1f} MB): {result['arch']} at {result['resolution']} px, "
               f"iteration {result['iteration']}.")
    from engine.interop.contract import DFL_FACE_TYPES, DFLIVE_FACE_TYPES

    report.log(f"Face type: {result['face_type']} (DeepFaceLab {DFL_FACE_TYPES[result['face_type']]}, DeepFaceLive "
               f"{DFLIVE_FACE_TYPES[result['face_type']]}); coverage: {result['coverage']}.")
    if result["morph_input"]:
        report.log("It has a morph_value input (AMP): DeepFaceLive's 'Morph factor' is [merge] morph.")
    return {**result, "model": name, "format": params.format}


JOB = JobKind(kind="export_model", params=Params, run=run, lane="interactive", label="Exporting the model")
