"""Merge with 1 worker against N (``swapwizard bench merge --workers N``): frames/s, CPU per frame, scaling.

    swapwizard bench merge --workers 2 --repeat 20 --preset tiny --runs 3 --json

The destination is a clip (default the shipped engine/samples/dst.mp4: 512x512, 25 fps, with sound)
played ``--repeat K`` times in a row (``engine.bench.extract.repeated``: a stream copy), in a temporary
workspace. Its faces are extracted once from the clip itself and repeated with the clip (the same frames
give the same records), and the model is the preset's network with fresh weights saved as a real
checkpoint (prediction costs the same before training). Each run is a real ``render`` (a merge job's
work: decode, predict, colour, blend, encode, join with sound, label and sign) started over
(``restart``), with ``[merge] workers`` = 1 and = N, alternately, ``--runs`` times each.

Reported per worker count: ``fps`` (the median over the runs of frames / wall seconds of the whole
render, start-up and export included), every run's ``fps_runs``, ``cpu_ms_per_frame`` (this process and
its children: workers and encoders) and, with workers, ``startup_s`` (the slowest worker's time from its
start to its first frame: spawn, imports, model, faces). Then ``scaling`` = fps with N / fps with 1,
``efficiency`` = scaling / N, and ``break_even_frames``: the clip length from which N workers are
faster than one with that scaling and start-up (None when they are not faster at all). The machine's
load average is in ``load_average``: other processes on a shared machine slow every figure.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "dst.mp4"


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _workspace(clip: Path, repeat: int, preset_name: str, folder: Path):
    """A workspace whose destination is ``clip`` repeated, with its faces and a fresh model of the preset."""
    from engine.faces.extract import ExtractSettings, extract_side
    from engine.faces.records import read_alignments
    from engine.report import NullReporter
    from engine.workspace import Workspace

    once = Workspace.create(folder / "once", None, clip, link=True)
    extract_side(once, "dst", ExtractSettings(size=128, hands=False), NullReporter())
    return repeated_workspace(folder, clip, repeat, read_alignments(once.alignments_path("dst")), preset_name)


def repeated_workspace(folder: Path, clip: Path, repeat: int, alignments: tuple[Any, list[Any]], preset_name: str):
    """``folder/ws``: ``clip`` played ``repeat`` times as its destination, the clip's ``alignments`` (header,
    records) repeated with it (the same frames give the same records), and the preset's network with fresh
    weights saved as a real checkpoint (prediction costs the same before training). Also engine.bench.gpu_script's."""
    import torch

    from engine.bench.extract import repeated
    from engine.faces.records import write_alignments
    from engine.media.probe import probe
    from engine.train.checkpoint import CheckpointStore
    from engine.train.models import build_model
    from engine.train.options import preset
    from engine.workspace import Workspace

    header, records = alignments
    length = probe(clip).frame_count
    ws = Workspace.create(folder / "ws", None, repeated(clip, repeat, folder) if repeat > 1 else clip, link=True)
    ws.record_consent("bench merge --workers")
    ws.side_dir("dst").mkdir(parents=True, exist_ok=True)
    copies = [dataclasses.replace(record, frame=record.frame + k * length) for k in range(repeat) for record in records]
    write_alignments(ws.alignments_path("dst"), header, copies)
    torch.manual_seed(0)
    options = preset(preset_name).model
    network = build_model(options)
    CheckpointStore(ws.model_dir("default")).save(
        1, {f"model.{k}": v for k, v in network.state_dict().items()}, {},
        {"model_options": dataclasses.asdict(options)})
    return ws


def _run(ws: Any, workers: int, device: str) -> dict[str, Any]:
    from engine.merge.render import render
    from engine.merge.settings import MergeSettings
    from engine.report import NullReporter

    cpu = _cpu_seconds()
    started = time.perf_counter()
    summary = render(ws, MergeSettings(workers=workers), report=NullReporter(), restart=True, device=device)
    seconds = time.perf_counter() - started
    frames = summary["frames"]
    return {"workers": summary["workers"], "seconds": round(seconds, 2), "fps": round(frames / seconds, 2),
            "cpu_ms_per_frame": round(1000 * (_cpu_seconds() - cpu) / max(1, frames), 1), "frames": frames,
            "startup_s": summary["timing"].get("startup_s")}


def measure(clip: Path, repeat: int, workers: int, preset_name: str, runs: int, device: str = "auto") -> dict:
    from engine.media.probe import probe
    from engine.merge.workers import workers_for

    tmp = Path(tempfile.mkdtemp(prefix="swapwizard-bench-merge-workers-"))
    try:
        ws = _workspace(clip, repeat, preset_name, tmp)
        info = probe(ws.source("dst"))
        found: dict[int, list[dict[str, Any]]] = {1: [], workers: []}
        for _ in range(runs):
            for n in (1, workers):
                found[n].append(_run(ws, n, device))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
        return {"workers": results[0]["workers"], "fps": round(statistics.median(r["fps"] for r in results), 2),
                "fps_runs": [r["fps"] for r in results],
                "seconds": round(statistics.median(r["seconds"] for r in results), 2),
                "cpu_ms_per_frame": round(statistics.median(r["cpu_ms_per_frame"] for r in results), 1),
                "startup_s": max((r["startup_s"] or 0.0 for r in results), default=0.0) or None}

    one, many = summary(found[1]), summary(found[workers])
    scaling = many["fps"] / one["fps"] if one["fps"] else 0.0
    startup = many["startup_s"] or 0.0
    # time with N = startup + frames / (fps_one * scaling); with one = frames / fps_one: equal at this length
    break_even = round(startup * one["fps"] * scaling / (scaling - 1)) if scaling > 1 else None
    return {"clip": str(clip), "repeat": repeat, "frames": info.frame_count, "width": info.width,
            "height": info.height, "preset": preset_name, "cores": os.cpu_count(), "workers": workers,
            "workers_used": workers_for(workers, info.kind, info.frame_count), "runs": runs, "one": one,
            "many": many, "fps_one": one["fps"], "fps_many": many["fps"], "scaling": round(scaling, 3),
            "efficiency": round(scaling / max(1, many["workers"]), 3), "break_even_frames": break_even,
            "load_average": round(os.getloadavg()[0], 2)}


def report(figures: dict[str, Any]) -> None:
    print(f"{figures['clip']} x{figures['repeat']} ({figures['width']}x{figures['height']}, {figures['frames']} "
          f"frames, preset {figures['preset']}, {figures['cores']} cores, {figures['runs']} runs each)")
    for label in ("one", "many"):
        run = figures[label]
        extra = f", worker start-up {run['startup_s']} s" if run["startup_s"] else ""
        print(f"  {run['workers']:2d} worker(s) {run['fps']:8.2f} frames/s (median; runs {run['fps_runs']})  "
              f"{run['cpu_ms_per_frame']:7.1f} CPU ms/frame{extra}")
    print(f"  scaling {figures['scaling']:.2f}x, efficiency {figures['efficiency']:.2f}; break-even at "
          f"{figures['break_even_frames']} frames; load average {figures['load_average']}")
