"""Merge a workspace: destination video + trained model -> output/result.mp4, labelled, with audio.

Called by the ``merge`` job (and in-process by the ``run`` pipeline job)::

    render(ws, settings, model_name="default", report=reporter)

Resumable: frames go into whole MP4 segments under ``output/.merge/``; after an interruption
(cancel, crash, kill -9) the next merge with the same settings and model continues after the last
whole segment, and with other settings it starts over. ``output/result.mp4`` is written under a
temp name and renamed only when complete, so it is never a truncated file.

Every file exported (result, mask video, PNG frames) carries signed Content Credentials (a C2PA
manifest, engine.media.credentials) unless ``c2pa=False`` (``--no-c2pa``), which the job's events and
result say. The signing identity is checked before the merge starts, so a bad certificate fails at once.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_write_bytes
from engine.errors import UserError
from engine.media import credentials as content_credentials
from engine.media.decode import iter_frames
from engine.media.encode import draw_mark, join_segments, png_with_text, synthetic_label
from engine.media.probe import probe
from engine.merge import settings as merge_settings
from engine.merge.masks import require_segment
from engine.merge.merger import merge_frames
from engine.merge.segments import SegmentedVideo, prepare_folder
from engine.merge.settings import MergeSettings
from engine.merge.targets import target_faces
from engine.report import NullReporter, Reporter
from engine.segment.store import masks_identity
from engine.train.api import load_model

RESULT_NAME = "result.mp4"
MASK_NAME = "result_mask.mp4"
WORK_NAME = ".merge"
PREVIEW_PATH = ".swapwizard/previews/merge.jpg"
PREVIEW_EVERY_S = 2.0


def audio_source(ws: Any, settings: MergeSettings, info: Any) -> Path | None:
    """The audio to copy: the destination's, a chosen file, or none."""
    if settings.audio.strip().lower() == "none":
        return None
    if settings.audio:
        chosen = Path(settings.audio).expanduser()
        chosen = chosen if chosen.is_absolute() else ws.root / chosen
        if not chosen.is_file():
            raise UserError(f"The audio file {settings.audio} does not exist.",
                            "Give a path relative to the workspace, or audio = \"\" for the destination's sound.")
        return chosen
    return Path(info.path) if getattr(info, "audio", None) else None


def png_name(info: Any, index: int) -> str:
    """Frame ``index``'s PNG name: the input image's own name for an image folder, else its number."""
    images = getattr(info, "images", None) or []
    if info.kind == "images" and index < len(images):
        return Path(images[index]).stem + ".png"
    return f"{index:06d}.png"


def _fingerprint(ws: Any, settings: MergeSettings, model_name: str, model: Any, dst: Path,
                 segment_frames: int) -> dict[str, Any]:
    """What the segments depend on; export-only knobs (audio, png) are left out on purpose."""
    alignments = ws.alignments_path("dst")
    knobs = {k: v for k, v in settings.to_dict().items() if k not in ("audio", "png")}
    return {"settings": knobs, "model": model_name, "iteration": int(getattr(model, "iteration", 0)),
            "dst": [dst.name, dst.stat().st_size if dst.is_file() else 0, int(dst.stat().st_mtime)],
            "alignments": [alignments.stat().st_size, int(alignments.stat().st_mtime)],
            "segment_frames": segment_frames,
            # the segmenter's masks, painted labels and review marks: re-segmenting mid-merge starts over
            **({"masks": masks_identity(ws.side_dir("dst"))} if "segment" in settings.mask else {})}


class _Threads:
    """Torch's CPU thread count for the merge, put back afterwards (the pipeline trains in-process)."""

    def __init__(self, torch_module: Any = None, previous: int = 0) -> None:
        self.torch, self.previous = torch_module, previous

    def restore(self) -> None:
        if self.torch is not None:
            self.torch.set_num_threads(self.previous)


def _cpu_threads_for(model: Any) -> _Threads:
    """On a CPU, leave two cores to the decoder and the encoder that run beside the model.

    Measured on 2 busy cores: 20 predictions took 7 s with torch's 2 threads spinning against the
    decoder and ffmpeg, and 0.5 s with 1 thread.
    """
    device = getattr(model, "device", None)
    if device is None or getattr(device, "type", str(device)) != "cpu":
        return _Threads()
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, min(previous, (os.cpu_count() or 2) - 2)))
    return _Threads(torch, previous)


