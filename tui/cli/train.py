"""``swapwizard train WS``: train the face-swap model as an engine job; ``train-preview``, ``train-save`` and
``train-target`` talk to the running training.

Every option (a [train] setting declared in engine/settings.py) left out comes from ``[train]`` in workspace.toml, then from the model's previous run,
then from the preset. ``--iters`` is the target iteration (absolute, like DeepFaceLab's; 0 trains
until stopped). Ctrl-C detaches: the job keeps training; ``swapwizard attach WS`` follows it again and
``swapwizard cancel WS`` stops it (after a save).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from engine.client import EngineClient
from engine.errors import UserError
from engine.settings import get
from tui.cli.app import app
from tui.cli.common import fail, open_workspace, out
from tui.cli.follow import run_job
from tui.cli.options import check_workspace, setting_options


@app.command()
@setting_options("train")
def train(
    workspace: str = typer.Argument(..., help="The workspace folder."),
    gpus: int = typer.Option(1, "--gpus", help="GPUs to train on together (DistributedDataParallel)."),
    pretrain: str = typer.Option("", "--pretrain", help="Pretrain on this folder of aligned faces (or workspace)."),
    nnodes: int = typer.Option(1, "--nnodes", help="Machines training together (the same command on each)."),
    node_rank: int = typer.Option(0, "--node-rank", help="This machine's number: 0 holds the model, 1.. help."),
    master: str = typer.Option("", "--master", help="Node 0's HOST:PORT, reachable from every machine."),
    detach: bool = typer.Option(False, "--detach", help="Queue the job and return at once."),
    settings: Optional[dict] = None,
) -> None:
    """Train the face-swap model: metrics, previews and checkpoints stream to every attached client."""
    ws = open_workspace(workspace)
    if (settings or {}).get("model"):
        try:  # refused here, before a job: the job failed later, quoting the name (issue 24)
            ws.model_dir(str(settings["model"]))  # type: ignore[index]
        except UserError as exc:
            fail(exc.message, exc.hint)
    check_workspace(ws, "train")
    if gpus < 1:
        fail("--gpus must be at least 1.", "For example: --gpus 2.")
    if nnodes < 1 or (nnodes > 1 and not (0 <= node_rank < nnodes)):
        fail(f"--node-rank must be between 0 and {nnodes - 1}, and --nnodes at least 1.",
             "Number the machines 0, 1, ... with node 0 the one whose workspace holds the model.")
    if nnodes > 1 and ":" not in master:
        fail("Training on several machines needs --master HOST:PORT (node 0's address).",
             "For example: --nnodes 2 --node-rank 1 --master 10.0.0.5:29500.")
    if pretrain:
        # The engine runs elsewhere (its own process and folder): it gets the folder as this shell means it.
        folder = Path(pretrain).expanduser().resolve()
        if not folder.is_dir():
            fail(f"There is no folder {pretrain} to pretrain on.",
                 "Give a folder of aligned face crops (such as a workspace's data_src/aligned) or an extracted workspace.")
        pretrain = str(folder)
    params = {**(settings or {}), "gpus": gpus, "pretrain_faces": pretrain or None}
    if nnodes > 1:
        params.update({"nnodes": nnodes, "node_rank": node_rank, "master": master})
    if not params.get("model"):
        params.pop("model", None)
    run_job(ws, "train", {k: v for k, v in params.items() if v is not None}, detach=detach)


def _send(workspace: str, command: str, args: dict | None = None, said: str = "") -> None:
    """Send ``command`` to the running job and say what was asked (it printed nothing: did it land?)."""
    ws = open_workspace(workspace)
    try:
        with EngineClient(ws) as client:
            reply = client.command(command, args or {})
    except UserError as exc:
        fail(exc.message, exc.hint)
    out.print(f"{said} (job {reply.get('job_id', '?')}); follow it with: swapwizard attach {ws.root}", markup=False)


@app.command("train-preview")
def preview(workspace: str = typer.Argument(..., help="The workspace folder.")) -> None:
    """Ask the running training for a preview now (model/<name>/previews/latest.png)."""
    _send(workspace, "preview", said="Asked the running training for a preview")


@app.command("train-save")
def save(workspace: str = typer.Argument(..., help="The workspace folder.")) -> None:
    """Ask the running training to save a checkpoint now."""
    _send(workspace, "save", said="Asked the running training to save a checkpoint")


@app.command("train-target")
def target(workspace: str = typer.Argument(..., help="The workspace folder."),
           iters: int = typer.Argument(..., help="New target iteration (0 = until stopped).")) -> None:
    """Change the running training's target iteration."""
    try:
        get("train", "iters").check(iters, "train-target")
    except UserError as exc:
        fail(exc.message, exc.hint)
    _send(workspace, "set_target", {"iters": iters},
          said=f"Target set to iteration {iters} for the running training" if iters else
          "The running training now trains until it is stopped")
