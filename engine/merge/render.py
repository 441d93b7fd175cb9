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

from engine.atomic import atomic_write_bytes, atomic_write_json, read_json
from engine.errors import UserError
from engine.interop.load import load_model
from engine.media import credentials as content_credentials
from engine.media.decode import iter_frames
from engine.media.encode import draw_mark, join_segments, png_with_text, synthetic_label
from engine.media.probe import probe
from engine.merge import settings as merge_settings
from engine.merge import workers as merge_workers
from engine.merge.masks import require_segment
from engine.merge.merger import MergeStats, merge_frames
from engine.merge.segments import SegmentedVideo, prepare_folder, whole_segments
from engine.merge.settings import MergeSettings
from engine.merge.targets import target_faces
from engine.paths import inside
from engine.report import NullReporter, Reporter
from engine.segment.store import masks_identity

RESULT_NAME = "result.mp4"
MASK_NAME = "result_mask.mp4"
WORK_NAME = ".merge"
PREVIEW_PATH = ".swapwizard/previews/merge.jpg"
PREVIEW_EVERY_S = 2.0


_AUDIO_HINT = ("Copy the audio file into the workspace and give its path relative to it (--audio NAME), or "
               "audio = \"\" for the destination's sound.")


def audio_source(ws: Any, settings: MergeSettings, info: Any) -> Path | None:
    """The audio to copy: the destination's, a chosen file, or none."""
    if settings.audio.strip().lower() == "none":
        return None
    if settings.audio:
        chosen = Path(settings.audio).expanduser()
        absolute = chosen.is_absolute()
        if not absolute:  # inside the workspace, links followed (workspace.toml may come from anyone)
            chosen = inside(ws.root, settings.audio, "[merge] audio", _AUDIO_HINT, resolve=True)
        if not chosen.is_file():
            raise UserError(f"The audio file {settings.audio} does not exist.",
                            "Give a path relative to the workspace, or audio = \"\" for the destination's sound.")
        if absolute and chosen.stat().st_uid != os.getuid():
            # An absolute path is one this user chose on this machine (an unpacked archive's is refused), so
            # it names a file this user owns: never another user's readable file on a shared server.
            raise UserError(f"The audio file {settings.audio} belongs to another user; it is not used.",
                            _AUDIO_HINT)
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
    """What the segments depend on; export-only knobs (audio, png) and how many workers merge are left out
    on purpose (a merge resumes with any number of workers)."""
    alignments = ws.alignments_path("dst")
    knobs = {k: v for k, v in settings.to_dict().items() if k not in ("audio", "png", "workers")}
    return {"settings": knobs, "model": model_name, "iteration": int(getattr(model, "iteration", 0)),
            "dst": [dst.name, dst.stat().st_size if dst.is_file() else 0, int(dst.stat().st_mtime)],
            "alignments": [alignments.stat().st_size, int(alignments.stat().st_mtime)],
            "segment_frames": segment_frames,
            # the segmenter's masks, painted labels and review marks: re-segmenting mid-merge starts over
            **({"masks": masks_identity(ws.side_dir("dst"))} if "segment" in settings.mask or settings.mask == "auto"
               else {})}


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


def _streams(work: Path, info: Any, settings: MergeSettings, segment_frames: int) -> dict[str, SegmentedVideo]:
    """The segmented outputs: the video, and the mask video when asked for."""
    fps = info.fps or 25.0
    streams = {"video": SegmentedVideo(work, "video", info.width, info.height, fps, settings.crf,
                                       settings.preset, segment_frames)}
    if settings.mask_video:
        streams["mask"] = SegmentedVideo(work, "mask", info.width, info.height, fps, settings.crf,
                                         settings.preset, segment_frames, gray=True)
    return streams


def _frames_in(dst: Path, start: int, end: int | None, fps: float, seek: bool = False):
    """Frames ``start..end-1`` of the destination (to its end when ``end`` is None; ``seek``:
    ``MediaInfo.seekable``, a range late in a film starts without decoding the frames before it)."""
    for item in iter_frames(dst, start=start, fps=fps, seek=seek):
        if end is not None and item[0] >= end:
            return
        yield item


def merge_range(ws: Any, settings: MergeSettings, model: Any, faces: dict[int, Any], info: Any,
                streams: dict[str, SegmentedVideo], start: int, end: int | None, report: Reporter,
                credentials: Any, batch_frames: int, done_before: int = 0,
                preview_every_s: float = PREVIEW_EVERY_S) -> MergeStats:
    """Merge frames ``start..end-1`` into whole segments of ``streams`` (a range's open segment is
    thrown away if it stops early: segments are whole or absent)."""
    import cv2

    label = synthetic_label()
    png_dir = ws.output_dir / "frames"
    last_preview = [0.0]

    def sink(index: int, frame: np.ndarray, mask: np.ndarray | None) -> None:
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
        if now - last_preview[0] >= preview_every_s:
            last_preview[0] = now
            ok, jpg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
            if ok:
                atomic_write_bytes(ws.root / PREVIEW_PATH, jpg.tobytes())
                report.preview(PREVIEW_PATH, frame=index)

    for stream in streams.values():
        stream.begin(start)
    try:
        stats = merge_frames(_frames_in(ws.source("dst"), start, end, info.fps or 25.0,
                                        getattr(info, "seekable", False)), faces, model.predict,
                             model.resolution, settings, sink, report, total=info.frame_count,
                             done_before=done_before, batch_frames=batch_frames, with_mask="mask" in streams)
        for stream in streams.values():
            stream.close()
    except BaseException:
        for stream in streams.values():
            stream.abort()
        raise
    return stats


