"""``swapwizard merge WS`` (merge and export) and ``swapwizard run WS`` (every step, unattended).

Each merge knob (declared in engine/settings.py) is an option; an option left out takes the workspace's ``[merge]`` value, and the
values used are saved there for the next merge. Both commands run as jobs in the workspace's engine:
Ctrl-C detaches (the job keeps running; ``swapwizard attach WS`` follows it again).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tui.cli.app import app
from tui.cli.common import fail, open_workspace
from tui.cli.follow import run_job
from tui.cli.options import c2pa_options, check_workspace, setting_options


@app.command()
@setting_options("merge")
@c2pa_options
def merge(
    workspace: str = typer.Argument(..., help="The workspace folder."),
    model: str = typer.Option("", "--model", help="Which trained model (model/<name>/); default: the one trained."),
    restart: bool = typer.Option(False, "--restart", help="Discard an interrupted merge's finished parts."),
    dst: str = typer.Option("", "--dst", help="Another clip to merge with the trained model: extracted into "
                            "extra_dst/<name>/ and merged there; the workspace's own destination is not touched."),
    output: str = typer.Option("", "--output", help="Also copy the result to this file (or folder)."),
    detach: bool = typer.Option(False, "--detach", help="Queue the job and return at once."),
    settings: Optional[dict] = None,
    c2pa: Optional[dict] = None,
) -> None:
    """Paste the trained face into every destination frame and export output/result.mp4 (labelled); with
    --dst, into another clip (extra_dst/<name>/output/result.mp4)."""
    ws = open_workspace(workspace)
    check_workspace(ws, "merge")
    # Paths the user typed are taken from where they typed them (the engine runs elsewhere).
    where = {key: str(Path(value).expanduser().resolve()) for key, value in (("dst", dst), ("output", output))
             if value}
    if "dst" in where and not Path(where["dst"]).is_file():
        fail(f"There is no video at {dst}.", "Give the path of the clip to merge, for example --dst other.mp4.")
    params = {"model": model or None, "restart": restart, **where, **(settings or {}), **(c2pa or {})}
    run_job(ws, "merge", {k: v for k, v in params.items() if v is not None}, detach=detach)


@app.command("run")
@setting_options("train", only=("preset", "iters", "until", "time_limit"))
@c2pa_options
def run_pipeline(
    workspace: str = typer.Argument(..., help="The workspace folder (with its source and destination)."),
    model: str = typer.Option("", "--model", help="Which model (model/<name>/); default: [train] model or 'default'."),
    detach: bool = typer.Option(False, "--detach", help="Queue the job and return at once."),
    settings: Optional[dict] = None,
    c2pa: Optional[dict] = None,
) -> None:
    """Every step unattended: extract both sides, check, train (until good, the preset's target as the ceiling),
    merge and export; skips steps already done."""
    ws = open_workspace(workspace)
    check_workspace(ws, "extract", "train", "merge")
    settings = settings or {}
    if settings.get("iters") == 0:
        fail("--iters must be at least 1 for an unattended run (it has to stop to merge).", "For example: --iters 2000.")
    params = {**settings, "model": model or None, **(c2pa or {})}
    run_job(ws, "run", {k: v for k, v in params.items() if v is not None}, detach=detach)
