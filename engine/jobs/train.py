"""Training job: teach a model to turn the dst person's face into the src person's.

    swapwizard train WS [--preset saehd|quick|tiny] [--iters N] [--model NAME] [--device D] [--gpus N]

Runs in the engine's job process; streams metrics, progress and previews; saves checkpoints to
``WS/model/<name>/`` (see engine.train.checkpoint) every ``save_every_min`` minutes and before it
stops (target reached, cancel, SIGTERM, or a client's {"command": "save"}). With ``gpus > 1`` it
launches ``python -m torch.distributed.run --nproc_per_node N -m engine.ddp_worker`` and
relays rank 0's events. The result holds the final losses and the loss history (also in
``WS/model/<name>/loss_history.json``).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.quality.training import TrainingQuality
from engine.report import Reporter
from engine.workspace import Workspace

KIND = "train"


def STEPS(params: Params) -> list[str]:  # noqa: N802 - the job contract's name
    return [] if params.pretrain_faces else ["train"]


@dataclass
class Params:
    #: Model name: several models may live in one workspace (WS/model/<name>/).
    model: str = ""
    #: saehd | quick | tiny (only when the model is created).
    preset: str = ""
    #: Target iteration (absolute, like DeepFaceLab's); 0 trains until stopped; None: [train] iters in
    #: workspace.toml, else the preset's (saehd 100000, quick 20000, tiny 300).
    iters: int | None = None
    device: str = ""
    gpus: int = 1
    # Model shape (only when the model is created):
    arch: str | None = None
    resolution: int | None = None
    ae_dims: int | None = None
    e_dims: int | None = None
    d_dims: int | None = None
    d_mask_dims: int | None = None
    # Training options (None: from workspace.toml, the model's last run, or the preset):
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    weight_decay: float | None = None
    warmup_iters: int | None = None
    clip_grad: float | None = None
    masked_training: bool | None = None
    eyes_mouth_prio: bool | None = None
    gan_power: float | None = None
    perceptual_power: float | None = None
    random_warp: bool | None = None
    flip_src: bool | None = None
    flip_dst: bool | None = None
    hsv_power: float | None = None
    colour_transfer: str | None = None
    precision: str | None = None
    channels_last: bool | None = None
    compile: bool | None = None
    # Saving and previews:
    save_every_min: float | None = None
    save_every_iters: int | None = None
    backup_every_min: float | None = None
    backups_keep: int | None = None
    preview_every_min: float | None = None
    sync_every: int | None = None
    seed: int | None = None
    #: CPU threads for torch (0 or None: torch's default).
    threads: int | None = None
    #: A folder of aligned faces (or a workspace) to pretrain on; both sides come from it.
    pretrain_faces: str = ""
    #: Test switches: force a NaN loss / an out-of-memory error once at this iteration (-1 never).
    debug_nan_at: int = -1
    debug_oom_at: int = -1


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    if params.gpus > 1:
        from engine.train.launch import run_distributed

        return run_distributed(ws, params, report)
    from engine.train.loop import TrainingRun
    from engine.train.resolve import resolve
    from engine.train.signals import stop_on_sigterm

    config = resolve(ws, params)
    with stop_on_sigterm() as stopped:
        return TrainingRun(ws, config, report, stop_requested=stopped, watch=TrainingQuality).run()
