"""``swapwizard study WS --models df,liae,amp[,cnn] --gan 0,0.1 --budget 30m|N``: train each configuration
for the same budget on the same faces, measure them together, write output/study/report.md (engine.jobs.study).

Every [train] option but the ones the study sets per configuration (arch, GAN power, model, iters) is
shared by all of them, e.g. ``--preset tiny --ae-dims 32``. Running the same command again after an
interruption goes on with the next unfinished configuration.
"""

from __future__ import annotations

from typing import Optional

import typer

from engine import settings as declared
from engine.errors import UserError
from tui.cli.app import app
from tui.cli.common import fail, open_workspace
from tui.cli.follow import run_job
from tui.cli.options import c2pa_options, check_workspace, setting_options

#: The [train] settings the study sets per configuration (engine.jobs.study) are not options here.
_SHARED = tuple(k for k in declared.keys("train") if k not in ("arch", "gan_power", "model", "iters"))


def _split(text: str, what: str) -> list[str]:
    items = [part.strip() for part in text.split(",") if part.strip()]
    if not items:
        fail(f"--{what} names nothing.", "Give a comma-separated list, e.g. --models df,liae,amp --gan 0,0.1.")
    return items


@app.command()
@setting_options("train", only=_SHARED)
@c2pa_options
def study(
    workspace: str = typer.Argument(..., help="The workspace folder (both sides extracted)."),
    models: str = typer.Option("df,liae,amp", "--models", help="Architectures to compare: df, liae, amp, cnn "
                               "(variants such as liae-ud too), comma-separated."),
    gan: str = typer.Option("0,0.1", "--gan", help="GAN powers, comma-separated; every model is trained with each."),
    budget: str = typer.Option(..., "--budget", help="Each configuration's budget: N iterations, or wall time "
                               "such as 30m, 2h, 90s."),
    frames: int = typer.Option(50, "--frames", help="Held-out destination frames to measure on."),
    restart: bool = typer.Option(False, "--restart", help="Train every configuration anew."),
    detach: bool = typer.Option(False, "--detach", help="Queue the job and return at once."),
    settings: Optional[dict] = None,
    c2pa: Optional[dict] = None,
) -> None:
    """Train each model (with each GAN power) for the same budget, measure all on the same frames, and write
    output/study/report.md, report.json, a contact sheet and a side-by-side video (labelled)."""
    ws = open_workspace(workspace)
    check_workspace(ws, "train")
    try:  # the budget and models are checked by the engine when it takes the job (one sentence, exit 2)
        powers = [declared.get("train", "gan_power").check(float(g), "--gan") for g in _split(gan, "gan")]
    except ValueError:
        fail(f"--gan {gan} is not a list of numbers.", "For example: --gan 0,0.1.")
    except UserError as exc:
        fail(exc.message, exc.hint)
    params = {"models": _split(models, "models"), "gan": powers, "budget": budget, "frames": frames,
              "restart": restart, **(settings or {}), **(c2pa or {})}
    run_job(ws, "study", params, detach=detach)
