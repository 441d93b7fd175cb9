"""One model's quality: reconstruction on held-out faces and the swap on held-out destination frames.

    result = evaluate(ws, "default", report)      # also writes model/<name>/quality.json

With ``video`` it measures an already merged video (for example ``output/result.mp4``) against the
destination instead of merging with the model; with ``video`` and no trained model it measures only
the video. Every measurement of a model is appended to its quality history (``engine.quality.history``)
with the model's iteration, and reported as a ``metrics`` event.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from engine.atomic import atomic_write_json
from engine.errors import UserError
from engine.faces.detect import FaceFinder
from engine.merge import settings as merge_settings
from engine.quality import history
from engine.quality.cost import training_cost, unseen_check
from engine.quality.expression import expression_fidelity
from engine.quality.frames import measured_frames, records_by_frame, swapped_frames
from engine.quality.likeness import likeness_meter
from engine.quality.reconstruct import held_out_faces, reconstruction_metrics
from engine.quality.swap import SwapMeter
from engine.quality.verdict import verdicts
from engine.report import NullReporter, Reporter
from engine.train.api import load_model, model_exists
from engine.workspace import Workspace

RESULT_FILE = "quality.json"
VIDEO_RESULT = "output/quality_video.json"

#: Metric name -> (what it means, which direction is better: "high", "low" or a target value).
METRICS: dict[str, tuple[str, Any]] = {
    "ssim_dst": ("dst->dst SSIM in the face mask (held-out)", "high"),
    "psnr_dst": ("dst->dst PSNR dB in the face mask (held-out)", "high"),
    "ssim_src": ("src->src SSIM in the face mask (held-out)", "high"),
    "psnr_src": ("src->src PSNR dB in the face mask (held-out)", "high"),
    "pose_error": ("landmarks of the swap vs the destination, / face size", "low"),
    "eyes_error": ("the same, eyes only", "low"),
    "mouth_error": ("the same, mouth only", "low"),
    "extra_flicker": ("frame-to-frame change of the swap / the destination's, minus 1", 0.0),
    "sharpness": ("high-frequency energy of the swap / the destination's", 1.0),
    "id_src": ("identity distance of the swap to the source person (dlib; same person < 0.6)", "low"),
    "id_dst": ("identity distance of the swap to the destination person", "high"),
    "id_closer_src": ("share of swapped faces closer to the source person than to the destination", "high"),
    "expr_mouth_ratio": ("mouth landmark error of the swap / of the reconstruction (held-out crops; 1 = floor)", "low"),
    "expr_eyes_ratio": ("the same, eyes", "low"),
    "expr_pose_ratio": ("the same, all 68 points (head pose)", "low"),
    "expr_mouth_corr": ("correlation of the swap's mouth opening with the destination's, over faces", "high"),
    "expr_mouth_spread": ("how far the swap's mouth opens: its opening's spread over the destination's (0: frozen)", 1.0),
    "expr_eyes_corr": ("correlation of the swap's eye opening with the destination's, over faces", "high"),
    "expr_eyes_spread": ("how far the swap's eyes open: their opening's spread over the destination's", 1.0),
}


def resolve_video(ws: Workspace, video: str) -> Path:
    path = Path(video).expanduser()
    path = path if path.is_absolute() else ws.root / path
    if not path.exists():
        raise UserError(f"There is no video at {video}.", "Give a path relative to the workspace, e.g. output/result.mp4.")
    return path


def evaluate(ws: Workspace, model_name: str, report: Reporter | None = None, frames: int = 50,
             video: str = "", device: str = "auto") -> dict[str, Any]:
    report = report or NullReporter()
    started = time.time()
    model_dir = ws.model_dir(model_name)
    has_model = model_exists(model_dir)
    if not has_model and not video:
        raise UserError(f"There is no trained model {model_name!r} in this workspace.",
                        f"Train one first (swapwizard train WS --model {model_name}), or measure a merged "
                        "video with --video output/result.mp4.")
    model = load_model(model_dir, device=device, warn=report.warning) if has_model else None
    chosen = measured_frames(ws, frames)
    if not chosen.held_out:
        report.warning(chosen.note)
    values: dict[str, Any] = {}
    finder = FaceFinder(min_presence=0.0)
    if model is not None:
        report.progress("reconstruct", 0, 1, unit="steps")
        faces = {side: held_out_faces(ws, side, model.resolution) for side in ("src", "dst")}
        values.update(reconstruction_metrics(model.network, faces, model.device))
        values.update(expression_fidelity(model.network, faces["dst"], model.device, finder, limit=len(faces["dst"].crops)))
        report.progress("reconstruct", 1, 1, unit="steps")
    else:
        values.update({f"{m}_{side}": None for m in ("ssim", "psnr") for side in ("src", "dst")})
    video_path = resolve_video(ws, video) if video else None
    records = records_by_frame(ws)
    meter = SwapMeter(finder, likeness_meter(ws, report.warning))
    try:
        models = [] if video_path is not None else [model]
        for done, (index, dst, merged) in enumerate(swapped_frames(ws, chosen.frames, models,
                                                                    merge_settings.load(ws), video_path), 1):
            report.check_cancelled()
            meter.add(index, dst, merged[0], records.get(index))
            report.progress("measure", done, len(chosen.frames), unit="frames")
    finally:
        finder.close()
    values.update(meter.result())
    unseen = None
    if model is not None:
        unseen = unseen_check(training_cost(model_dir), chosen.frames)
        if unseen.startswith("no"):
            report.warning(f"Model {model_name} trained on frames it is measured on: {unseen}.")
    result = {
        "model": model_name if model is not None else None, "iteration": model.iteration if model else None,
        "video": ws.rel(video_path) if video_path else None, "frames": chosen.frames, "held_out": chosen.held_out,
        "frames_note": chosen.note, "unseen": unseen, "metrics": values,
        "verdicts": [{"level": v.level, "text": v.text, "topic": v.topic}
                     for v in verdicts(values, model.network.options.arch if model is not None else None)],
        "seconds": round(time.time() - started, 2),
        "measured_at": round(time.time(), 2),
    }
    if model is not None and video_path is None:
        history.append(model_dir, model.iteration, "quality", values)
        atomic_write_json(model_dir / RESULT_FILE, result)
        result["report"] = ws.rel(model_dir / RESULT_FILE)
    else:
        atomic_write_json(ws.root / VIDEO_RESULT, result)
        result["report"] = VIDEO_RESULT
    report.metrics(iter=result["iteration"], **{f"quality_{k}": v for k, v in values.items() if k in METRICS})
    return result
