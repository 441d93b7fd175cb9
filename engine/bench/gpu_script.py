"""The GPU server's figures in one prepared script (issue 30): prepared here, run once on a device machine.

    python -m engine.bench.gpu_script prepare [--pair samples|shared]      # HERE: .device/ (carried there)
    python -m engine.bench.gpu_script plan [--budget-s 540] [--cpu-smoke]  # the parts and their time limits
    python3 -m engine.bench.gpu_script run --budget-s 540 --out "$OUT"     # THERE (docs/gpu-server.md)
    python -m engine.bench.gpu_script run --cpu-smoke --out DIR            # every part, tiny, on this CPU
    python -m engine.bench.gpu_script evaluate DIR                         # HERE: quality of what came back

``prepare`` runs where mediapipe is (the device image has none): a workspace from the sample pair with
both sides' faces extracted (``.device/ws``), the pure-Python packages the engine needs that the device
image lacks (``.device/site``: tomli_w, imageio_ffmpeg without its binary), and ffmpeg itself, xz-packed
(``.device/ffmpeg.xz``; the wheel is 68 MB, over what a call may carry); it checks that the working tree
and ``.device`` together fit the 64 MiB a call carries.

``run`` copies the workspace into a folder of its own (a workspace is its owner's), unpacks ffmpeg, and
runs each part in a child process (its own session, killed at its time limit; a part that fails or times
out prints its error, keeps what it had finished, and the script goes on):

1. ``train``: ``bench train --probe-batch`` per preset (MFU at the default batch and the probed batch), then
   at the probed batch with bf16 off (``precision=fp32``), channels-last off and ``torch.compile`` on;
2. ``profile``: torch.profiler over the real training loop, its pieces labelled (data, augmentation,
   forward + loss, backward, optimizer, sync point, quality measurement), ms per iteration and the top kernels;
3. ``quality``: the quick preset trained by the real train job for ``--quality-min`` minutes, stopped at
   1/6, 1/3, 2/3 and all of it (the issue's 5, 10, 20, 30 of 30 minutes); at each stop SSIM/PSNR on the
   held-out faces (measured there) and the model's swaps and reconstructions of every destination face,
   saved to ``quality.npz`` (a quick checkpoint is 92 MiB, over what comes back: its outputs are what the
   expression and identity figures need, and ``evaluate`` computes those here, with mediapipe and dlib);
4. ``merge``: ``bench merge --runtime``: 1080p frames/s with the prediction in the loop, PyTorch and ONNX Runtime;
5. ``workers``: a real render (decode, predict, blend, encode, export) with 1, 2, 4, 8, 16 workers of the
   destination clip repeated to 500 frames per worker (a merge splits only into ranges of 250 frames or
   more), and extraction (only where mediapipe imports): frames/s and efficiency (fps with N / (fps with
   1 x N)); the merge signs nothing (the device has no c2pa: ``c2pa=False``).

Output: the log as it goes, a markdown table, and as the last line one JSON object; under ``--out``:
``result.json``, ``table.md``, ``log.txt``, ``quality.npz``, ``profile-trace.json.gz``.
``--cpu-smoke`` runs every part tiny on this CPU (the tiny preset, a few iterations, 1 and 2 workers) with
mediapipe, dlib, c2pa and cryptography made unimportable as they are there (extraction keeps mediapipe,
so its path is run too); the compile variant is left out of the smoke (inductor on the CPU takes minutes).
"""

from __future__ import annotations

import argparse
import gzip
import json
import lzma
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "engine" / "samples"
SHARED = REPO.parent / "shared" / "data"
DEVICE_DIR = REPO / ".device"
#: What one device call carries: the working tree and the carried paths together (device README).
CARRY_LIMIT = 64 * 2**20
#: Pure-Python packages the engine imports that the device image lacks (KINDS.md), copied from here.
CARRIED = ("tomli_w", "imageio_ffmpeg")
#: Packages the device image lacks and this script does without there; --cpu-smoke hides them the same way.
ABSENT_THERE = ("mediapipe", "dlib", "c2pa", "cryptography", "face_recognition_models")
#: Names the folder of hidden packages (--cpu-smoke) to the parts, which leave it out for extraction.
HIDDEN_VAR = "SWAPWIZARD_GPU_SCRIPT_HIDDEN"
#: (part, share of the budget, what it measures). The shares add up to 0.97: the rest is the parent's.
PARTS = (
    ("env", 0.04, "torch, CUDA, the card, ONNX Runtime's providers, cores, what imports"),
    ("train", 0.28, "MFU at the probed batch; bf16, channels-last and torch.compile each on and off"),
    ("profile", 0.10, "where a training iteration's time goes (torch.profiler)"),
    ("quality", 0.22, "quick trained for --quality-min minutes: SSIM there, swaps for `evaluate`"),
    ("merge", 0.10, "1080p merge frames/s, PyTorch and ONNX Runtime"),
    ("workers", 0.23, "merge (and extraction where mediapipe imports) with 1..16 workers"),
)
#: Where the quality run stops, as shares of its minutes (the issue's 5, 10, 20 and 30 of 30).
FRACTIONS = (1 / 6, 1 / 3, 2 / 3, 1.0)