def _add_stats(total: MergeStats, part: MergeStats) -> MergeStats:
    for key in ("frames", "faces", "predict_s", "merge_s", "sink_s"):
        setattr(total, key, getattr(total, key) + getattr(part, key))
    return total


def _merge_in_workers(ws: Any, settings: MergeSettings, model_name: str, device: str, segment_frames: int,
                      info: Any, runs: list[tuple[int, int | None]], before: int, workers: int, batch_frames: int,
                      report: Reporter, signing: tuple[Any, ...]) -> dict[str, Any]:
    """Merge ``runs`` with ``workers`` processes (engine.merge.workers); returns the summed timing."""
    from engine import workerpool
    from engine.merge.other import OtherDestination

    total = info.frame_count
    pieces = merge_workers.plan([(a, b or total) for a, b in runs], workers, segment_frames)
    work = ws.output_dir / WORK_NAME
    for old in work.glob("timing-*.json"):
        old.unlink()
    other = ws.name if isinstance(ws, OtherDestination) else ""
    tasks = [workerpool.Task(i, a, b, (str(ws.root), other, settings.to_dict(), model_name, device, segment_frames,
                                       a, None if b == total else b, batch_frames, workers, signing))
             for i, (a, b) in enumerate(pieces)]
    sizes = sorted(b - a for a, b in pieces)
    report.log(f"Merging {sum(sizes)} frames with {workers} worker processes ({len(pieces)} ranges of "
               f"{sizes[0]}{'' if sizes[0] == sizes[-1] else f' to {sizes[-1]}'} frames).")
    started = time.perf_counter()

    def whole(task: workerpool.Task) -> bool:
        done = merge_workers.cells_done(work, ["video", "mask"] if settings.mask_video else ["video"],
                                        segment_frames)
        return all(a in done for a in range(task.start, task.end, segment_frames))

    workerpool.run_tasks(merge_worker, tasks, workers, report, "merge", total, is_done=whole, done_before=before,
                         what="A merge worker", again="run the merge again to resume")
    parts = [read_json(path) for path in sorted(work.glob("timing-*.json"))]
    timing = merge_workers.add_timing([p for p in parts if isinstance(p, dict)])
    timing["wall_s"] = round(time.perf_counter() - started, 3)
    return timing


def merge_worker(report: Reporter, root: str, other: str, values: dict[str, Any], model_name: str, device: str,
                 segment_frames: int, start: int, end: int | None, batch_frames: int, workers: int,
                 signing: tuple[Any, ...]) -> None:
    """One merge worker (``engine.workerpool``): load the model once, merge frames ``start..end-1``."""
    import cv2
    import torch

    from engine.merge.other import OtherDestination
    from engine.workspace import Workspace

    ws: Any = Workspace(root)
    if other:
        ws = OtherDestination(ws, other)
    settings = MergeSettings(**values)
    model = load_model(ws.model_dir(model_name), device=device, runtime=settings.runtime)
    if hasattr(model, "morph"):
        model.morph = settings.morph
    torch.set_num_threads(merge_workers.torch_threads(workers))
    if hasattr(model, "threads"):  # ONNX Runtime's session, made on first use, takes the same share of cores
        model.threads = merge_workers.torch_threads(workers)
    cv2.setNumThreads(merge_workers.cv2_threads(workers))
    info = probe(ws.source("dst"))
    faces = target_faces(ws, getattr(model, "face_type", None))
    enabled, cert, key, models = signing
    credentials = content_credentials.for_workspace(ws, None, enabled=enabled, cert=cert, key=key, models=models) \
        if settings.png else None
    streams = _streams(ws.output_dir / WORK_NAME, info, settings, segment_frames)
    startup_s = merge_workers.process_age()  # spawn, imports, model, faces: what a worker costs before its first frame
    stats = merge_range(ws, settings, model, faces, info, streams, start, end, report, credentials, batch_frames,
                        done_before=start, preview_every_s=PREVIEW_EVERY_S * workers)
    atomic_write_json(ws.output_dir / WORK_NAME / f"timing-{start:08d}.json",
                      {**stats.as_dict(), "faces": stats.faces, "startup_s": round(startup_s, 2)})