def render(ws: Any, settings: MergeSettings, model_name: str = "default", report: Reporter | None = None,
           model: Any = None, restart: bool = False, segment_frames: int = 250, device: str = "auto",
           batch_frames: int | None = None, c2pa: bool = True, c2pa_cert: str = "",
           c2pa_key: str = "") -> dict[str, Any]:
    """Merge every destination frame and export the labelled (and signed) result; returns a summary dict."""
    report = report or NullReporter()
    settings = settings.check()
    dst = ws.source("dst")
    if dst is None:
        raise UserError("The workspace has no destination video.",
                        f"Add one with: swapwizard sources {ws.root} --dst VIDEO")
    info = probe(dst)
    if getattr(info, "variable_fps", False):
        report.warning(f"{dst.name} has a variable frame rate; the result keeps every frame at a constant "
                       f"{info.fps} fps, so its sound may drift slightly out of sync.")
    audio = audio_source(ws, settings, info)  # a missing audio file is found now, not after the merge
    if model is None:
        model = load_model(ws.model_dir(model_name), device=device, warn=report.warning)
    if hasattr(model, "morph"):
        model.morph = settings.morph  # AMP: how far toward the source (other models ignore it)
    credentials = content_credentials.for_workspace(
        ws, report, enabled=c2pa, cert=c2pa_cert, key=c2pa_key,
        models=[{"name": model_name, "iteration": int(getattr(model, "iteration", 0))}])
    # Saved once the inputs are found good (a missing audio file or model is not remembered), before
    # the long part, so the wizard and the next merge (a resume) start from these choices.
    merge_settings.save(ws, settings)
    faces = target_faces(ws, getattr(model, "face_type", None))
    require_segment(settings.mask, faces)
    if not faces:
        report.warning("No face of the target track was found in the destination: the result equals the input.")

    out_dir = ws.output_dir
    work = out_dir / WORK_NAME
    kept = prepare_folder(work, _fingerprint(ws, settings, model_name, model, dst, segment_frames), restart)
    fps = info.fps or 25.0
    streams = {"video": SegmentedVideo(work, "video", info.width, info.height, fps, settings.crf,
                                       settings.preset, segment_frames)}
    if settings.mask_video:
        streams["mask"] = SegmentedVideo(work, "mask", info.width, info.height, fps, settings.crf,
                                         settings.preset, segment_frames, gray=True)
    done = min(s.frames_done() for s in streams.values())
    for stream in streams.values():
        stream.truncate(done)
        stream.begin(done)
    if kept and done:
        report.log(f"Resuming the merge at frame {done} (frames before it were merged earlier).")
    total = info.frame_count
    label = synthetic_label()
    png_dir = out_dir / "frames"
    if settings.png:
        png_dir.mkdir(parents=True, exist_ok=True)
    last_preview = [0.0]

    def sink(index: int, frame: np.ndarray, mask: np.ndarray | None) -> None:
        import cv2

        if (frame.shape[1], frame.shape[0]) != (info.width, info.height):
            raise UserError(f"Frame {index} of the destination is {frame.shape[1]}x{frame.shape[0]}, "
                            f"not {info.width}x{info.height} like the first.",
                            "Resize the destination images to one size." if info.kind == "images"
                            else "Re-encode the destination to one frame size.")
        if settings.mark:
            draw_mark(frame)
        streams["video"].write(frame)
        if mask is not None and "mask" in streams:
            streams["mask"].write(mask)
        if settings.png:
            name = png_name(info, index)
            atomic_write_bytes(png_dir / name, png_with_text(frame, label, credentials=credentials, title=name))
        now = time.monotonic()
        if now - last_preview[0] >= PREVIEW_EVERY_S:
            last_preview[0] = now
            ok, jpg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
            if ok:
                atomic_write_bytes(ws.root / PREVIEW_PATH, jpg.tobytes())
                report.preview(PREVIEW_PATH, frame=index)

    if batch_frames is None:
        # A GPU predicts a batch of 32 faces about as fast as one; a CPU gains little from batching.
        batch_frames = 32 if getattr(getattr(model, "device", None), "type", "cpu") == "cuda" else 8
    stats = None
    if done < total or total == 0:
        threads = _cpu_threads_for(model)
        try:
            stats = merge_frames(iter_frames(dst, start=done, fps=fps), faces, model.predict,
                                 model.resolution, settings, sink, report, total=total, done_before=done,
                                 batch_frames=batch_frames, with_mask="mask" in streams)
            for stream in streams.values():
                stream.close()
        except BaseException:
            for stream in streams.values():
                stream.abort()
            raise
        finally:
            threads.restore()
    report.check_cancelled()
    written = streams["video"].frames_done()
    if written == 0:
        raise UserError("The destination gave no frames to merge.", "Check that the destination video plays.")
    if total and abs(written - total) > 1:
        report.warning(f"The destination decoded to {written} frames, its header says {total}.")

    report.progress("export", 0, 1, unit="files")
    # The destination's own sound keeps its timing against the picture (the video may start after
    # the audio); a chosen sound file starts with the first frame; without sound the video starts at 0.
    from_destination = audio is not None and info.kind == "video" and Path(audio) == Path(info.path)
    video_start = float(getattr(info, "video_start", 0.0) or 0.0) if from_destination else 0.0
    result = join_segments(streams["video"].segments(), out_dir / RESULT_NAME,
                           audio_source=audio, video_start_s=video_start, label=label, credentials=credentials)
    outputs = {"video": ws.rel(result)}
    if "mask" in streams:
        outputs["mask_video"] = ws.rel(join_segments(streams["mask"].segments(), out_dir / MASK_NAME,
                                                     video_start_s=video_start, label=label,
                                                     credentials=credentials))
    if settings.png:
        outputs["frames"] = ws.rel(png_dir)
    shutil.rmtree(work, ignore_errors=True)
    report.progress("export", 1, 1, unit="files")
    summary = {"output": outputs["video"], "outputs": outputs, "frames": written, "fps": fps,
               "faces_merged": stats.faces if stats else None, "resumed_from": done,
               "timing": stats.as_dict() if stats else {},
               "credentials": credentials.summary() if credentials is not None
               else {"signed": False, "reason": "turned off with --no-c2pa"},
               "content_credentials": content_credentials.result_line(credentials)}
    signed = (f"signed with Content Credentials ({credentials.identity.describe()})" if credentials is not None
              else "NOT signed with Content Credentials (--no-c2pa)")
    report.log(f"Wrote {outputs['video']}: {written} frames, labelled as synthetic media, {signed}.")
    return summary