def settings_for(smoke: bool) -> dict[str, Any]:
    """What each part runs: the device's sizes, or tiny ones for --cpu-smoke."""
    if smoke:
        return {"presets": ["tiny"], "iters": 3, "batch": 4, "batch_cap": 8,
                "variants": ["default", "fp32", "no-channels-last"], "profile_iters": 4,
                "quality_preset": "tiny", "quality_min": 0.4, "fractions": [0.5, 1.0],
                "merge_preset": "tiny", "merge_frames": 6, "merge_rounds": 1,
                "workers": [1, 2], "frames_per_worker": 250, "workers_preset": "tiny", "extract_frames_per_worker": 500}
    return {"presets": ["saehd", "quick"], "iters": 30, "batch": None, "batch_cap": 512,
            "variants": ["default", "fp32", "no-channels-last", "compile"], "profile_iters": 30,
            "quality_preset": "quick", "quality_min": None, "fractions": list(FRACTIONS),
            "merge_preset": "saehd", "merge_frames": 75, "merge_rounds": 2,
            "workers": [1, 2, 4, 8, 16], "frames_per_worker": 500, "workers_preset": "quick", "extract_frames_per_worker": 500}


#: --set values of each training variant (the default: bf16 where the card has it, channels-last, no compile).
VARIANTS = {"default": [], "fp32": ["precision=fp32"], "no-channels-last": ["channels_last=false"],
            "compile": ["compile=true"]}


def plan(budget_s: float, smoke: bool, quality_min: float | None = None) -> list[dict[str, Any]]:
    """The parts in order, each with its time limit (seconds) and what it runs."""
    config = settings_for(smoke)
    parts = []
    for name, share, what in PARTS:
        limit = max(10.0, round(budget_s * share, 1))
        part = {"part": name, "limit_s": limit, "what": what}
        if name == "quality":
            # The job's start, the stops' restarts and measurements take about a third of the part.
            part["minutes"] = quality_min or config["quality_min"] or round(limit * 0.6 / 60, 2)
        parts.append(part)
    return parts


# ---------------------------------------------------------------------------------------------- prepare
def tree_bytes(repo: Path = REPO) -> int:
    """Bytes of what a device call sends besides the carried paths: tracked and untracked-not-ignored files."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                            capture_output=True, check=True).stdout.decode().split("\0")
    return sum((repo / name).stat().st_size for name in listed if name and (repo / name).is_file())


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def prepare(folder: Path, pair: str, report=print, pack_ffmpeg: bool = True) -> dict[str, Any]:
    """Build ``folder`` (the workspace, the packages, ffmpeg unless ``pack_ffmpeg`` is false: minutes of
    xz on a busy machine) and check the carried size."""
    import importlib

    from engine.faces.extract import ExtractSettings, extract_side
    from engine.media.encode import ffmpeg_exe
    from engine.report import NullReporter
    from engine.workspace import Workspace

    sources = {"samples": (SAMPLES / "src.mp4", SAMPLES / "dst.mp4"),
               "shared": (SHARED / "WDA_KatieHill_000.mp4", SHARED / "WDA_AlexandriaOcasioCortez_000.mp4")}[pair]
    folder.mkdir(parents=True, exist_ok=True)
    ws_dir = folder / "ws"
    if ws_dir.exists():
        shutil.rmtree(ws_dir)
    started = time.monotonic()
    ws = Workspace.create(ws_dir, *sources)
    ws.record_consent("gpu_script prepare (benchmark on the project's sample footage)")
    for side in ("src", "dst"):  # 256 px crops: saehd trains at 128, the bench's workspaces extract at 2x
        extract_side(ws, side, ExtractSettings(size=256), NullReporter())
    report(f"workspace {ws_dir} ({pair}) extracted in {time.monotonic() - started:.0f} s")
    site = folder / "site"
    if site.exists():
        shutil.rmtree(site)
    for name in CARRIED:
        package = Path(importlib.import_module(name).__file__).parent
        shutil.copytree(package, site / name, ignore=shutil.ignore_patterns("__pycache__", "binaries"))
        if name == "imageio_ffmpeg":  # the package's own binaries/ folder holds the 172 MB ffmpeg: carried apart
            (site / name / "binaries").mkdir()
            (site / name / "binaries" / "__init__.py").write_text("")
    packed = folder / "ffmpeg.xz"
    binary = Path(ffmpeg_exe())
    stamp = folder / "ffmpeg.name"
    if pack_ffmpeg and (not packed.is_file() or not stamp.is_file() or stamp.read_text() != binary.name):
        started = time.monotonic()
        temp = packed.with_suffix(".xz.part")
        with open(binary, "rb") as raw, lzma.open(temp, "wb", preset=9) as out:
            shutil.copyfileobj(raw, out, 2**20)
        os.replace(temp, packed)  # a half-packed file never has the final name
        stamp.write_text(binary.name)
        report(f"ffmpeg packed: {binary.stat().st_size / 2**20:.0f} MiB -> {packed.stat().st_size / 2**20:.1f} MiB "
               f"in {time.monotonic() - started:.0f} s")
    sizes = {"tree_mib": round(tree_bytes() / 2**20, 1), "device_mib": round(folder_bytes(folder) / 2**20, 1)}
    sizes["total_mib"] = round(sizes["tree_mib"] + sizes["device_mib"], 1)
    sizes["fits"] = sizes["total_mib"] * 2**20 <= CARRY_LIMIT
    report(f"carried: working tree {sizes['tree_mib']} MiB + {folder.name} {sizes['device_mib']} MiB = "
           f"{sizes['total_mib']} MiB of {CARRY_LIMIT // 2**20} MiB" + ("" if sizes["fits"] else "  (TOO BIG)"))
    return sizes


# ------------------------------------------------------------------------------------------------- parts
def kill_session(session: int) -> None:
    """SIGKILL every process of ``session`` (a part, and all it started: benchmarks, merge workers)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == session:
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or not ours to read


