"""Extraction speed: end-to-end frames/s, and its ratio to decoding alone and to the bare models.

    swapwizard bench extract [--input CLIP] [--json] [--frames N] [--stock-mesh]
    python -m engine.bench extract --input ../shared/data/WDA_KatieHill_000.mp4 --json

Three runs over the same clip (default: the shipped engine/samples/src.mp4, 512x512 talking head):

* ``decode``: frames/s of ``iter_frames`` alone (the ceiling any extraction has);
* ``bare``: frames/s of the detector on every frame plus the mesh on each detection, frames already
  decoded in memory, one thread: what the models cost with nothing around them;
* ``end_to_end``: a real extraction (``extract_side`` into a temporary workspace: decode thread,
  tracking, crops, records, writer thread), model loading excluded.

``ratio_decode`` = end_to_end / decode, ``ratio_bare`` = end_to_end / bare. The end-to-end run can
beat ``bare`` because it runs the detector only every few frames and follows faces with the mesh.

``--workers N`` measures the split extraction instead (``engine.faces.workers``): the clip (repeated
``--repeat K`` times end to end with ffmpeg's concat, so that it is long enough to split: segments are
at least 500 frames) extracted with 1 worker and with N, each a real ``extract_side``. Reported per
run: frames/s and CPU milliseconds per frame (every process and thread), then ``scaling`` = frames/s
with N / with 1, ``efficiency`` = scaling / N (target 0.7 up to 16 cores; on a 2-core machine shared
with others expect little), and how the records compare (faces, tracks, frames whose faces differ).

    swapwizard bench extract --input engine/samples/dst.mp4 --repeat 140 --workers 2 --json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from engine.bench.timing import Stopwatch
from engine.errors import UserError

DEFAULT_CLIP = Path(__file__).resolve().parent.parent / "samples" / "src.mp4"


def measure(clip: Path, max_frames: int = 300, small_faces: bool = False) -> dict:
    import cv2

    from engine.faces.detect import FaceFinder, roi_from_detection
    from engine.faces.extract import ExtractSettings, extract_side
    from engine.media.decode import iter_frames
    from engine.media.probe import probe
    from engine.report import NullReporter
    from engine.workspace import Workspace

    info = probe(clip)
    frames = []
    with Stopwatch() as decoding:
        for _, _, frame in iter_frames(clip):
            if len(frames) < max_frames:
                frames.append(frame)
    decode_fps = info.frame_count / decoding.seconds

    cv2.setNumThreads(1)
    finder = FaceFinder()
    for det in finder.detect(frames[0]):  # warm up both graphs before timing
        finder.landmarks(frames[0], roi_from_detection(det))
    faces = 0
    with Stopwatch() as finding:
        for frame in frames:
            for det in finder.detect(frame):
                faces += finder.landmarks(frame, roi_from_detection(det)) is not None
    bare_fps = len(frames) / finding.seconds
    finder.close()
    cv2.setNumThreads(os.cpu_count() or 1)

    tmp = Path(tempfile.mkdtemp(prefix="swapwizard-bench-"))
    try:
        ws = Workspace.create(tmp / "ws")
        ws.set_source("src", clip, link=True)
        result = extract_side(ws, "src", ExtractSettings(small_faces=small_faces), NullReporter())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    fps = result["fps"]
    return {"clip": str(clip), "frames": info.frame_count, "width": info.width, "height": info.height,
            "cores": os.cpu_count(), "fps": fps, "decode_fps": round(decode_fps, 1), "bare_fps": round(bare_fps, 1),
            "ratio_decode": round(fps / decode_fps, 3), "ratio_bare": round(fps / bare_fps, 3),
            "faces": result["faces"], "bare_faces": faces, "bare_frames": len(frames),
            "cpu_ms_per_frame": result["cpu_ms_per_frame"],
            "frames_with": result["frames_with"], "tracks": len(result["tracks"]),
            "target_faces": result["target_faces"], "jitter": result["jitter"],
            # Other processes on the machine slow every figure: the load says how busy it was.
            "load_average": round(os.getloadavg()[0], 2)}


def repeated(clip: Path, times: int, folder: Path) -> Path:
    """``clip`` played ``times`` times in a row, as one file (stream copy: no re-encoding)."""
    import subprocess

    from engine.media.encode import ffmpeg_exe

    listing = folder / "repeat.txt"
    listing.write_text("".join(f"file '{clip.resolve()}'\n" for _ in range(times)))
    out = folder / f"repeated{clip.suffix}"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
                    str(out)], check=True)
    return out


def measure_workers(clip: Path, repeat: int, workers: int) -> dict:
    """The split extraction with 1 and ``workers`` processes over ``clip`` repeated ``repeat`` times."""
    import resource

    from engine.faces.extract import ExtractSettings, extract_side
    from engine.faces.records import read_alignments
    from engine.faces.workers import workers_for
    from engine.media.probe import probe
    from engine.report import NullReporter
    from engine.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="swapwizard-bench-"))
    runs = {}
    try:
        source = repeated(clip, repeat, tmp) if repeat > 1 else clip
        info = probe(source)
        for n in sorted({1, workers}):
            ws = Workspace.create(tmp / f"ws{n}")
            ws.set_source("src", source, link=True)
            before = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
            with Stopwatch() as watch:
                result = extract_side(ws, "src", ExtractSettings(workers=n), NullReporter())
            seconds = watch.seconds
            after = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
            cpu = sum((a.ru_utime + a.ru_stime) - (b.ru_utime + b.ru_stime) for a, b in zip(after, before))
            records = read_alignments(ws.alignments_path("src"))[1]
            runs[n] = {"workers": result.get("workers", 1), "seconds": round(seconds, 1),
                       "fps": round(info.frame_count / seconds, 2), "pipeline_fps": result["fps"],
                       "cpu_ms_per_frame": round(cpu / info.frame_count * 1000, 1), "faces": len(records),
                       "tracks": len({r.track for r in records}),
                       "frames": {(r.frame, r.face) for r in records}}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    one, many = runs[1], runs[workers]
    differ = len({f for f, _ in one["frames"] ^ many["frames"]})
    for run in runs.values():
        del run["frames"]
    scaling = many["fps"] / one["fps"] if one["fps"] else 0.0
    return {"clip": str(clip), "repeat": repeat, "frames": info.frame_count, "width": info.width,
            "height": info.height, "cores": os.cpu_count(), "workers": workers,
            "workers_used": workers_for(workers, info.kind, info.frame_count), "one": one, "many": many,
            "scaling": round(scaling, 3), "efficiency": round(scaling / max(1, many["workers"]), 3),
            "frames_whose_faces_differ": differ, "load_average": round(os.getloadavg()[0], 2)}


def stock_mesh(clip: Path) -> dict:
    """Faces mediapipe's stock whole-frame FaceMesh finds, for comparison with our detector + ROI mesh."""
    import cv2
    import mediapipe as mp

    from engine.media.decode import iter_frames

    faces = frames = 0
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=5) as mesh:
        for _, _, frame in iter_frames(clip):
            found = len(mesh.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)).multi_face_landmarks or [])
            faces += found
            frames += found > 0
    return {"stock_mesh_faces": faces, "stock_mesh_frames": frames}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="swapwizard bench extract", description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=Path, default=DEFAULT_CLIP, help="video to extract (default: a shipped sample)")
    parser.add_argument("--frames", type=int, default=300, help="frames held in memory for the bare run")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--small-faces", action="store_true", help="extract with small_faces on (2x2 tiles)")
    parser.add_argument("--stock-mesh", action="store_true",
                        help="also count the faces mediapipe's stock whole-frame FaceMesh finds")
    parser.add_argument("--workers", type=int, default=0,
                        help="measure the split extraction: 1 worker against N (frames/s, CPU ms/frame, scaling)")
    parser.add_argument("--repeat", type=int, default=1, help="with --workers: the clip repeated K times in a row")
    args = parser.parse_args(argv)
    if not args.input.is_file():
        raise UserError(f"{args.input} is not a video file.", "Give a clip with --input PATH.")
    if args.workers < 0 or args.repeat < 1:
        raise UserError("--workers and --repeat must be positive.", "For example: --workers 2 --repeat 140.")
    if args.workers:
        figures = measure_workers(args.input, args.repeat, args.workers)
        if args.json:
            print(json.dumps(figures))
            return 0
        print(f"{figures['clip']} x{figures['repeat']} ({figures['width']}x{figures['height']}, {figures['frames']} "
              f"frames, {figures['cores']} cores)")
        for label in ("one", "many"):
            run = figures[label]
            print(f"  {run['workers']:2d} worker(s) {run['fps']:8.1f} frames/s  {run['cpu_ms_per_frame']:7.1f} CPU ms/frame "
                  f"({run['faces']} faces, {run['tracks']} tracks, {run['seconds']} s)")
        print(f"  scaling {figures['scaling']:.2f}x, efficiency {figures['efficiency']:.2f}; frames whose faces "
              f"differ: {figures['frames_whose_faces_differ']}; load average {figures['load_average']}")
        return 0
    figures = measure(args.input, args.frames, args.small_faces)
    if args.stock_mesh:
        figures.update(stock_mesh(args.input))
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{figures['clip']} ({figures['width']}x{figures['height']}, {figures['frames']} frames, "
              f"{figures['cores']} cores)")
        print(f"  end to end   {figures['fps']:8.1f} frames/s  ({figures['faces']} faces in "
              f"{figures['tracks']} tracks; frames with 0/1/2+ faces: {figures['frames_with'].get('0', 0)}/"
              f"{figures['frames_with'].get('1', 0)}/{figures['frames_with'].get('2+', 0)})")
        print(f"  decode only  {figures['decode_fps']:8.1f} frames/s  ratio {figures['ratio_decode']:.2f}")
        print(f"  bare models  {figures['bare_fps']:8.1f} frames/s  ratio {figures['ratio_bare']:.2f}")
        jitter = figures["jitter"]
        print(f"  jitter       {jitter['raw_px']} px raw -> {jitter['smoothed_px']} px smoothed (512 crop)")
        if args.stock_mesh:
            print(f"  stock FaceMesh on whole frames: {figures['stock_mesh_faces']} faces in "
                  f"{figures['stock_mesh_frames']} frames")
        cpu = figures["cpu_ms_per_frame"]
        print(f"  CPU ms/frame: whole process {cpu['process']}, find-faces thread {cpu['main']}, "
              f"writer {cpu['writer']}, decoder {cpu['decoder']}; load average {figures['load_average']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
