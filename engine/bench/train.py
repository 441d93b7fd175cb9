"""Training speed: iterations/s, samples/s, the loop's overhead ratio; on a GPU also MFU and the
sample pipeline's own ceiling.

    swapwizard bench train [--preset saehd|quick|tiny] [--json] [--iters N] [--device D]
                           [--workspace WS | --faces N] [--batch N] [--threads N] [--peak-tflops T]
    python -m engine.bench train --preset tiny --json
    swapwizard bench train --startup [--workspace WS] [--every N] [--train-s S]   (engine.bench.startup)

Faces: a workspace's extracted sets (``--workspace``), else both shipped sample clips extracted
into a temporary workspace (75 faces a side). After a warm-up, four measurements:

* ``full``: the real training loop (``TrainingRun``): sampling, augmentation on the device, forward,
  loss, backward, optimizer, sync points, metrics/progress events encoded as JSON like the engine
  pipe does. One checkpoint save and one preview are timed on their own (``checkpoint_s``,
  ``preview_s``) and amortised at the configured intervals (10 and 5 minutes by default).
* ``bare``: ``Trainer.step`` on one ready, already augmented batch: forward, the same loss,
  backward, optimizer step, nothing else.
* ``overhead_ratio`` = (full time per iteration, with the amortised save and preview) / bare time
  per iteration. Target: at most 1.15 on the CPU. Full and bare alternate in three rounds and each
  takes its best round, so drifting load from other programs does not favour either.
* ``overhead_ratio_vs_plain``: the same against a step whose loss is a plain MSE (no DSSIM, masking
  or eyes-and-mouth weighting): what the SAEHD loss itself costs on top of the network.
* ``pipeline_samples_per_s``: sampling + augmentation alone, as fast as it goes; compared with what
  the model consumes (``pipeline_headroom``; should be 2 or more). A sample is one face (a training
  iteration uses ``batch`` src and ``batch`` dst faces per process).
* Memory: ``rss_mb`` (the process's resident memory while training), ``faces_src``/``faces_dst``, the
  on-disk store's size (``store_mb``, built in ``store_build_s``) and ``in_memory_rss_mb``: what
  loading both sets into memory instead (the way before the store) adds to the resident memory. With
  ``--faces N`` each side of the temporary workspace grows to N faces: copies of the sample crops with
  photometric augmentation (brightness, contrast, colour, noise, blur; the geometry and so the
  records stay valid), to measure a big set's memory and pipeline headroom.
* ``--probe-batch``: the automatic batch-size probe (``engine.train.batchprobe``) from the run's batch up
  to ``--batch-cap`` (default 1024 on a GPU, 32 on the CPU), leaving 20 % of the memory free:
  ``probe_batch`` (the batch it would choose), ``probe_curve`` (batch, samples/s, peak memory) and why
  it stopped. Its figures on a GPU (with MFU at the chosen batch: rerun with ``--batch`` set to it)
  are what a larger default batch on big cards must come from; on the CPU it only shows the probe works.
* GPU only: ``flops_per_iter`` (counted by torch.utils.flop_counter over one step, forward and
  backward), ``achieved_tflops`` and ``mfu`` against the card's dense bf16/fp16 peak (known cards, or
  ``--peak-tflops``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from engine.errors import UserError

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
ROUNDS = 3
#: Dense bf16/fp16 tensor-core peaks (TFLOP/s, no sparsity), matched against torch's device name.
PEAK_TFLOPS = (("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("GH200", 989.0), ("A100", 312.0),
               ("L40S", 362.0), ("L40", 181.0), ("A10G", 70.0), ("A10", 125.0), ("L4", 121.0),
               ("RTX 4090", 165.0), ("RTX 3090", 71.0), ("V100", 125.0), ("T4", 65.0))


def peak_tflops(name: str) -> float | None:
    for key, value in PEAK_TFLOPS:
        if key in name:
            return value
    return None


def _workspace(path: str | None, tmp: Path, size: int, faces: int | None = None):
    from engine.faces.extract import ExtractSettings, extract_side
    from engine.report import NullReporter
    from engine.workspace import Workspace

    if path:
        return Workspace.open(path)
    ws = Workspace.create(tmp / "ws", SAMPLES / "src.mp4", SAMPLES / "dst.mp4")
    for side in ("src", "dst"):
        extract_side(ws, side, ExtractSettings(size=size, crop_format="png"), NullReporter())
        if faces:
            grow_side(ws, side, faces)
    return ws


def grow_side(ws, side: str, count: int, seed: int = 0) -> int:
    """Make ``side`` hold ``count`` faces: the extracted crops and copies of them with photometric
    augmentation (the geometry is untouched, so each copy's record is the original's with a new file
    and frame number). Returns the number of faces."""
    import dataclasses

    import cv2
    import numpy as np

    from engine.faces.records import read_alignments, save_records

    header, records = read_alignments(ws.alignments_path(side))
    originals = [r for r in records if r.file and (ws.side_dir(side) / r.file).is_file()]
    if not originals:
        raise UserError(f"There are no {side} crops to copy.", "Extract the side first.")
    rng = np.random.default_rng(seed)
    span = max(r.frame for r in records) + 1
    grown = list(records)
    images = {r.file: cv2.imread(str(ws.side_dir(side) / r.file), cv2.IMREAD_COLOR) for r in originals}
    for k in range(len(originals), count):
        base = originals[k % len(originals)]
        copy = k // len(originals)
        image = images[base.file].astype(np.float32)
        image = image * rng.uniform(0.75, 1.25) + rng.uniform(-25, 25)  # contrast, brightness
        image = image * rng.uniform(0.9, 1.1, size=3) + rng.normal(0, rng.uniform(0, 6), image.shape)
        if rng.random() < 0.3:
            image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.5))
        name = f"grown/{copy:05d}-{Path(base.file).name}"
        path = ws.side_dir(side) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), np.clip(image, 0, 255).astype(np.uint8))
        grown.append(dataclasses.replace(base, file=name, frame=base.frame + copy * span))
    save_records(ws, side, header, grown)
    return len(grown)


def _rss_mb() -> float:
    """This process's resident memory now (MB)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _plain_step(trainer, batch) -> None:
    """Forward, a plain MSE on the same outputs (no DSSIM, masks or priorities), backward, step."""
    import torch.nn.functional as F

    from engine.train.device import autocast

    with autocast(trainer.device, trainer.dtype):
        out = trainer.forward_model(trainer.prepare(batch.src_in), trainer.prepare(batch.dst_in))
    loss = (F.mse_loss(out[0].float(), batch.src_target) + F.mse_loss(out[1].float(), batch.src_mask)
            + F.mse_loss(out[2].float(), batch.dst_target) + F.mse_loss(out[3].float(), batch.dst_mask))
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.scaler.scale(loss).backward()
    trainer.scaler.step(trainer.optimizer)
    trainer.scaler.update()


