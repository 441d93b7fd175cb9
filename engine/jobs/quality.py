"""Job ``quality``: measure one model (or an already merged video) on the held-out destination frames.

    swapwizard quality WS [--model NAME] [--frames N] [--video output/result.mp4] [--json]

Reconstruction (dst->dst, src->src: SSIM and PSNR in the face mask), pose and expression fidelity,
flicker and sharpness; see engine.quality. The result goes to ``model/<name>/quality.json`` (or
``output/quality_video.json`` for a video), to the model's ``quality_history.json`` with its
iteration, and out as a ``metrics`` event.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.jobs import JobKind
from engine.report import Reporter
from engine.workspace import Workspace


@dataclass
class Params:
    #: The model to measure ("": workspace.toml's [train] model, else "default").
    model: str = ""
    #: At most this many held-out destination frames (consecutive) are merged and measured.
    frames: int = 50
    #: Measure this merged video (workspace-relative or absolute) instead of merging with the model.
    video: str = ""
    device: str = "auto"


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    from engine.quality.evaluate import evaluate

    return evaluate(ws, ws.model_name(params.model), report, frames=params.frames, video=params.video,
                    device=params.device)


JOB = JobKind(kind="quality", params=Params, run=run, label="Measuring quality")