def render(ws: Any, settings: MergeSettings, model_name: str = "default", report: Reporter | None = None,
           model: Any = None, restart: bool = False, segment_frames: int = 250, device: str = "auto",
           batch_frames: int | None = None, c2pa: bool = True, c2pa_cert: str = "",
           c2pa_key: str = "", mouth: str = "swap") -> dict[str, Any]:
    """Merge every destination frame and export the labelled (and signed) result; returns a summary dict.
    ``mouth``: what ``[merge] mouth = auto`` means for this model ("swap" or "follow"; the merge job
    decides from the model's quality, ``engine.quality.mouth_auto``)."""
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
    loaded_here = model is None  # workers load the model from disk: only when it is the one on disk
    if model is None:
        model = load_model(ws.model_dir(model_name), device=device, warn=report.warning, runtime=settings.runtime)
    if hasattr(model, "morph"):
        model.morph = settings.morph  # AMP: how far toward the source (other models ignore it)
    credentials = content_credentials.for_workspace(
        ws, report, enabled=c2pa, cert=c2pa_cert, key=c2pa_key,
        models=[{"name": model_name, "iteration": int(getattr(model, "iteration", 0))}])
    # Saved once the inputs are found good (a missing audio file or model is not remembered), before
    # the long part, so the wizard and the next merge (a resume) start from these choices.
    merge_settings.save(ws, settings)
    if settings.mouth == "auto":  # saved as "auto"; merged as decided
        settings = settings.replace(mouth=mouth)
    faces = target_faces(ws, getattr(model, "face_type", None))
    require_segment(settings.mask, faces)
    if not faces:
        report.warning("No face of the target track was found in the destination: the result equals the input.")

    out_dir = ws.output_dir
    work = out_dir / WORK_NAME
    kept = prepare_folder(work, _fingerprint(ws, settings, model_name, model, dst, segment_frames), restart)
    fps = info.fps or 25.0
    streams = _streams(work, info, settings, segment_frames)
    total = info.frame_count
    if total:
        runs = merge_workers.pending(merge_workers.cells_done(work, list(streams), segment_frames), total,
                                     segment_frames)
        before = total - sum(b - a for a, b in runs)
        if runs and runs[-1][1] == total:
            runs[-1] = (runs[-1][0], None)  # the last range runs to the end of the stream, whatever its header says
    else:  # a frame count the header does not give: one process, on from the last whole segment
        before = min(s.frames_done() for s in streams.values())
        runs = [(before, None)]
    if kept and before:
        report.log(f"Resuming the merge: {before} of {total} frames were merged earlier." if len(runs) > 1
                   or (runs and runs[0][0] != before) else
                   f"Resuming the merge at frame {before} (frames before it were merged earlier).")
    if settings.png:
        (out_dir / "frames").mkdir(parents=True, exist_ok=True)

    if batch_frames is None:
        # A GPU predicts a batch of 32 faces about as fast as one; a CPU gains little from batching.
        batch_frames = 32 if getattr(getattr(model, "device", None), "type", "cpu") == "cuda" else 8
    workers = 1
    if runs and loaded_here:
        workers = merge_workers.workers_for(settings.workers, info.kind, sum((b or total) - a for a, b in runs))
    stats: dict[str, Any] | None = None
    if runs and workers > 1:
        stats = _merge_in_workers(ws, settings, model_name, device, segment_frames, info, runs, before, workers,
                                  batch_frames, report, (c2pa, c2pa_cert, c2pa_key,
                                  [{"name": model_name, "iteration": int(getattr(model, "iteration", 0))}]))
        streams = _streams(work, info, settings, segment_frames)
        missing = merge_workers.pending(merge_workers.cells_done(work, list(streams), segment_frames), total,
                                        segment_frames)
        if missing:
            raise UserError(f"The merge workers left frames {missing[0][0]}-{missing[0][1] - 1} unmerged.",
                            "Run the merge again: it resumes with what is missing.")
    elif runs:
        threads = _cpu_threads_for(model)
        try:
            merged = MergeStats()
            started = time.perf_counter()
            for a, b in runs:
                part = merge_range(ws, settings, model, faces, info, streams, a, b, report, credentials,
                                   batch_frames, done_before=before + merged.frames)
                merged = _add_stats(merged, part)
            merged.wall_s = time.perf_counter() - started
            stats = {**merged.as_dict(), "faces": merged.faces}
        finally:
            threads.restore()
    report.check_cancelled()
    label = synthetic_label()
    png_dir = out_dir / "frames"
    written = streams["video"].frames_done()
    if written < sum(count for _, count in whole_segments(work, "video")):
        raise UserError(f"The merged segments stop continuing each other after frame {written} (a range ended "
                        "early: the destination may be damaged there).",
                        "Run the merge again with --restart; if it stops at the same frame, re-encode the "
                        "destination.")
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
               "faces_merged": stats["faces"] if stats else None, "resumed_from": before, "workers": workers,
               "timing": stats or {},
               "credentials": credentials.summary() if credentials is not None
               else {"signed": False, "reason": "turned off with --no-c2pa"},
               "content_credentials": content_credentials.result_line(credentials)}
    signed = (f"signed with Content Credentials ({credentials.identity.describe()})" if credentials is not None
              else "NOT signed with Content Credentials (--no-c2pa)")
    report.log(f"Wrote {outputs['video']}: {written} frames, labelled as synthetic media, {signed}.")
    return summary

