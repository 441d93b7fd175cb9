"""``swapwizard merge WS`` (merge and export) and ``swapwizard run WS`` (every step, unattended).

Each merge knob is an option; an option left out takes the workspace's ``[merge]`` value, and the
values used are saved there for the next merge. Both commands run as jobs in the workspace's engine:
Ctrl-C detaches (the job keeps running; ``swapwizard attach WS`` follows it again).
"""

from __future__ import annotations

from typing import Optional

import typer

from engine.merge.settings import BLEND_MODES, COLOUR_MODES, MASK_MODES, PRESETS
from tui.cli.app import app
from tui.cli.common import fail, open_workspace
from tui.cli.follow import run_job


@app.command()
def merge(
    workspace: str = typer.Argument(..., help="The workspace folder."),
    model: str = typer.Option("", "--model", help="Which trained model (model/<name>/); default: the one trained."),
    mask: Optional[str] = typer.Option(None, "--mask", help=f"Mask: {', '.join(MASK_MODES)}."),
    erode: Optional[int] = typer.Option(None, "--erode", help="Shrink (+) or grow (-) the mask, px of a 256 crop."),
    blur: Optional[int] = typer.Option(None, "--blur", help="Soften the mask edge, px of a 256 crop."),
    edge_fade: Optional[int] = typer.Option(None, "--edge-fade", help="Fade out before the crop edge, px of a 256 crop."),
    colour: Optional[str] = typer.Option(None, "--colour", "--color", help=f"Colour transfer: {', '.join(COLOUR_MODES)}."),
    blend: Optional[str] = typer.Option(None, "--blend", help=f"Blend: {', '.join(BLEND_MODES)}."),
    face_scale: Optional[float] = typer.Option(None, "--face-scale", help="Scale the new face (0.5-1.5; 1 = as is)."),
    sharpen: Optional[float] = typer.Option(None, "--sharpen", help="Sharpen the new face (0 = off, 1 = strong)."),
    crf: Optional[int] = typer.Option(None, "--crf", help="Video quality, x264 CRF 0-51 (18 = visually lossless)."),
    preset: Optional[str] = typer.Option(None, "--encoder-preset", help=f"x264 speed: {', '.join(PRESETS)}."),
    audio: Optional[str] = typer.Option(None, "--audio", help="Audio file to use ('' = the destination's, 'none' = silent)."),
    mark: Optional[bool] = typer.Option(None, "--mark/--no-mark", help="Burn a visible SYNTHETIC mark in the corner."),
    png: Optional[bool] = typer.Option(None, "--png/--no-png", help="Also write output/frames/*.png (labelled)."),
    mask_video: Optional[bool] = typer.Option(None, "--mask-video/--no-mask-video", help="Also write output/result_mask.mp4."),
    restart: bool = typer.Option(False, "--restart", help="Discard an interrupted merge's finished parts."),
    detach: bool = typer.Option(False, "--detach", help="Queue the job and return at once."),
) -> None:
    """Paste the trained face into every destination frame and export output/result.mp4 (labelled)."""
    ws = open_workspace(workspace)
    choices = {"mask": (mask, MASK_MODES), "colour": (colour, COLOUR_MODES), "blend": (blend, BLEND_MODES),
               "preset": (preset, PRESETS)}
    for name, (value, allowed) in choices.items():
        if value is not None and value not in allowed:
            fail(f"--{name} {value!r} is not one of the choices.", f"Use one of: {', '.join(allowed)}.")
    params = {"model": model or None, "mask": mask, "erode": erode, "blur": blur, "edge_fade": edge_fade,
              "colour": colour, "blend": blend, "face_scale": face_scale, "sharpen": sharpen, "crf": crf,
              "preset": preset, "audio": audio, "mark": mark, "png": png, "mask_video": mask_video,
              "restart": restart}
    run_job(ws, "merge", {k: v for k, v in params.items() if v is not None}, detach=detach)


@app.command("run")
def run_pipeline(
    workspace: str = typer.Argument(..., help="The workspace folder (with its source and destination)."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Model preset for training (e.g. tiny)."),
    iters: Optional[int] = typer.Option(None, "--iters", help="Train to this many iterations (default: the preset's)."),
    model: str = typer.Option("", "--model", help="Which model (model/<name>/); default: [train] model or 'default'."),
    detach: bool = typer.Option(False, "--detach", help="Queue the job and return at once."),
) -> None:
    """Every step unattended: extract both sides, check, train, merge and export; skips steps already done."""
    ws = open_workspace(workspace)
    if iters is not None and iters < 1:
        fail("--iters must be at least 1.", "For example: --iters 2000.")
    params = {"preset": preset, "iters": iters, "model": model or None}
    run_job(ws, "run", {k: v for k, v in params.items() if v is not None}, detach=detach)