def measure(preset_name: str, iters: int | None, device: str, workspace: str | None, batch: int | None,
            threads: int | None, peak: float | None, faces: int | None = None, probe: bool = False,
            batch_cap: int | None = None, extra: dict | None = None) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from engine.jobs.train import Params
    from engine.quality.training import TrainingQuality
    from engine.report import CallbackReporter
    from engine.train.loop import TrainingRun
    from engine.train.options import preset
    from engine.train.resolve import resolve
    from engine.train.samples import load_side, store_dir
    from engine.train.store import describe

    if threads:
        torch.set_num_threads(threads)
    res = preset(preset_name).model.resolution
    with tempfile.TemporaryDirectory(prefix="swapwizard-bench-") as tmp, contextlib.ExitStack() as cleanup:
        ws = _workspace(workspace, Path(tmp), max(128, res * 2), faces)
        model = f"bench-{preset_name}-{int(time.time())}"
        if workspace:  # the user's workspace: the throwaway model does not stay among its models
            cleanup.callback(shutil.rmtree, ws.model_dir(model), True)
        params = Params(model=model, preset=preset_name, device=device or "", batch_size=batch, iters=1,
                        **(extra or {}))
        config = resolve(ws, params.overrides())
        sent: list[int] = []
        run = TrainingRun(ws, config, CallbackReporter(lambda e: sent.append(len(json.dumps(e)))),
                          watch=TrainingQuality)
        # Held-out quality is measured on a thread beside the loop: let the last one end before the
        # throwaway model's folder is removed (it writes quality_history.json there).
        cleanup.callback(lambda: run.quality is not None and run.quality.finish())
        t0 = time.perf_counter()
        run.setup()
        setup_s = time.perf_counter() - t0
        dev = run.device
        n = iters or (200 if dev.type == "cuda" else 30)
        warm = 20 if dev.type == "cuda" else 5
        config.target_iters = warm
        run.train_to_target()  # warm-up: allocator, cuDNN autotuning, first saves

        bs = run.trainer.options.batch_size
        batch_ready = run.augmenter(run.samplers["src"].take(bs), run.samplers["dst"].take(bs))
        for _ in range(3):
            run.trainer.step(batch_ready, run.iteration)

        # Full loop and bare step, interleaved in rounds (other work on the machine drifts; each side's
        # best round is taken).
        full_times, bare_times = [], []
        chunk = max(1, n // ROUNDS)
        for _ in range(ROUNDS):
            config.target_iters = run.iteration + chunk
            run.last_save_time = run.last_preview_time = time.monotonic()  # timed apart, below
            _sync(dev)
            t0 = time.perf_counter()
            run.train()
            _sync(dev)
            full_times.append((time.perf_counter() - t0) / chunk)
            t0 = time.perf_counter()
            for _ in range(chunk):
                run.trainer.step(batch_ready, run.iteration)
            _sync(dev)
            bare_times.append((time.perf_counter() - t0) / chunk)
        full_s, bare_s = min(full_times), min(bare_times)
        for _ in range(2):
            _plain_step(run.trainer, batch_ready)
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(chunk):
            _plain_step(run.trainer, batch_ready)
        _sync(dev)
        plain_s = (time.perf_counter() - t0) / chunk
        t0 = time.perf_counter()
        run.save()
        checkpoint_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        run.write_preview()
        preview_s = time.perf_counter() - t0

        # Sample pipeline alone.
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(n):
            run.augmenter(run.samplers["src"].take(bs), run.samplers["dst"].take(bs))
        _sync(dev)
        pipeline_s = (time.perf_counter() - t0) / n
        rss_mb = _rss_mb()  # after a pass over many random batches of the stores
        stores = [s for s in describe(store_dir(ws)) if s["name"] in (f"src_{res}", f"dst_{res}")]
        in_memory = {side: load_side(ws, side, res, in_memory=True) for side in ("src", "dst")}
        in_memory_rss_mb = _rss_mb() - rss_mb
        del in_memory

        probed = None
        if probe:
            from engine.train.batchprobe import probe_batch, trainer_step

            step = trainer_step(run.model_options, config.train_options, dev, res,
                                raw=lambda n: (run.samplers["src"].take(n), run.samplers["dst"].take(n)))
            probed = probe_batch(step, dev, start=bs, cap=batch_cap or (1024 if dev.type == "cuda" else 32))

        flops = None
        if dev.type == "cuda":
            counter = FlopCounterMode(display=False)
            with counter:
                run.trainer.step(batch_ready, run.iteration)
            flops = counter.get_total_flops()

    amortised = full_s * (1 + checkpoint_s / (config.save_every_min * 60) + preview_s / (config.preview_every_min * 60))
    samples_per_iter = 2 * bs
    result = {
        "preset": preset_name, "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "precision": str(run.trainer.dtype or torch.float32).replace("torch.", ""),
        "batch_size": bs, "iters": chunk * ROUNDS, "threads": torch.get_num_threads(),
        "iters_per_s": round(1 / full_s, 3), "samples_per_s": round(samples_per_iter / full_s, 1),
        "bare_iters_per_s": round(1 / bare_s, 3),
        "overhead_ratio": round(amortised / bare_s, 3), "overhead_ratio_loop_only": round(full_s / bare_s, 3),
        "plain_iters_per_s": round(1 / plain_s, 3), "overhead_ratio_vs_plain": round(amortised / plain_s, 3),
        "checkpoint_s": round(checkpoint_s, 3), "preview_s": round(preview_s, 3),
        "augment_ms_per_batch": round(pipeline_s * 1000, 3),
        "pipeline_samples_per_s": round(samples_per_iter / pipeline_s, 1),
        "pipeline_headroom": round(full_s / pipeline_s, 2),
        "events_per_iter": round(len(sent) / max(1, run.iteration), 3),
        "faces_src": len(run.faces["src"]), "faces_dst": len(run.faces["dst"]), "resolution": res,
        "faces_on_disk": type(run.faces["src"].data).__name__ == "StoredFaces",
        "setup_s": round(setup_s, 1), "rss_mb": round(rss_mb, 1),
        "store_mb": round(sum(s["bytes"] for s in stores) / 2**20, 1),
        "in_memory_rss_mb": round(in_memory_rss_mb, 1),
    }
    if probed is not None:
        result.update({"probe_batch": probed["batch"], "probe_stopped": probed["stopped"],
                       "probe_curve": probed["curve"]})
    if flops is not None:
        achieved = flops / bare_s / 1e12
        card_peak = peak or peak_tflops(result["device_name"])
        result.update({"flops_per_iter": flops, "achieved_tflops_bare": round(achieved, 2),
                       "achieved_tflops": round(flops / full_s / 1e12, 2), "peak_tflops": card_peak,
                       "mfu": round(flops / full_s / 1e12 / card_peak, 4) if card_peak else None,
                       "mfu_bare": round(achieved / card_peak, 4) if card_peak else None})
    return result


def _train_settings(pairs: list[str]) -> dict:
    """``--set KEY=VALUE`` pairs as checked [train] settings (VALUE read as TOML, else as text)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    from engine import settings

    values = {}
    for pair in pairs:
        key, sep, text = (part.strip() for part in pair.partition("="))
        if not sep:
            raise UserError(f"--set {pair!r} is not KEY=VALUE.", "For example: --set precision=fp32.")
        setting = settings.get("train", key)
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        values[key] = setting.check(value, f"--set {key}")
    return values


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="swapwizard bench train", description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="tiny", choices=("saehd", "quick", "tiny"))
    parser.add_argument("--iters", type=int, default=None, help="timed iterations (default 200 on GPU, 30 on CPU)")
    parser.add_argument("--device", default="", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--workspace", default=None, help="use this workspace's extracted faces")
    parser.add_argument("--probe-batch", action="store_true", help="run the automatic batch-size probe too")
    parser.add_argument("--batch-cap", type=int, default=None, help="the probe's largest batch")
    parser.add_argument("--faces", type=int, default=None,
                        help="grow each side of the temporary workspace to N faces (augmented copies)")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the card's dense bf16 peak, if unknown")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a [train] setting for this measurement, e.g. --set precision=fp32 --set compile=true")
    parser.add_argument("--startup", action="store_true", help="time submit -> faces loaded -> first iteration -> "
                        "first preview, the cancel, and the loop's time lost to measuring (engine.bench.startup)")
    parser.add_argument("--every", type=int, default=50, help="--startup: measure quality every N iterations")
    parser.add_argument("--train-s", type=float, default=20.0, help="--startup: train this long before the cancel")
    args = parser.parse_args(argv)
    if args.startup:
        from engine.bench import startup

        result = startup.measure(args.workspace, args.preset, args.threads or 0, args.iters or 150, args.every,
                                 args.train_s, _workspace)
        print(json.dumps(result)) if args.json else startup.report(result)
        return 0
    if args.iters is not None and args.iters < 1:
        raise UserError("--iters must be at least 1.", "For example: --iters 50.")
    if args.faces is not None and (args.faces < 1 or args.workspace):
        raise UserError("--faces grows the temporary workspace's sets: give a count of 1 or more, without "
                        "--workspace.", "For example: swapwizard bench train --faces 50000.")
    result = measure(args.preset, args.iters, args.device, args.workspace, args.batch, args.threads, args.peak_tflops,
                     args.faces, args.probe_batch, args.batch_cap, _train_settings(args.set))
    result["settings"] = dict(item.split("=", 1) for item in args.set)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"train bench: preset {result['preset']} on {result['device_name']} ({result['precision']}), "
          f"batch {result['batch_size']}, {result['iters']} iterations")
    print(f"  full loop     {result['iters_per_s']:9.2f} it/s   {result['samples_per_s']:9.1f} samples/s")
    print(f"  bare step     {result['bare_iters_per_s']:9.2f} it/s   (with a plain MSE loss: "
          f"{result['plain_iters_per_s']:.2f} it/s, loop/plain {result['overhead_ratio_vs_plain']:.3f})")
    print(f"  overhead      {result['overhead_ratio']:9.3f} x  (loop only {result['overhead_ratio_loop_only']:.3f}; "
          f"save {result['checkpoint_s']:.2f} s, preview {result['preview_s']:.2f} s amortised)")
    print(f"  pipeline      {result['pipeline_samples_per_s']:9.1f} samples/s  ({result['pipeline_headroom']:.1f}x "
          f"what the loop consumes; augmentation {result['augment_ms_per_batch']:.2f} ms/batch)")
    print(f"  memory        {result['rss_mb']:9.0f} MB resident with {result['faces_src']} + {result['faces_dst']} "
          f"faces at {result['resolution']} px (store on disk {result['store_mb']:.0f} MB; loading them into "
          f"memory instead adds {result['in_memory_rss_mb']:.0f} MB)")
    if "probe_batch" in result:
        curve = ", ".join(f"{p['batch']}: {p['samples_per_s']:.0f}/s" for p in result["probe_curve"])
        print(f"  batch probe   {result['probe_batch']:9d}     (stopped: {result['probe_stopped']}; {curve})")
    if "flops_per_iter" in result:
        mfu = f"{result['mfu'] * 100:.1f} %" if result["mfu"] is not None else "unknown peak (use --peak-tflops)"
        print(f"  compute       {result['achieved_tflops']:9.2f} TFLOP/s  MFU {mfu} "
              f"(bare step {result['achieved_tflops_bare']:.2f} TFLOP/s)")
    sys.stdout.flush()
    return 0