def _write(path: Path, value: Any) -> None:
    from engine.atomic import atomic_write_json

    atomic_write_json(path, value)


def _last_json(text: str) -> dict[str, Any] | None:
    lines = [line for line in text.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else None


def _child(args: list[str], until: float, env: dict[str, str] | None = None) -> tuple[dict[str, Any] | None, str]:
    """Run a command (in its own session, killed with its children at ``until``); its last JSON line."""
    left = until - time.time()
    if left < 5:
        return None, "no time left in this part"
    # A group of its own inside the part's session: killed here at ``until``, and with the part's session
    # when the part itself runs out of time (kill_session).
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            process_group=0, env=env)
    try:
        out, err = proc.communicate(timeout=left)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None, f"timed out after {left:.0f} s"
    found = _last_json(out) if proc.returncode == 0 else None
    return found, "" if found else (err or out)[-1500:]


def part_env(config: dict, work: Path, result: dict) -> None:
    import platform

    import torch

    result.update({"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
                   "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                   "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
    for name in ("numpy", "cv2", "onnxruntime", "mediapipe", "tomli_w", "imageio_ffmpeg", *ABSENT_THERE[1:]):
        try:
            module = __import__(name)
            result[f"version_{name}"] = getattr(module, "__version__", "present")
        except ImportError:
            result[f"version_{name}"] = None
    if result.get("version_onnxruntime"):
        import onnxruntime

        result["ort_providers"] = onnxruntime.get_available_providers()


def part_train(config: dict, work: Path, result: dict, until: float, path: Path) -> None:
    runs = result.setdefault("runs", [])
    probed: dict[str, int] = {}

    def bench(preset: str, variant: str, probe: bool) -> None:
        args = [sys.executable, "-m", "engine.bench", "train", "--preset", preset, "--iters", str(config["iters"]),
                "--workspace", str(work / "ws"), "--json"]
        batch = probed.get(preset) or config["batch"]
        args += ["--batch", str(batch)] if batch else []
        args += ["--probe-batch", "--batch-cap", str(config["batch_cap"])] if probe else []
        for pair in VARIANTS[variant]:
            args += ["--set", pair]
        started = time.monotonic()
        found, error = _child(args, until)
        row: dict[str, Any] = {"preset": preset, "variant": variant, "probe": probe,
                               "wall_s": round(time.monotonic() - started, 1)}
        if found is None:
            row["error"] = error
        else:
            row.update({k: found.get(k) for k in (
                "device_name", "precision", "batch_size", "iters_per_s", "samples_per_s", "mfu", "mfu_bare",
                "achieved_tflops", "overhead_ratio", "pipeline_headroom", "augment_ms_per_batch",
                "probe_batch", "probe_stopped", "settings")})
            if probe and found.get("probe_batch"):
                probed[preset] = int(found["probe_batch"])
        runs.append(row)
        print(f"train {preset} {variant}{' (probe)' if probe else ''}: {json.dumps(row)}", flush=True)
        _write(path, result)

    # Most wanted first: each preset's probe and its default at the probed batch, then the toggles.
    order = [(p, "default", True) for p in config["presets"]]
    order += [(p, "default", False) for p in config["presets"]]
    order += [(p, v, False) for v in config["variants"][1:] for p in config["presets"]]
    for preset, variant, probe in order:
        first = next((r for r in runs if r["preset"] == preset and r.get("probe") and "error" not in r), None)
        if variant == "default" and not probe and first and first["batch_size"] == probed.get(preset):
            continue  # the probe's own run was at the batch it chose
        if time.time() > until - 5:
            runs.append({"preset": preset, "variant": variant, "error": "no time left in this part"})
            continue
        bench(preset, variant, probe)


class Labelled:
    """A callable of the training run wrapped in a profiler label (its other attributes pass through)."""

    def __init__(self, label: str, inner: Any) -> None:
        self._label, self._inner = label, inner

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import torch

        with torch.profiler.record_function(self._label):
            return self._inner(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


LABELS = ("data", "augmentation", "step", "forward+loss", "optimizer", "sync point", "quality (loop)",
          "quality (measuring)", "save", "preview")


def part_profile(config: dict, work: Path, result: dict, until: float, path: Path, out: Path) -> None:
    import torch

    from engine.jobs.train import Params
    from engine.quality.training import TrainingQuality
    from engine.report import CallbackReporter
    from engine.train.loop import TrainingRun
    from engine.train.resolve import resolve
    from engine.workspace import Workspace

    preset = config["presets"][0]
    trained = read_json_file(work / "train.json").get("runs", [])
    batch = next((r.get("probe_batch") for r in trained if r.get("preset") == preset and r.get("probe_batch")),
                 None) or config["batch"]
    ws = Workspace.open(work / "ws")
    params = Params(model="gpu-profile", preset=preset, device="", batch_size=batch, iters=1)
    config_run = resolve(ws, params.overrides())
    run = TrainingRun(ws, config_run, CallbackReporter(lambda e: None), watch=TrainingQuality)
    run.setup()
    n = config["profile_iters"]
    result.update({"preset": preset, "batch_size": run.trainer.options.batch_size, "iters": n,
                   "device": str(run.device)})
    for side in ("src", "dst"):
        run.samplers[side].take = Labelled("data", run.samplers[side].take)
    run.augmenter = Labelled("augmentation", run.augmenter)
    run.trainer.step = Labelled("step", run.trainer.step)
    run.trainer.losses = Labelled("forward+loss", run.trainer.losses)
    run.trainer.optimizer.step = Labelled("optimizer", run.trainer.optimizer.step)
    run.sync_point = Labelled("sync point", run.sync_point)
    run.save, run.write_preview = Labelled("save", run.save), Labelled("preview", run.write_preview)
    if run.quality is not None:
        # Measured twice in the window (every 500 iterations by default) so its cost shows; the
        # per-measurement figure is what to amortise over [quality] every_iters.
        result["quality_every_iters_default"] = run.quality.every
        run.quality.every = max(1, n // 2)
        run.quality.step = Labelled("quality (loop)", run.quality.step)
        run.quality.measure = Labelled("quality (measuring)", run.quality.measure)
    config_run.target_iters = 5 if run.device.type == "cpu" else 20
    run.train_to_target()  # warm-up: allocator, cuDNN autotuning, first saves
    activities = [torch.profiler.ProfilerActivity.CPU]
    if run.device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    config_run.target_iters = run.iteration + n
    with torch.profiler.profile(activities=activities) as prof:
        started = time.perf_counter()
        run.train()
        if run.device.type == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - started
    if run.quality is not None:
        run.quality.finish()
    result["wall_ms_per_iter"] = round(1000 * wall / n, 3)
    events = prof.key_averages()
    rows = {}
    for event in events:
        if event.key in LABELS:
            row = rows.setdefault(event.key, {"calls": 0, "cpu_ms": 0.0, "device_ms": 0.0})
            row["calls"] += event.count
            row["cpu_ms"] += event.cpu_time_total / 1000
            row["device_ms"] += getattr(event, "device_time_total", getattr(event, "cuda_time_total", 0)) / 1000
    for row in rows.values():
        row.update({k: round(v, 3) for k, v in row.items() if isinstance(v, float)})
        row["cpu_ms_per_iter"] = round(row["cpu_ms"] / n, 3)
    if "step" in rows:
        inner = sum(rows.get(k, {}).get("cpu_ms", 0.0) for k in ("forward+loss", "optimizer"))
        rows["backward (step - forward - optimizer)"] = {"cpu_ms_per_iter": round((rows["step"]["cpu_ms"] - inner) / n, 3)}
    result["labels"] = rows
    kernels = sorted((e for e in events if getattr(e, "self_device_time_total", 0) > 0),
                     key=lambda e: -e.self_device_time_total)[:12]
    result["top_kernels"] = [{"name": e.key[:80], "calls": e.count,
                              "device_ms_per_iter": round(e.self_device_time_total / 1000 / n, 3)} for e in kernels]
    ops = sorted(events, key=lambda e: -e.self_cpu_time_total)[:12]
    result["top_cpu_ops"] = [{"name": e.key[:80], "calls": e.count,
                              "cpu_ms_per_iter": round(e.self_cpu_time_total / 1000 / n, 3)} for e in ops]
    _write(path, result)
    trace = work / "trace.json"
    prof.export_chrome_trace(str(trace))
    with open(trace, "rb") as raw, gzip.open(out / "profile-trace.json.gz.part", "wb") as packed:
        shutil.copyfileobj(raw, packed)
    if (out / "profile-trace.json.gz.part").stat().st_size < 15 * 2**20:  # what a file from $OUT may weigh
        os.replace(out / "profile-trace.json.gz.part", out / "profile-trace.json.gz")
    else:
        os.unlink(out / "profile-trace.json.gz.part")
        result["trace"] = "left out: over 15 MiB packed"
    shutil.rmtree(ws.model_dir("gpu-profile"), ignore_errors=True)


def _uint8(images: Any) -> Any:
    import numpy as np

    return (np.clip(images, 0, 1) * 255).round().astype(np.uint8)


def part_quality(config: dict, work: Path, result: dict, until: float, path: Path, out: Path, minutes: float) -> None:
    import numpy as np

    from engine.atomic import atomic_open
    from engine.bench.expression import CLIP_FACES
    from engine.jobs import get_kind
    from engine.quality.cost import training_cost
    from engine.quality.expression import network_outputs
    from engine.quality.reconstruct import clip_faces, held_out_faces, reconstruction_metrics
    from engine.report import NullReporter
    from engine.train.api import load_model
    from engine.workspace import Workspace

    ws = Workspace.open(work / "ws")
    job, name = get_kind("train"), "gpu-quality"
    preset = config["quality_preset"]
    result.update({"preset": preset, "minutes": minutes, "points": []})
    arrays: dict[str, Any] = {}
    for fraction in config["fractions"]:
        mark = minutes * 60 * fraction
        trained = training_cost(ws.model_dir(name))["train_seconds"] if ws.model_dir(name).is_dir() else 0.0
        if time.time() > until - 10:
            result["points"].append({"fraction": round(fraction, 3), "error": "no time left in this part"})
            break
        started = time.monotonic()
        params = job.parse_params({"preset": preset, "model": name, "iters": 10_000_000, "device": "",
                                   "time_limit": f"{max(1, round(mark - trained))}s"})
        job.module.run(ws, params, NullReporter())
        train_wall = time.monotonic() - started
        model = load_model(ws.model_dir(name))
        res = model.resolution
        held = {side: held_out_faces(ws, side, res) for side in ("src", "dst")}
        figures = reconstruction_metrics(model.network, held, model.device)
        clip = clip_faces(ws, "dst", res, limit=CLIP_FACES)
        swaps, recons = network_outputs(model.network, clip.crops, model.device)
        cost = training_cost(ws.model_dir(name))
        label = f"p{len(result['points'])}"
        arrays.update({f"{label}_swaps": _uint8(swaps), f"{label}_recons": _uint8(recons),
                       "frames": np.asarray(clip.frames, np.int64)})
        point = {"label": label, "fraction": round(fraction, 3), "minutes_planned": round(mark / 60, 2),
                 "train_seconds": cost["train_seconds"], "iteration": model.iteration,
                 "segment_wall_s": round(train_wall, 1), "resolution": res, "faces": len(clip.frames), **figures}
        result["points"].append(point)
        print(f"quality {json.dumps(point)}", flush=True)
        with atomic_open(out / "quality.npz") as handle:  # rewritten at each stop: what a timeout leaves is whole
            np.savez_compressed(handle, **arrays)
        _write(path, result)
        del model


def _merge_workspace(work: Path, config: dict, workers: int):
    """A workspace whose destination is the prepared clip repeated to ``config["frames_per_worker"]`` frames
    per worker (a merge splits only into ranges of 250 frames or more: engine.merge.workers), with its
    faces and a fresh model of the preset (engine.bench.merge_workers)."""
    from engine.bench.merge_workers import repeated_workspace
    from engine.faces.records import read_alignments
    from engine.media.probe import probe
    from engine.workspace import Workspace

    prepared = Workspace.open(work / "ws")
    clip = prepared.source("dst")
    repeat = max(1, -(-config["frames_per_worker"] * workers // probe(clip).frame_count))
    folder = work / f"merge-{workers}"
    folder.mkdir()
    return repeated_workspace(folder, clip, repeat, read_alignments(prepared.alignments_path("dst")),
                              config["workers_preset"])


def part_workers(config: dict, work: Path, result: dict, until: float, path: Path) -> None:
    from engine.bench.merge_workers import _cpu_seconds
    from engine.merge.render import render
    from engine.merge.settings import MergeSettings
    from engine.report import NullReporter

    merge = result.setdefault("merge", [])
    for n in config["workers"]:
        if time.time() > until - 10:
            merge.append({"workers": n, "error": "no time left in this part"})
            continue
        ws = _merge_workspace(work, config, n)
        cpu, started = _cpu_seconds(), time.perf_counter()
        summary = render(ws, MergeSettings(workers=n), report=NullReporter(), restart=True, c2pa=False)
        seconds = time.perf_counter() - started
        frames = summary["frames"]
        row = {"workers": n, "workers_used": summary["workers"], "frames": frames, "seconds": round(seconds, 2),
               "fps": round(frames / seconds, 2), "cpu_ms_per_frame": round(1000 * (_cpu_seconds() - cpu) / frames, 1),
               "startup_s": summary["timing"].get("startup_s")}
        base = merge[0] if merge and merge[0].get("fps") else row  # the first count (1 worker) is the base
        row["efficiency"] = round(row["fps"] * base["workers_used"] / (base["fps"] * row["workers_used"]), 3)
        merge.append(row)
        print(f"merge workers {json.dumps(row)}", flush=True)
        _write(path, result)
        shutil.rmtree(ws.root.parent, ignore_errors=True)
    # Extraction in a child without the packages --cpu-smoke hides (mediapipe and dlib find the faces):
    # measured where mediapipe imports, which the device machine is not.
    hidden = os.environ.get(HIDDEN_VAR, "")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != hidden))
    probe_import = subprocess.run([sys.executable, "-c", "import mediapipe"], env=env, capture_output=True, text=True)
    if probe_import.returncode != 0:
        result["extract"] = {"skipped": "mediapipe does not import here: " + probe_import.stderr.strip().splitlines()[-1]}
        _write(path, result)
        return
    from engine.media.probe import probe
    from engine.workspace import Workspace

    clip = Workspace.open(work / "ws").source("dst")
    length = probe(clip).frame_count
    extract = result.setdefault("extract", [])
    for n in config["workers"][1:]:  # each run measures 1 worker against n: the first's one is kept
        repeat = -(-config["extract_frames_per_worker"] * n // length)  # extraction splits into 500-frame ranges
        args = [sys.executable, "-m", "engine.bench", "extract", "--workers", str(n), "--repeat", str(repeat),
                "--input", str(clip), "--json"]
        found, error = _child(args, until, env)
        if found is None:
            extract.append({"workers": n, "error": error})
        else:
            if not extract:
                extract.append({**found["one"], "efficiency": 1.0})
            extract.append({**found["many"], "efficiency": found["efficiency"]})
        print(f"extract workers {json.dumps(extract[-1])}", flush=True)
        _write(path, result)


def part_merge(config: dict, work: Path, result: dict, until: float, path: Path) -> None:
    args = [sys.executable, "-m", "engine.bench", "merge", "--runtime", "--json", "--preset", config["merge_preset"],
            "--frames", str(config["merge_frames"]), "--rounds", str(config["merge_rounds"])]
    found, error = _child(args, until)
    result.update(found if found is not None else {"error": error})


def read_json_file(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def run_part(name: str, config: dict, work: Path, out: Path, until: float, minutes: float) -> int:
    """One part, in this (child) process: its figures go to WORK/<name>.json as they come."""
    path = work / f"{name}.json"
    result: dict[str, Any] = {}
    if name == "env":
        part_env(config, work, result)
    elif name == "train":
        part_train(config, work, result, until, path)
    elif name == "profile":
        part_profile(config, work, result, until, path, out)
    elif name == "quality":
        part_quality(config, work, result, until, path, out, minutes)
    elif name == "merge":
        part_merge(config, work, result, until, path)
    elif name == "workers":
        part_workers(config, work, result, until, path)
    _write(path, result)
    return 0


# --------------------------------------------------------------------------------------------------- run
def _hide(folder: Path, names: tuple[str, ...]) -> None:
    """Packages that raise ModuleNotFoundError on import, first on the path: as they are on the device."""
    for name in names:
        (folder / name).mkdir(parents=True, exist_ok=True)
        message = f"No module named {name!r} (hidden: the device machine has none)"
        (folder / name / "__init__.py").write_text(f"raise ModuleNotFoundError({message!r}, name={name!r})\n")


def part_env_vars(prepared: Path, work: Path, ffmpeg: Path | None, hidden: Path | None) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", XDG_CACHE_HOME=str(work / "cache"),
               XDG_CONFIG_HOME=str(work / "config"), SWAPWIZARD_C2PA_DIR=str(work / "c2pa"))
    paths = [str(hidden)] if hidden else []
    if (prepared / "site").is_dir():
        paths.append(str(prepared / "site"))
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    if ffmpeg is not None:
        env["IMAGEIO_FFMPEG_EXE"] = str(ffmpeg)
    if hidden:
        env[HIDDEN_VAR] = str(hidden)
    return env


def _ffmpeg(prepared: Path, work: Path, carried_first: bool = False) -> tuple[Path | None, str]:
    """This environment's ffmpeg, else the carried one unpacked (the device image has none); the carried
    one first with ``carried_first`` (--cpu-smoke: the way it goes there)."""
    packed = prepared / "ffmpeg.xz"
    try:
        import imageio_ffmpeg

        if not (carried_first and packed.is_file()):
            return Path(imageio_ffmpeg.get_ffmpeg_exe()), "found"
    except (ImportError, RuntimeError):
        pass
    if not packed.is_file():
        return None, "missing (the merge parts will fail)"
    target = work / "ffmpeg"
    with lzma.open(packed) as raw, open(target, "wb") as out:
        shutil.copyfileobj(raw, out, 2**20)
    target.chmod(0o700)
    return target, "unpacked"


def run(budget_s: float, smoke: bool, prepared: Path, out: Path, parts: list[str] | None = None,
        quality_min: float | None = None) -> dict[str, Any]:
    started = time.time()
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "log.txt", "a")

    def say(text: str) -> None:
        print(text, flush=True)
        log.write(text + "\n")
        log.flush()

    if not (prepared / "ws").is_dir():
        say(f"error: there is no prepared workspace in {prepared}.\n"
            "hint: run `python -m engine.bench.gpu_script prepare` where mediapipe is, and carry the folder.")
        return {"error": "not prepared"}
    work = Path(tempfile.mkdtemp(prefix="swapwizard-gpu-"))
    os.chmod(work, 0o700)
    shutil.copytree(prepared / "ws", work / "ws", symlinks=True)  # ours now: a workspace is its owner's
    ffmpeg, how = _ffmpeg(prepared, work, carried_first=smoke)
    config = settings_for(smoke)
    steps = plan(budget_s, smoke, quality_min)
    report: dict[str, Any] = {"budget_s": budget_s, "smoke": smoke, "plan": steps}
    say(f"gpu_script: {len(steps)} parts in {budget_s:.0f} s{' (cpu smoke)' if smoke else ''}; ffmpeg "
        f"{how}; work in {work}")
    try:
        for step in steps:
            name = step["part"]
            if parts and name not in parts:
                continue
            hidden = None
            if smoke:
                hidden = work / ("hidden-" + name)
                _hide(hidden, ABSENT_THERE)
            limit = step["limit_s"]
            say(f"--- {name} (limit {limit:.0f} s): {step['what']}")
            part_started = time.monotonic()
            args = [sys.executable, "-m", "engine.bench.gpu_script", "part", name, "--work", str(work),
                    "--out", str(out), "--until", str(time.time() + limit - 3), "--config", json.dumps(config),
                    "--minutes", str(step.get("minutes", 0))]
            proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    env=part_env_vars(prepared, work, ffmpeg, hidden), start_new_session=True)
            tail: list[str] = []

            def echo(stream: Any = proc.stdout, tail: list[str] = tail) -> None:  # a thread: the wait keeps the limit
                for line in stream:
                    say("  " + line.rstrip())
                    tail.append(line.rstrip())
                    del tail[:-30]

            reader = threading.Thread(target=echo, daemon=True)
            reader.start()
            timed_out = False
            try:
                proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                kill_session(proc.pid)  # the part and whatever it started (a GPU left busy skews what follows)
                proc.wait()
                timed_out = True
            kill_session(proc.pid)  # what it left running (none, normally)
            reader.join(timeout=5)
            result = read_json_file(work / f"{name}.json")
            if timed_out:
                result["error"] = f"timed out after {limit:.0f} s (figures up to then kept)"
            elif proc.returncode != 0:
                result["error"] = "\n".join(tail[-12:]) or f"exit status {proc.returncode}"
            result["part_s"] = round(time.monotonic() - part_started, 1)
            report[name] = result
            if "error" in result:
                say(f"  {name} FAILED (going on): {result['error'][-600:]}")
            _write(out / "result.json", report)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["total_s"] = round(time.time() - started, 1)
    table = markdown(report)
    (out / "table.md").write_text(table)
    _write(out / "result.json", report)
    say(table)
    say(json.dumps(report))
    log.close()
    return report


# ------------------------------------------------------------------------------------------------ tables
def _pct(value: Any) -> str:
    return f"{value * 100:.1f} %" if isinstance(value, (int, float)) else "-"


def _num(value: Any, digits: int = 1) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"


def markdown(report: dict[str, Any]) -> str:
    env = report.get("env", {})
    lines = [f"## GPU server figures: {env.get('gpu') or 'no GPU'}, {env.get('date', '?')}",
             f"torch {env.get('torch')}, CUDA {env.get('cuda')}, {env.get('cores')} cores, ONNX Runtime "
             f"{env.get('version_onnxruntime')} ({', '.join(env.get('ort_providers') or [])})", "",
             "| preset | variant | batch | precision | it/s | samples/s | MFU | MFU (bare step) | overhead | pipeline headroom |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in report.get("train", {}).get("runs", []):
        if "error" in row:
            lines.append(f"| {row['preset']} | {row['variant']} | error: {row['error'][-120:]!r} |||||||")
            continue
        probe = f" (probe: {row['probe_batch']}, {row['probe_stopped']})" if row.get("probe") else ""
        lines.append(f"| {row['preset']} | {row['variant']}{probe} | {row['batch_size']} | {row['precision']} | "
                     f"{_num(row['iters_per_s'], 2)} | {_num(row['samples_per_s'], 0)} | {_pct(row['mfu'])} | "
                     f"{_pct(row['mfu_bare'])} | {_num(row['overhead_ratio'], 3)} | {_num(row['pipeline_headroom'], 1)} |")
    profile = report.get("profile", {})
    if profile.get("labels"):
        lines += ["", f"Where an iteration goes ({profile['preset']}, batch {profile['batch_size']}, "
                  f"{profile['wall_ms_per_iter']} ms wall per iteration; quality measured every {max(1, profile['iters'] // 2)} iterations):",
                  "", "| piece | CPU ms/iteration (inclusive) | GPU ms total | calls |", "|---|---|---|---|"]
        for label, row in profile["labels"].items():
            lines.append(f"| {label} | {row['cpu_ms_per_iter']} | {row.get('device_ms', '-')} | {row.get('calls', '-')} |")
    quality = report.get("quality", {})
    if quality.get("points"):
        lines += ["", f"Quality per GPU-minute ({quality['preset']}, {quality['minutes']} min; expression and "
                  "identity: `gpu_script evaluate`):", "", "| minutes trained | iteration | SSIM dst | SSIM src |",
                  "|---|---|---|---|"]
        for point in quality["points"]:
            if "error" not in point:
                lines.append(f"| {point['train_seconds'] / 60:.2f} | {point['iteration']} | {_num(point['ssim_dst'], 4)} "
                             f"| {_num(point['ssim_src'], 4)} |")
    merge = report.get("merge", {})
    if "error" in merge:
        lines += ["", f"1080p merge with the prediction in the loop: error {merge['error'][-200:]!r}"]
    elif merge.get("runtimes"):
        lines += ["", f"1080p merge with the prediction in the loop ({merge.get('preset')}, {merge.get('device')}; "
                  f"ONNX Runtime's providers {', '.join(merge.get('onnx_providers') or [])}; faster: {merge.get('faster')}):",
                  "", "| runtime | frames/s | CPU ms/frame | prediction ms/frame |", "|---|---|---|---|"]
        for name, row in merge["runtimes"].items():
            lines.append(f"| {name} | {_num(row.get('fps'), 1)} | {_num(row.get('cpu_ms_per_frame'), 1)} | "
                         f"{_num(row.get('predict_ms_per_frame'), 1)} |")
    workers = report.get("workers", {})
    for kind in ("merge", "extract"):
        rows = workers.get(kind)
        if isinstance(rows, list) and rows:
            lines += ["", f"{kind.capitalize()} with N workers (wall clock, the workers' start included):", "",
                      "| workers | frames | frames/s | efficiency | CPU ms/frame | slowest worker's start (s) |",
                      "|---|---|---|---|---|---|"]
            for row in rows:
                lines.append(f"| {row.get('workers')} | {row.get('frames', '-')} | {_num(row.get('fps'), 2)} | "
                             f"{_num(row.get('efficiency'), 2)} | {_num(row.get('cpu_ms_per_frame'), 1)} | "
                             f"{_num(row.get('startup_s'), 1)} |" if "error" not in row
                             else f"| {row.get('workers')} | error: {row['error']} |||||")
        elif isinstance(rows, dict):
            lines += ["", f"{kind.capitalize()} with N workers: {rows.get('skipped')}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- evaluate
def evaluate(folder: Path, prepared: Path) -> dict[str, Any]:
    """Expression and identity of the quality run's swaps that came back (with mediapipe and dlib, here)."""
    import numpy as np

    from engine.bench.expression import CLIP_FACES
    from engine.errors import UserError
    from engine.faces.detect import FaceFinder
    from engine.quality.expression import measure_crops
    from engine.quality.likeness import LikenessMeter, likeness_meter
    from engine.quality.reconstruct import clip_faces, held_out_faces
    from engine.workspace import Workspace

    report = read_json_file(folder / "result.json").get("quality", {})
    if not report.get("points") or not (folder / "quality.npz").is_file():
        raise UserError(f"{folder} has no quality figures (result.json's quality part and quality.npz).",
                        "Give the folder a device run's files came back to (files_at in docs/gpu-server.md).")
    arrays = np.load(folder / "quality.npz")
    frames = [int(f) for f in arrays["frames"]]
    ws = Workspace.open(prepared / "ws")
    finder = FaceFinder(min_presence=0.0)
    base = likeness_meter(ws, print)
    rows = []
    try:
        for point in report["points"]:
            if "error" in point or f"{point['label']}_swaps" not in arrays.files:
                continue
            res = point["resolution"]
            swaps, recons = arrays[f"{point['label']}_swaps"], arrays[f"{point['label']}_recons"]
            clip = clip_faces(ws, "dst", res, limit=CLIP_FACES)
            if clip.frames != frames:
                raise UserError("The prepared workspace's destination faces are not the ones the device measured.",
                                "Evaluate with the .device folder the run was prepared with.")
            held_frames = set(held_out_faces(ws, "dst", res).frames)
            row = {"minutes": round(point["train_seconds"] / 60, 2), "iteration": point["iteration"],
                   "ssim_dst": point.get("ssim_dst")}
            for prefix, picks in (("", [i for i, f in enumerate(frames) if f in held_frames]),
                                  ("clip_", list(range(len(frames))))):
                if not picks:
                    continue
                figures = measure_crops(finder, clip.crops[picks], swaps[picks], recons[picks], clip.landmarks[picks],
                                        [frames[i] for i in picks])
                if base is not None:
                    meter = LikenessMeter(base.embedder, base.source, base.destination)
                    for i in picks:
                        meter.add(frames[i], swaps[i], clip.landmarks[i])
                    figures.update(meter.result())
                row.update({prefix + k: figures.get(k) for k in (
                    "expr_mouth_corr", "expr_mouth_ratio", "expr_mouth_spread", "expr_eyes_ratio", "expr_pose_ratio",
                    "expr_faces", "id_closer_src", "id_src", "id_dst")})
            rows.append(row)
    finally:
        finder.close()
    return {"preset": report.get("preset"), "points": rows}


def evaluate_table(found: dict[str, Any]) -> str:
    lines = [f"Quality per GPU-minute ({found['preset']}), over the clip's destination faces (held-out in brackets):",
             "", "| minutes | iteration | SSIM dst (held-out) | mouth corr | mouth ratio | mouth spread | identity closer to src |",
             "|---|---|---|---|---|---|---|"]
    for row in found["points"]:
        lines.append(f"| {row['minutes']} | {row['iteration']} | {_num(row['ssim_dst'], 4)} | "
                     f"{_num(row.get('clip_expr_mouth_corr'), 3)} ({_num(row.get('expr_mouth_corr'), 3)}) | "
                     f"{_num(row.get('clip_expr_mouth_ratio'), 2)} | {_num(row.get('clip_expr_mouth_spread'), 2)} | "
                     f"{_pct(row.get('clip_id_closer_src'))} ({_pct(row.get('id_closer_src'))}) |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------- main
def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench.gpu_script", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="HERE: the workspace, packages and ffmpeg the device run carries")
    p.add_argument("--dir", type=Path, default=DEVICE_DIR)
    p.add_argument("--pair", choices=("samples", "shared"), default="samples",
                   help="engine/samples (75 frames a side) or ../shared/data's natural pair (200)")
    p.add_argument("--skip-ffmpeg", action="store_true", help="leave ffmpeg out (for a run here: it has one)")
    for name, helptext in (("plan", "print the parts and their time limits"), ("run", "THERE: run every part")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--budget-s", type=float, default=None,
                       help="seconds for all parts together (default 540; with --cpu-smoke 1500)")
        p.add_argument("--cpu-smoke", action="store_true", help="every part tiny, on this CPU")
        p.add_argument("--quality-min", type=float, default=None, help="minutes the quality part trains")
        p.add_argument("--dir", type=Path, default=DEVICE_DIR)
        p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or Path(tempfile.gettempdir(), "gpu-script-out")),
                       help="where the files go (default: $OUT on the device machine, else TMP/gpu-script-out)")
        p.add_argument("--parts", default="", help="comma-separated: only these parts")
    p = sub.add_parser("evaluate", help="HERE: expression and identity of the swaps that came back")
    p.add_argument("folder", type=Path)
    p.add_argument("--dir", type=Path, default=DEVICE_DIR)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("part", help=argparse.SUPPRESS)
    p.add_argument("name")
    for flag in ("--work", "--out", "--until", "--config", "--minutes"):
        p.add_argument(flag, required=True)
    args = parser.parse_args(argv)
    if getattr(args, "budget_s", 0) is None:
        args.budget_s = 1500.0 if args.cpu_smoke else 540.0

    from engine.errors import UserError

    try:
        if args.command == "prepare":
            sizes = prepare(args.dir, args.pair, pack_ffmpeg=not args.skip_ffmpeg)
            return 0 if sizes["fits"] else 1
        if args.command == "plan":
            for step in plan(args.budget_s, args.cpu_smoke, args.quality_min):
                extra = f", {step['minutes']} min of training" if "minutes" in step else ""
                print(f"{step['part']:8} {step['limit_s']:6.0f} s  {step['what']}{extra}")
            print(json.dumps({"plan": plan(args.budget_s, args.cpu_smoke, args.quality_min),
                              "settings": settings_for(args.cpu_smoke)}))
            return 0
        if args.command == "run":
            parts = [p for p in args.parts.split(",") if p] or None
            unknown = set(parts or ()) - {name for name, _, _ in PARTS}
            if unknown:
                raise UserError(f"--parts names {', '.join(sorted(unknown))}, which is not a part.",
                                f"Parts: {', '.join(name for name, _, _ in PARTS)}.")
            report = run(args.budget_s, args.cpu_smoke, args.dir, args.out, parts, args.quality_min)
            return 1 if "error" in report else 0
        if args.command == "evaluate":
            found = evaluate(args.folder, args.dir)
            print(json.dumps(found) if args.json else evaluate_table(found))
            return 0
        return run_part(args.name, json.loads(args.config), Path(args.work), Path(args.out), float(args.until),
                        float(args.minutes))
    except UserError as exc:
        print(f"error: {exc.message}\nhint: {exc.hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
