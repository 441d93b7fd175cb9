"""``swapwizard quality WS`` (one model's quality) and ``swapwizard compare WS --models A B`` (side by side).

Both run as jobs in the workspace's engine (progress on stderr), then print the result from the JSON
file the job wrote: a table, or the JSON itself with ``--json``. Ctrl-C detaches; the job keeps
running and its file appears when it ends.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape

from engine.atomic import read_json
from engine.client import EngineClient
from engine.errors import UserError
from engine.launcher import ensure_engine
from engine.workspace import Workspace
from tui.cli.app import app
from tui.cli.common import EXIT_DONE, EXIT_USAGE, err, fail, open_workspace, out
from tui.cli.follow import follow
from tui.cli.options import c2pa_options
from tui.quality_tables import compare_table, opening_plot, quality_table, verdict_lines

COMPARE_JSON = "output/compare/compare.json"
VIDEO_JSON = "output/quality_video.json"
def _run(ws: Workspace, kind: str, params: dict[str, Any], result_file: Path, quiet: bool) -> dict[str, Any] | None:
    """Submit, follow to the end and return the job's JSON output (None when detached); exits on failure."""
    submitted = time.time()
    try:
        ensure_engine(ws)
        with EngineClient(ws, timeout=None) as client:
            last_seq = client.status()["last_seq"]
            job_id = client.submit(kind, params)["job_id"]
            code = follow(client, job_id, last_seq + 1, quiet=quiet)
    except UserError as exc:
        fail(exc.message, exc.hint, EXIT_USAGE)
    if code != EXIT_DONE:
        raise typer.Exit(code)
    try:
        fresh = result_file.stat().st_mtime >= submitted - 1
    except OSError:
        fresh = False
    if not fresh:
        return None  # detached with Ctrl-C: the job goes on and writes the file when it ends
    return read_json(result_file, default=None)


def print_quality(result: dict[str, Any]) -> None:
    out.print(quality_table(result))
    metrics = result.get("metrics", {})
    out.print(f"Measured on {len(result.get('frames', []))} frames ({result.get('frames_note', '')}).")
    if result.get("unseen"):
        out.print(f"Frames the model never trained on: {result['unseen']}.")
    if metrics.get("faces_lost"):
        out.print(f"The face mesh found no face in {metrics['faces_lost']} of {metrics['faces']} swapped frames.")
    for line in verdict_lines(result):
        out.print(line, markup=True)  # the verdict's text is escaped inside its colour
    for line in opening_plot(metrics):
        out.print(line, markup=True)


def print_compare(result: dict[str, Any]) -> None:
    out.print(compare_table(result))
    out.print(f"Frames: {len(result['frames'])} ({result['frames_note']}). ~ = estimated from the loss history.")
    for model in result.get("models", []):
        if model.get("unseen") and model["unseen"] != "yes":
            out.print(f"{model['name']}: never trained on these frames? {model['unseen']}")
    for what, path in result.get("outputs", {}).items():
        out.print(f"{what}: {path}")
    for model in result.get("models", []):
        for line in verdict_lines(model):
            out.print(f"{escape(model['name'])}: {line}", markup=True)
        for line in opening_plot(model.get("metrics", {})):
            out.print(f"{escape(model['name'])}: {line}", markup=True)


@app.command()
def quality(
    workspace: str = typer.Argument(..., help="The workspace folder."),
    model: str = typer.Option("", "--model", help="Which model (model/<name>/; default: the workspace's)."),
    frames: int = typer.Option(50, "--frames", help="At most this many held-out destination frames."),
    video: str = typer.Option("", "--video", help="Measure this merged video instead (a file here, or in the workspace: output/result.mp4)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Measure a model on held-out frames: reconstruction, pose/expression fidelity, flicker, sharpness."""
    ws = open_workspace(workspace)
    if frames < 2:
        fail("--frames must be at least 2.", "For example: --frames 50.")
    name = ws.model_name(model)  # as the quality job resolves it
    result_file = ws.root / VIDEO_JSON if video else ws.model_dir(name) / "quality.json"
    if video and Path(video).expanduser().is_file():  # a file here, as this shell means it; else the workspace's
        video = str(Path(video).expanduser().absolute())
    params = {"model": name, "frames": frames, "video": video, "device": device}
    result = _run(ws, "quality", params, result_file, quiet=as_json)
    if result is None:
        err.print(f"Detached; the result will be in {result_file}.")
    elif as_json:
        print(json.dumps(result, indent=2))
    else:
        print_quality(result)


@app.command()
@c2pa_options
def compare(
    workspace: str = typer.Argument(..., help="The workspace folder."),
    models: Optional[list[str]] = typer.Option(None, "--models", help="Two or more model names (default: all)."),
    names: Optional[list[str]] = typer.Argument(None, help="More model names (after --models A)."),
    frames: int = typer.Option(50, "--frames", help="At most this many held-out destination frames."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    c2pa: Optional[dict] = None,
) -> None:
    """Merge the same held-out frames with each model: metrics table, side-by-side video, contact sheet."""
    ws = open_workspace(workspace)
    chosen = [*(models or []), *(names or [])]
    if len(chosen) == 1:
        fail("A comparison needs at least two models.", "For example: swapwizard compare WS --models a b")
    if frames < 2:
        fail("--frames must be at least 2.", "For example: --frames 50.")
    result = _run(ws, "compare", {"models": chosen, "frames": frames, "device": device,
                                  **(c2pa or {})}, ws.root / COMPARE_JSON, quiet=as_json)
    if result is None:
        err.print(f"Detached; the result will be in {ws.root / COMPARE_JSON}.")
    elif as_json:
        print(json.dumps(result, indent=2))
    else:
        print_compare(result)
