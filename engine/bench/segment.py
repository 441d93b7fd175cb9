"""Segmenter benchmark: held-out IoU after the default training, CPU inference speed, merge cost at 1080p.

    python -m engine.bench segment [--json] [--iters N] [--frames 75]
    swapwizard bench segment --json

1. A scratch workspace with the two talking-head clips of ../shared/data (200 frames each; the
   shipped samples when that folder is absent), extracted with the defaults (hands on) at 256 px.
2. Three segmenters, each scored by its mean IoU on the held-out faces (every tenth, never trained on),
   each with one synthetic occluder pasted at a fixed seed: predicted visible face (p > 0.5) against
   the truth (the face outline minus the occluder); ``iou_clean`` is the same without occluders:
   ``generic``: the one shipped in the package (``engine.segment.generic``; it never saw these people),
   untrained here; ``finetuned``: that one fine-tuned on both sides for ``--finetune`` iterations (the
   default start, ``[segment] finetune_iters``); ``scratch``: learnt from nothing for ``--iters`` (the
   ``[segment] iters``, 1000; ``--skip-scratch`` leaves it out). ``iou``/``train_s`` are the default's
   (fine-tuned). Each one's training seconds with one torch thread (``--threads``).
3. ``faces_per_s``: inference on 256 aligned crops on the CPU, one torch thread (``faces_per_s``)
   and all (``faces_per_s_all_threads``), crop decode excluded.
4. Merge + encode of the sample destination scaled to 1920x1080 (prediction excluded, as in
   ``bench merge``) with ``--mask hull`` and ``--mask hull*segment`` (each face's mask read from its
   PNG and warped into the crop), frames/s and CPU ms per frame, with the load average: the machine
   may be shared.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from engine.bench.timing import Stopwatch

ROOT = Path(__file__).resolve().parent.parent.parent
SHARED = ROOT.parent / "shared" / "data"
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _clips() -> tuple[Path, Path]:
    src, dst = SHARED / "WDA_KatieHill_000.mp4", SHARED / "WDA_AlexandriaOcasioCortez_000.mp4"
    if src.is_file() and dst.is_file():
        return src, dst
    return SAMPLES / "src.mp4", SAMPLES / "dst.mp4"


def _inference(segmenter, faces) -> dict:
    import torch

    crops = faces.crops[: min(256, len(faces))]
    out = {}
    previous = torch.get_num_threads()
    for key, threads in (("faces_per_s", 1), ("faces_per_s_all_threads", os.cpu_count() or 1)):
        torch.set_num_threads(threads)
        segmenter.predict(crops[:8])
        with Stopwatch() as watch:
            segmenter.predict(crops)
        out[key] = round(len(crops) / watch.seconds, 1)
    torch.set_num_threads(previous)
    return out


def _merge(segmenter, frames: int, work: Path) -> dict:
    import cv2

    from engine.bench.merge import _cpu_seconds, _face_geometry, _make_1080, _model
    from engine.media.decode import iter_frames
    from engine.media.encode import VideoWriter, synthetic_label
    from engine.media.probe import probe
    from engine.merge.blend import crop_face
    from engine.merge.merger import merge_frames
    from engine.merge.settings import MergeSettings

    video = _make_1080(work)
    info = probe(video)
    model = _model("tiny", "cpu")
    base = _face_geometry(info.width, info.height)
    masks = work / "masks"
    masks.mkdir()
    faces = {}
    crops = []
    for index, _, frame in iter_frames(video):
        if index >= frames:
            break
        crop = crop_face(frame, base, base.size)
        probability = segmenter.predict([crop])[0]
        full = cv2.resize(probability, (base.size, base.size), interpolation=cv2.INTER_LINEAR)
        path = masks / f"{index:06d}.png"
        cv2.imwrite(str(path), np.clip(full * 255 + 0.5, 0, 255).astype(np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        face = type(base)(base.transform, base.size, base.landmarks, None, str(path), base.transform)
        faces[index] = [face]
        if len(crops) < 8:
            crops.append(crop_face(frame, base, model.resolution))
    predictions = model.predict(crops)
    results = {}
    for mode in ("hull", "hull*segment"):
        settings = MergeSettings(mask=mode)
        served = iter(predictions * (frames // len(predictions) + 2))

        def frames_iter():
            for item in iter_frames(video):
                if item[0] >= frames:
                    return
                yield item

        cpu_before = _cpu_seconds()
        with VideoWriter(work / f"merged_{mode.replace('*', '_')}.mp4", info.width, info.height, info.fps,
                         crf=settings.crf, preset=settings.preset, label=synthetic_label()) as writer:
            started = time.perf_counter()
            stats = merge_frames(frames_iter(), faces, lambda c, served=served: [next(served) for _ in c], model.resolution,
                                 settings, lambda i, f, m: writer.write(f))
        wall = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu_before
        n = max(1, stats.frames)
        results[mode] = {"fps": round(n / wall, 2), "merge_ms": round(1000 * stats.merge_s / n, 2),
                         "cpu_ms_per_frame": round(1000 * cpu / n, 2),
                         "fps_if_2_cores_idle": round(2 / max(cpu / n, 1e-9), 1)}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="swapwizard bench segment", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--iters", type=int, default=0, help="scratch training iterations (default: [segment] iters)")
    parser.add_argument("--finetune", type=int, default=0, help="fine-tuning iterations of the shipped segmenter "
                        "(default: [segment] finetune_iters)")
    parser.add_argument("--skip-scratch", action="store_true", help="leave out the segmenter learnt from scratch")
    parser.add_argument("--frames", type=int, default=75, help="frames of the 1080p merge pass")
    parser.add_argument("--keep", default="", help="keep the scratch workspace in this folder")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for training (default 1: on a "
                        "busy 2-core machine two threads contend and run several times slower; 0 = torch's choice)")
    args = parser.parse_args(argv)

    from engine import settings as declared
    from engine.faces.extract import ExtractSettings, extract_side
    from engine.report import NullReporter
    from engine.segment import store
    from engine.segment.data import held_out, load_faces
    from engine.segment.model import Segmenter
    from engine.segment.trainer import Options, evaluate, train
    from engine.workspace import Workspace

    defaults = declared.defaults("segment")
    iters = args.iters or defaults["iters"]
    finetune = args.finetune or defaults["finetune_iters"]
    src, dst = _clips()
    tmp = tempfile.mkdtemp(prefix="swapwizard-bench-segment-")
    try:
        ws = Workspace.create(Path(tmp) / "ws", src=src, dst=dst)
        with Stopwatch() as extracting:
            extracted = {side: extract_side(ws, side, ExtractSettings(size=256), NullReporter())
                         for side in ("src", "dst")}
        extract_s = extracting.seconds
        options = Options(resolution=defaults["resolution"], width=defaults["width"], iters=iters,
                          batch=defaults["batch_size"], threads=args.threads, start="generic", finetune_iters=finetune)
        faces = load_faces(ws, ["src", "dst"], options.resolution)
        starts: dict = {}
        if store.generic_dir() is not None:
            shipped = Segmenter.load(store.generic_dir())
            starts["generic"] = {**evaluate(shipped, faces, held_out(len(faces))), "iters": 0, "train_s": 0.0,
                                 "shipped_iters": shipped.description.iteration}
        runs = [("finetuned", options)] if store.generic_dir() is not None else []
        if not args.skip_scratch or not runs:
            runs.append(("scratch", dataclasses.replace(options, start="scratch")))
        for name, chosen in runs:
            shutil.rmtree(store.segmenter_dir(ws), ignore_errors=True)
            with Stopwatch() as training:
                trained = train(ws, ["src", "dst"], chosen, faces=faces)
            starts[name] = {"iou": trained["iou"], "iou_clean": trained["iou_clean"], "iters": trained["iteration"],
                            "train_s": round(training.seconds, 1), "train_min": round(training.seconds / 60, 2)}
        train_s = training.seconds
        segmenter = trained.pop("segmenter")
        speed = _inference(segmenter, faces)
        merge = _merge(segmenter, args.frames, Path(tmp))
        if args.keep:
            shutil.copytree(Path(tmp) / "ws", args.keep, dirs_exist_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {"iou": trained["iou"], "iou_clean": trained["iou_clean"], "starts": starts, **speed,
              "held_out_faces": trained["held_out"], "train_faces": trained["faces"] - trained["held_out"],
              "iters": trained["iteration"], "train_s": round(train_s, 1), "resolution": options.resolution,
              "merge_1080_fps_hull": merge["hull"]["fps"], "merge_1080_fps_segment": merge["hull*segment"]["fps"],
              "merge_1080": merge, "extract_s": round(extract_s, 1),
              "hands": {side: r.get("hands") for side, r in extracted.items()},
              "clips": [src.name, dst.name], "train_threads": args.threads, "load_average": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    if args.json:
        print(json.dumps(result))
    else:
        for name, figures in starts.items():
            print(f"{name:>9}: held-out IoU with synthetic occluders {figures['iou']} (without: {figures['iou_clean']}), "
                  f"{result['held_out_faces']} faces; {figures['iters']} iterations here, {figures['train_s']} s")
        print(f"inference: {result['faces_per_s']} faces/s on one CPU thread, {result['faces_per_s_all_threads']} "
              "on all")
        for mode, figures in merge.items():
            print(f"merge + encode 1080p, --mask {mode}: {figures['fps']} frames/s, {figures['cpu_ms_per_frame']} ms "
                  f"CPU per frame (= {figures['fps_if_2_cores_idle']} frames/s on 2 idle cores)")
        print(f"load average {result['load_average']} on {result['cpus']} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
