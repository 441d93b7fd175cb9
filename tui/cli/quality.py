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
from rich.table import Table

from engine.atomic import read_json
from engine.client import EngineClient
from engine.errors import UserError
from engine.launcher import ensure_engine
from engine.workspace import Workspace
from tui.cli.app import app
from tui.cli.common import EXIT_DONE, EXIT_USAGE, err, fail, open_workspace, out
from tui.cli.follow import follow

COMPARE_JSON = "output/compare/compare.json"
VIDEO_JSON = "output/quality_video.json"
#: Metric -> how to print it.
FORMATS = {"ssim_dst": "{:.4f}", "ssim_src": "{:.4f}", "psnr_dst": "{:.2f} dB", "psnr_src": "{:.2f} dB",
           "pose_error": "{:.4f}", "eyes_error": "{:.4f}", "mouth_error": "{:.4f}", "extra_flicker": "{:+.3f}",
           "sharpness": "{:.3f}"}
MEANINGS = {
    "ssim_dst": "dst->dst SSIM in the face mask (held-out; higher is better)",
    "psnr_dst": "dst->dst PSNR in the face mask (higher is better)",
    "ssim_src": "src->src SSIM in the face mask (held-out; higher is better)",
    "psnr_src": "src->src PSNR in the face mask (higher is better)",
    "pose_error": "swap's landmarks vs the destination's / face size (0 is perfect)",
    "eyes_error": "the same, eyes only",
    "mouth_error": "the same, mouth only",
    "extra_flicker": "frame-to-frame change of the swap over the destination's, minus 1 (0: as steady)",
    "sharpness": "fine detail of the swap over the destination's (1: as sharp)",
}


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


def _value(key: str, value: Any) -> str:
    if value is None:
        return "-"
    return FORMATS.get(key, "{}").format(value) if isinstance(value, (int, float)) else str(value)


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def print_quality(result: dict[str, Any]) -> None:
    title = f"model {result['model']} at iteration {result['iteration']}" if result.get("model") else \
        f"video {result.get('video')}"
    table = Table(title=f"Quality of {title}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("what it says")
    metrics = result.get("metrics", {})
    for key, meaning in MEANINGS.items():
        if key in metrics:
            table.add_row(key, _value(key, metrics[key]), meaning)
    out.print(table)
    out.print(f"Measured on {len(result.get('frames', []))} frames ({result.get('frames_note', '')}).")
    if metrics.get("faces_lost"):
        out.print(f"The face mesh found no face in {metrics['faces_lost']} of {metrics['faces']} swapped frames.")


def print_compare(result: dict[str, Any]) -> None:
    names = [m["name"] for m in result["models"]]
    table = Table(title="Models compared on the same held-out frames (* = better)", title_justify="left")
    table.add_column("metric")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("better")
    for row in result["table"]:
        cells = []
        for name in names:
            text = _value(row["metric"], row["values"].get(name))
            cells.append(f"[bold green]{text} *[/]" if name in row["best"] else text)
        table.add_row(row["metric"], *cells, row["better"])
    costs = [m.get("cost", {}) for m in result["models"]]
    table.add_section()
    table.add_row("iterations", *[str(c.get("iterations", "-")) for c in costs], "")
    table.add_row("train time", *[_duration(c.get("train_seconds")) + ("~" if c.get("train_seconds_estimated") else "")
                                  for c in costs], "")
    table.add_row("device", *[str(c.get("device", "-")) for c in costs], "")
    table.add_row("gan_power", *[str(c.get("gan_power", "-")) for c in costs], "")
    out.print(table)
    out.print(f"Frames: {len(result['frames'])} ({result['frames_note']}). ~ = estimated from the loss history.")
    for what, path in result.get("outputs", {}).items():
        out.print(f"{what}: {path}")


@app.command()
def quality(
    workspace: str = typer.Argument(..., help="The workspace folder."),
    model: str = typer.Option("", "--model", help="Which model (model/<name>/; default: the workspace's)."),
    frames: int = typer.Option(50, "--frames", help="At most this many held-out destination frames."),
    video: str = typer.Option("", "--video", help="Measure this merged video instead (e.g. output/result.mp4)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Measure a model on held-out frames: reconstruction, pose/expression fidelity, flicker, sharpness."""
    ws = open_workspace(workspace)
    if frames < 2:
        fail("--frames must be at least 2.", "For example: --frames 50.")
    name = model or ws.section("train").get("model") or "default"  # as the quality job resolves it
    result_file = ws.root / VIDEO_JSON if video else ws.model_dir(name) / "quality.json"
    params = {"model": name, "frames": frames, "video": video, "device": device}
    result = _run(ws, "quality", params, result_file, quiet=as_json)
    if result is None:
        err.print(f"Detached; the result will be in {result_file}.")
    elif as_json:
        print(json.dumps(result, indent=2))
    else:
        print_quality(result)


@app.command()
def compare(
    workspace: str = typer.Argument(..., help="The workspace folder."),
    models: Optional[list[str]] = typer.Option(None, "--models", help="Two or more model names (default: all)."),
    names: Optional[list[str]] = typer.Argument(None, help="More model names (after --models A)."),
    frames: int = typer.Option(50, "--frames", help="At most this many held-out destination frames."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Merge the same held-out frames with each model: metrics table, side-by-side video, contact sheet."""
    ws = open_workspace(workspace)
    chosen = [*(models or []), *(names or [])]
    if len(chosen) == 1:
        fail("A comparison needs at least two models.", "For example: swapwizard compare WS --models a b")
    if frames < 2:
        fail("--frames must be at least 2.", "For example: --frames 50.")
    result = _run(ws, "compare", {"models": chosen, "frames": frames, "device": device}, ws.root / COMPARE_JSON,
                  quiet=as_json)
    if result is None:
        err.print(f"Detached; the result will be in {ws.root / COMPARE_JSON}.")
    elif as_json:
        print(json.dumps(result, indent=2))
    else:
        print_compare(result)
