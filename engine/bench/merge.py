"""Merge benchmark: frames/s of merge + encode at 512x512 and 1080p, model prediction timed apart.

    python -m engine.bench merge [--json] [--preset saehd] [--frames 75] [--device auto]
    swapwizard bench merge --json
    swapwizard bench merge --workers 2 --repeat 20 --preset tiny --json   (1 worker against N: merge_workers.py)
    swapwizard bench merge --runtime [--preset saehd] [--frames 75] [--rounds 2]   (PyTorch against ONNX Runtime)

Input: the shipped destination sample (512x512, 25 fps, with audio) and, made at bench time with
ffmpeg, a 1080p version of it (scaled to 1080 high, padded to 1920 wide). The face geometry is a
fixed box over the sample's face, so the bench needs no extraction; the model is the preset's
network with fresh weights (prediction cost does not depend on training).

Two passes per size: (1) the model predicts every face crop (``predict_ms`` per face); (2) the
full merge loop (decode, crop, colour transfer, mask, warp back, blend, H.264 encode with audio
copy and label) runs with those predictions served from memory, giving ``fps_512`` / ``fps_1080``
for merge + encode without prediction. ``fps_*_total`` adds the prediction back in. Also the
interactive preview latency on a 1080p frame with the prediction cached (``preview_ms_1080``).

``--runtime``: the 1080p merge with the prediction in the loop (decode, predict, merge, encode), on
PyTorch and on ONNX Runtime (the graph ``export-model`` writes, engine.interop) in turn, ``--rounds``
times each, interleaved; the medians of frames/s and CPU ms per frame for both, in one run. Which was
faster is recorded for ``[merge] runtime = auto`` (engine.interop.load) for this device, architecture
and resolution.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "dst.mp4"
#: The sample's face: centre and side (pixels) of a whole-face crop square, measured on frame 0.
FACE_CENTRE, FACE_SIDE = (256.0, 235.0), 330.0
#: Face crops the model predicts per size (one batch); the merge pass cycles through them.
PREDICTED = 16


def _face_geometry(width: int, height: int, size: int = 512):
    from engine.merge.blend import FaceGeometry

    scale = height / 512.0
    cx, cy = (width - 512 * scale) / 2 + FACE_CENTRE[0] * scale, FACE_CENTRE[1] * scale
    side = FACE_SIDE * scale
    s = size / side
    transform = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]])
    angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    # An oval landmark outline (the hull mask) about the size of a face inside the crop.
    landmarks = np.stack([cx + 0.32 * side * np.cos(angles), cy + 0.42 * side * np.sin(angles)], axis=1)
    return FaceGeometry(transform, size, landmarks)


def _make_1080(folder: Path) -> Path:
    from engine.media.encode import ffmpeg_exe

    out = folder / "dst_1080p.mp4"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(SAMPLE),
                    "-vf", "scale=1080:1080,pad=1920:1080:420:0", "-c:v", "libx264", "-preset", "veryfast",
                    "-crf", "18", "-c:a", "copy", str(out)], check=True)
    return out


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (ffmpeg): a figure other load cannot inflate."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _model(preset_name: str, device: str):
    from engine.train.api import SwapModel
    from engine.train.device import pick_device
    from engine.train.models import SwapAutoencoder
    from engine.train.options import preset

    dev = pick_device(device)
    return SwapModel(SwapAutoencoder(preset(preset_name).model).to(dev), dev, iteration=0)


def bench_size(video: Path, model, frames: int, work: Path) -> dict:
    from engine.media.decode import iter_frames
    from engine.media.encode import VideoWriter, synthetic_label
    from engine.media.probe import probe
    from engine.merge.blend import crop_face
    from engine.merge.merger import merge_frames
    from engine.merge.settings import MergeSettings

    info = probe(video)
    face = _face_geometry(info.width, info.height)
    faces = {i: [face] for i in range(frames)}
    crops = [crop_face(f, face, model.resolution) for i, _, f in iter_frames(video) if i < PREDICTED]
    model.predict(crops[:2])  # warm-up (allocations, kernels)
    t0 = time.perf_counter()
    predictions = model.predict(crops)
    predict_s = (time.perf_counter() - t0) / len(crops) * frames
    # The merge pass reuses these predictions in turn: prediction is timed here, not there.
    served = itertools.cycle(predictions)

    def frames_iter():
        for item in iter_frames(video):
            if item[0] >= frames:
                return
            yield item

    out = work / f"merged_{info.height}p.mp4"
    settings = MergeSettings()
    cpu_before = _cpu_seconds()
    with VideoWriter(out, info.width, info.height, info.fps, crf=settings.crf, preset=settings.preset,
                     audio_source=video, video_start_s=info.video_start, label=synthetic_label()) as writer:
        started = time.perf_counter()
        stats = merge_frames(frames_iter(), faces, lambda c: [next(served) for _ in c], model.resolution,
                             settings, lambda i, f, m: writer.write(f))
    wall = time.perf_counter() - started  # includes ffmpeg finishing the file
    cpu = _cpu_seconds() - cpu_before  # this process (merge, decode thread) + ffmpeg (a waited child)
    n = stats.frames
    return {"size": f"{info.width}x{info.height}", "frames": n, "fps": round(n / wall, 2),
            "fps_total": round(n / (wall + predict_s), 2), "predict_ms": round(1000 * predict_s / max(1, n), 2),
            "merge_ms": round(1000 * stats.merge_s / max(1, n), 2),
            "encode_wait_ms": round(1000 * stats.sink_s / max(1, n), 2),
            "cpu_ms_per_frame": round(1000 * cpu / max(1, n), 2),
            "fps_if_cores_idle": round(min(os.cpu_count() or 1, 2) / max(cpu / max(1, n), 1e-9), 1)}


def bench_with_prediction(video: Path, model, frames: int, work: Path) -> dict:
    """The merge loop with ``model.predict`` in it: what a merge costs per frame on this runtime."""
    from engine.media.decode import iter_frames
    from engine.media.encode import VideoWriter, synthetic_label
    from engine.media.probe import probe
    from engine.merge.merger import merge_frames
    from engine.merge.settings import MergeSettings

    info = probe(video)
    face = _face_geometry(info.width, info.height)
    faces = {i: [face] for i in range(frames)}
    settings = MergeSettings()
    out = work / f"merged_{info.height}p_prediction.mp4"

    def frames_iter():
        for item in iter_frames(video):
            if item[0] >= frames:
                return
            yield item

    cpu_before = _cpu_seconds()
    with VideoWriter(out, info.width, info.height, info.fps, crf=settings.crf, preset=settings.preset,
                     audio_source=video, video_start_s=info.video_start, label=synthetic_label()) as writer:
        started = time.perf_counter()
        stats = merge_frames(frames_iter(), faces, model.predict, model.resolution, settings,
                             lambda i, f, m: writer.write(f))
    wall = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_before
    n = max(1, stats.frames)
    return {"frames": stats.frames, "fps": round(n / wall, 2), "cpu_ms_per_frame": round(1000 * cpu / n, 1),
            "predict_ms_per_frame": round(1000 * stats.predict_s / n, 1)}


def bench_runtimes(video: Path, preset_name: str, device: str, frames: int, rounds: int, work: Path) -> dict:
    """PyTorch against ONNX Runtime on the same network and frames, ``rounds`` interleaved runs each."""
    import copy

    from engine.interop.export import onnx_bytes
    from engine.interop.load import record_key, record_measurement
    from engine.interop.runtime import OnnxSwapModel

    torch_model = _model(preset_name, device)
    options = torch_model.network.options
    onnx_model = OnnxSwapModel(onnx_bytes(copy.deepcopy(torch_model.network), options.face_type),
                               options.face_type, device=device)
    models = {"torch": torch_model, "onnx": onnx_model}
    crops_warm = [np.zeros((options.resolution, options.resolution, 3), np.uint8)] * 2
    runs: dict[str, list[dict]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            model.predict(crops_warm)  # warm-up: allocations, kernels, the session itself
            runs[name].append(bench_with_prediction(video, model, frames, work))

    def median(name: str, key: str) -> float:
        return float(np.median([r[key] for r in runs[name]]))

    figures = {name: {"fps": median(name, "fps"), "cpu_ms_per_frame": median(name, "cpu_ms_per_frame"),
                      "predict_ms_per_frame": median(name, "predict_ms_per_frame"), "runs": runs[name]}
               for name in models}
    faster = "onnx" if figures["onnx"]["fps"] > figures["torch"]["fps"] else "torch"
    device_type = torch_model.device.type
    key = record_key(device_type, options.arch, options.resolution)
    record = {"faster": faster, "torch_fps": figures["torch"]["fps"], "onnx_fps": figures["onnx"]["fps"],
              "torch_cpu_ms_per_frame": figures["torch"]["cpu_ms_per_frame"],
              "onnx_cpu_ms_per_frame": figures["onnx"]["cpu_ms_per_frame"], "frames": frames, "rounds": rounds,
              "measured": time.strftime("%Y-%m-%d %H:%M %Z")}
    path = record_measurement(key, record)
    return {"runtimes": figures, "faster": faster, "key": key, "recorded_in": str(path), "preset": preset_name,
            "resolution": options.resolution, "device": str(onnx_model.device), "onnx_providers": onnx_model._providers}


def bench_preview(video: Path, model, work: Path, repeats: int = 10) -> dict:
    """Preview latency at 1080p with the prediction cached: re-merge + labelled PNG + small JPEG."""
    from engine.media.decode import iter_frames
    from engine.merge.blend import crop_face
    from engine.merge.preview import CachedFrame, CachedPrediction, merge_cached
    from engine.merge.settings import MergeSettings

    index, _, frame = next(iter(iter_frames(video, start=10)))
    face = _face_geometry(frame.shape[1], frame.shape[0])
    crop = crop_face(frame, face, model.resolution)
    p = model.predict([crop])[0]
    cached = CachedFrame(frame, [face], [crop], [CachedPrediction(p.face, p.mask_src, p.mask_dst)])

    class _Ws:  # write_preview only needs a root folder
        root = work

    from engine.merge.preview import write_preview

    timings = {}
    for blend in ("overlay", "seamless"):
        runs, cpu = [], []
        for i in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            write_preview(_Ws, merge_cached(cached, MergeSettings(blend=blend, blur=8 + i)))
            runs.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        timings[blend] = round(1000 * float(np.median(runs)), 1)
        timings[blend + "_cpu"] = round(1000 * float(np.median(cpu)), 1)
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="swapwizard bench merge", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--preset", default="saehd", help="model preset whose network predicts (default saehd)")
    parser.add_argument("--frames", type=int, default=75, help="frames per size (the sample has 75)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--verbose", action="store_true", help="print every figure (per-frame costs)")
    parser.add_argument("--workers", type=int, default=0,
                        help="measure the merge split among worker processes: 1 worker against N (frames/s, CPU "
                        "ms/frame, scaling; engine/bench/merge_workers.py)")
    parser.add_argument("--repeat", type=int, default=20, help="with --workers: the clip repeated K times in a row")
    parser.add_argument("--runs", type=int, default=3, help="with --workers: runs of each worker count (medians)")
    parser.add_argument("--input", type=Path, default=SAMPLE, help="with --workers: the destination clip")
    parser.add_argument("--runtime", action="store_true",
                        help="PyTorch against ONNX Runtime: 1080p merge frames/s and CPU ms per frame with the "
                        "prediction in the loop, both in one run; records the faster for [merge] runtime = auto")
    parser.add_argument("--rounds", type=int, default=2, help="with --runtime: interleaved runs of each (medians)")
    args = parser.parse_args(argv)
    if args.runtime:
        return _main_runtime(args)
    if args.workers:
        from engine.bench import merge_workers
        from engine.errors import UserError

        if args.workers < 2 or args.repeat < 1 or args.runs < 1 or not args.input.is_file():
            raise UserError("--workers takes 2 or more, --repeat and --runs 1 or more, --input a video file.",
                            "For example: swapwizard bench merge --workers 2 --repeat 20 --preset tiny.")
        figures = merge_workers.measure(args.input, args.repeat, args.workers, args.preset, args.runs, args.device)
        if args.json:
            print(json.dumps(figures))
        else:
            merge_workers.report(figures)
        return 0

    import torch

    with tempfile.TemporaryDirectory(prefix="swapwizard-bench-merge-") as tmp:
        work = Path(tmp)
        model = _model(args.preset, args.device)
        hd = _make_1080(work)
        r512 = bench_size(SAMPLE, model, args.frames, work)
        r1080 = bench_size(hd, model, args.frames, work)
        preview = bench_preview(hd, model, work)
    result = {"fps_512": r512["fps"], "fps_1080": r1080["fps"], "predict_ms": r1080["predict_ms"],
              "fps_512_total": r512["fps_total"], "fps_1080_total": r1080["fps_total"],
              "preview_ms_1080": preview["overlay"], "preview_ms_1080_seamless": preview["seamless"],
              "preview_cpu_ms_1080": preview["overlay_cpu"], "load_average": round(os.getloadavg()[0], 2),
              "detail": {"512": r512, "1080": r1080}, "preset": args.preset, "resolution": model.resolution,
              "device": str(model.device), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    if args.json:
        print(json.dumps(result))
    elif args.verbose:
        print(json.dumps(result, indent=2))
    else:
        print(f"merge + encode (prediction excluded): {result['fps_512']} frames/s at 512x512, "
              f"{result['fps_1080']} frames/s at 1920x1080")
        print(f"prediction ({args.preset}, {model.resolution} px, {result['device']}): "
              f"{result['predict_ms']} ms per face; with it: {result['fps_512_total']} / {result['fps_1080_total']} frames/s")
        print(f"interactive preview, 1080p, prediction cached: {result['preview_ms_1080']} ms overlay, "
              f"{result['preview_ms_1080_seamless']} ms seamless ({result['preview_cpu_ms_1080']} ms of CPU)")
        print(f"CPU time per 1080p frame (merge, decode, encode): {r1080['cpu_ms_per_frame']} ms "
              f"(= {r1080['fps_if_cores_idle']} frames/s on 2 idle cores); load average {result['load_average']}")
    return 0


def _main_runtime(args: argparse.Namespace) -> int:
    from engine.errors import UserError

    if args.rounds < 1 or args.frames < 1:
        raise UserError("--rounds and --frames take 1 or more.", "For example: swapwizard bench merge --runtime --rounds 2.")
    import torch

    with tempfile.TemporaryDirectory(prefix="swapwizard-bench-runtime-") as tmp:
        work = Path(tmp)
        result = bench_runtimes(_make_1080(work), args.preset, args.device, args.frames, args.rounds, work)
    result.update({"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                   "load_average": round(os.getloadavg()[0], 2)})
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"1080p merge with prediction ({args.preset}, {result['resolution']} px, {args.frames} frames, "
          f"median of {args.rounds}; load average {result['load_average']}):")
    for name, label in (("torch", "PyTorch"), ("onnx", "ONNX Runtime")):
        r = result["runtimes"][name]
        print(f"  {label:<13} {r['fps']:6.2f} frames/s  {r['cpu_ms_per_frame']:7.1f} ms CPU per frame  "
              f"({r['predict_ms_per_frame']:.1f} ms predicting)")
    print(f"faster: {result['faster']} (recorded for [merge] runtime = auto as {result['key']} in "
          f"{result['recorded_in']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
