"""``swapwizard train WS``: train the face-swap model as an engine job; ``train-preview``, ``train-save`` and
``train-target`` talk to the running training.

Every option left out comes from ``[train]`` in workspace.toml, then from the model's previous run,
then from the preset. ``--iters`` is the target iteration (absolute, like DeepFaceLab's; 0 trains
until stopped). Ctrl-C detaches: the job keeps training; ``swapwizard attach WS`` follows it again and
``swapwizard cancel WS`` stops it (after a save).
"""

from __future__ import annotations

from typing import Optional

import typer

from tui.cli.app import app
from tui.cli.common import fail, open_workspace
from tui.cli.follow import run_job

PRESETS = ("saehd", "quick", "tiny")


@app.command()
def train(
    workspace: str = typer.Argument(..., help="The workspace folder."),
    preset: Optional[str] = typer.Option(None, "--preset", help="saehd (128 px liae-ud), quick (96 px df-ud) or tiny (64 px, CPU)."),
    iters: Optional[int] = typer.Option(None, "--iters", help="Target iteration (0 = until stopped; default: the preset's)."),
    model: str = typer.Option("", "--model", help="Model name: several can live in one workspace (model/<name>/)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N (CUDA_VISIBLE_DEVICES applies)."),
    gpus: int = typer.Option(1, "--gpus", help="GPUs to train on together (DistributedDataParallel)."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Batch size (per GPU)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate."),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="adamw or rmsprop."),
    arch: Optional[str] = typer.Option(None, "--arch", help="New models only: df or liae, with -u/-d/-ud."),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="New models only: face size in px."),
    ae_dims: Optional[int] = typer.Option(None, "--ae-dims", help="New models only: autoencoder dims."),
    e_dims: Optional[int] = typer.Option(None, "--e-dims", help="New models only: encoder dims."),
    d_dims: Optional[int] = typer.Option(None, "--d-dims", help="New models only: decoder dims."),
    d_mask_dims: Optional[int] = typer.Option(None, "--d-mask-dims", help="New models only: mask decoder dims."),
    gan_power: Optional[float] = typer.Option(None, "--gan-power", help="GAN weight (0 = off; 0.1 is typical late in training)."),
    perceptual_power: Optional[float] = typer.Option(None, "--perceptual-power", help="VGG19 perceptual loss weight (0 = off; needs the weights in the torch cache)."),
    clip_grad: Optional[float] = typer.Option(None, "--clip-grad", help="Clip the gradient norm to this (0 = off)."),
    masked: Optional[bool] = typer.Option(None, "--masked/--no-masked", help="Train inside the face mask only."),
    eyes_mouth: Optional[bool] = typer.Option(None, "--eyes-mouth/--no-eyes-mouth", help="Weight eyes and mouth more."),
    random_warp: Optional[bool] = typer.Option(None, "--random-warp/--no-random-warp", help="Random warp of the inputs."),
    flip_src: Optional[bool] = typer.Option(None, "--flip-src/--no-flip-src", help="Random flip of src faces."),
    flip_dst: Optional[bool] = typer.Option(None, "--flip-dst/--no-flip-dst", help="Random flip of dst faces."),
    hsv_power: Optional[float] = typer.Option(None, "--hsv-power", help="Random hue/saturation/value of src faces (0 = off)."),
    colour_transfer: Optional[str] = typer.Option(None, "--colour-transfer", "--ct", help="none or rct: src samples take dst colours."),
    precision: Optional[str] = typer.Option(None, "--precision", help="auto (bf16/fp16 on GPU, fp32 on CPU), fp32, bf16 or fp16."),
    compile_model: Optional[bool] = typer.Option(None, "--compile/--no-compile", help="torch.compile the model (GPU)."),
    save_every_min: Optional[float] = typer.Option(None, "--save-every", help="Minutes between checkpoints."),
    preview_every_min: Optional[float] = typer.Option(None, "--preview-every", help="Minutes between previews."),
    backup_every_min: Optional[float] = typer.Option(None, "--backup-every", help="Minutes between kept backups."),
    backups_keep: Optional[int] = typer.Option(None, "--backups", help="How many backups to keep."),
    pretrain: str = typer.Option("", "--pretrain", help="Pretrain on this folder of aligned faces (or workspace)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch (default: all cores)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed of a new run."),
    detach: bool = typer.Option(False, "--detach", help="Queue the job and return at once."),
) -> None:
    """Train the face-swap model: metrics, previews and checkpoints stream to every attached client."""
    ws = open_workspace(workspace)
    if preset is not None and preset not in PRESETS:
        fail(f"There is no preset {preset!r}.", f"Use one of: {', '.join(PRESETS)}.")
    if iters is not None and iters < 0:
        fail("--iters must be 0 (until stopped) or more.", "For example: --iters 300.")
    if gpus < 1:
        fail("--gpus must be at least 1.", "For example: --gpus 2.")
    if batch is not None and batch < 1:
        fail("--batch must be at least 1.", "For example: --batch 8.")
    params = {
        "preset": preset, "iters": iters, "model": model or None, "device": device, "gpus": gpus,
        "batch_size": batch, "lr": lr, "optimizer": optimizer, "arch": arch, "resolution": resolution,
        "ae_dims": ae_dims, "e_dims": e_dims, "d_dims": d_dims, "d_mask_dims": d_mask_dims,
        "gan_power": gan_power, "perceptual_power": perceptual_power, "clip_grad": clip_grad, "masked_training": masked, "eyes_mouth_prio": eyes_mouth,
        "random_warp": random_warp, "flip_src": flip_src, "flip_dst": flip_dst, "hsv_power": hsv_power,
        "colour_transfer": colour_transfer, "precision": precision, "compile": compile_model,
        "save_every_min": save_every_min, "preview_every_min": preview_every_min,
        "backup_every_min": backup_every_min, "backups_keep": backups_keep, "pretrain_faces": pretrain or None,
        "threads": threads, "seed": seed,
    }
    run_job(ws, "train", {k: v for k, v in params.items() if v is not None}, detach=detach)


def _send(workspace: str, command: str, args: dict | None = None) -> None:
    from engine.client import EngineClient
    from engine.errors import UserError

    ws = open_workspace(workspace)
    try:
        with EngineClient(ws) as client:
            client.command(command, args or {})
    except UserError as exc:
        fail(exc.message, exc.hint)


@app.command("train-preview")
def preview(workspace: str = typer.Argument(..., help="The workspace folder.")) -> None:
    """Ask the running training for a preview now (model/<name>/previews/latest.png)."""
    _send(workspace, "preview")


@app.command("train-save")
def save(workspace: str = typer.Argument(..., help="The workspace folder.")) -> None:
    """Ask the running training to save a checkpoint now."""
    _send(workspace, "save")


@app.command("train-target")
def target(workspace: str = typer.Argument(..., help="The workspace folder."),
           iters: int = typer.Argument(..., help="New target iteration (0 = until stopped).")) -> None:
    """Change the running training's target iteration."""
    _send(workspace, "set_target", {"iters": iters})
