"""``swapwizard export-model WS`` and ``swapwizard import-model FILE WS``: models that travel.

    swapwizard export-model WS --format dfm --output me.dfm      # for DeepFaceLive (or --format onnx)
    swapwizard import-model Keanu.dfm WS --name keanu --face-type wf

Both run as jobs in the workspace's engine (engine/jobs/export_model.py, import_model.py; the work is in
engine/interop/). Paths are taken from the shell's folder, not the workspace's.
"""

from __future__ import annotations

from pathlib import Path

import typer

from tui.cli.app import app
from tui.cli.common import fail, open_workspace
from tui.cli.follow import run_job

PANEL = "Models and masks"


@app.command("export-model", rich_help_panel=PANEL)
def export_model(
    workspace: str = typer.Argument(..., help="The workspace folder."),
    model: str = typer.Option("", "--model", help="Which trained model (model/<name>/); default: the one trained."),
    format: str = typer.Option("dfm", "--format", help="dfm (DeepFaceLive) or onnx: the same graph either way."),
    output: str = typer.Option("", "--output", help="The file to write; default: output/<model>.<format>."),
    best: bool = typer.Option(False, "--best", help="The checkpoint with the lowest smoothed loss, not the newest."),
) -> None:
    """Write a trained model's swap path as a DeepFaceLive .dfm or an .onnx file (batch size free); prints the
    face type and coverage to set in DeepFaceLive."""
    ws = open_workspace(workspace)
    if format not in ("onnx", "dfm"):
        fail(f"{format!r} is not an export format.", "Use --format onnx or --format dfm.")
    where = str(Path(output).expanduser().resolve()) if output else ""
    if where and Path(where).is_dir():
        fail(f"{output} is a folder.", f"Give a file name, for example --output {Path(output) / ('model.' + format)}.")
    run_job(ws, "export_model", {"model": model, "format": format, "output": where,
                                 "which": "best" if best else "latest"})


@app.command("import-model", rich_help_panel=PANEL)
def import_model(
    file: str = typer.Argument(..., help="A .dfm (DeepFaceLab, DeepFaceLive) or .onnx face-swap model."),
    workspace: str = typer.Argument(..., help="The workspace folder."),
    name: str = typer.Option(..., "--name", help="The model's name in the workspace (model/<name>/)."),
    face_type: str = typer.Option("", "--face-type", help="What its crops cover when the file does not say "
                                  "(DeepFaceLab's do not): h, mf, f, wf or head (or swapwizard's names)."),
) -> None:
    """Make a .dfm or .onnx model a model of the workspace, for merge, its preview and compare (not training)."""
    ws = open_workspace(workspace)
    path = Path(file).expanduser().resolve()
    if not path.is_file():
        fail(f"There is no file at {file}.", "Give the path of a .dfm or .onnx file.")
    run_job(ws, "import_model", {"file": str(path), "name": name, "face_type": face_type})
