"""One prepared GPU check for the training issue: run it on one H100/H200, in under 5 minutes.

    cd REPO && python engine/bench/gpu_script.py            # or: python -m engine.bench.gpu_script

It prints, for the README's Training section:

1. ``swapwizard bench train --preset quick --json`` and ``--preset saehd`` (iterations/s,
   samples/s, overhead ratio, MFU against the card's bf16 peak, the sample pipeline's own samples/s
   and its headroom over what the model consumes);
2. a real training job on the GPU (the quick preset, 40 iterations, through ``engine.jobs.train``
   with checkpoints and previews), then ``engine.train.api.load_model`` + ``predict`` on 32 dst crops
   (what merging does), with timings.

Each part has its own time limit; a part that fails prints its error and the script goes on.
The last line is one JSON object with everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "engine" / "samples"


def bench(preset: str, iters: int, timeout: int) -> dict:
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", "engine.bench", "train", "--preset", preset, "--iters", str(iters),
                               "--json"], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"preset": preset, "error": f"timed out after {timeout} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"preset": preset, "error": (proc.stderr or proc.stdout)[-2000:]}
    result = json.loads(lines[-1])
    result["wall_s"] = round(time.monotonic() - started, 1)
    return result


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def job_and_predict(preset: str = "quick", iters: int = 40) -> dict:
    sys.path.insert(0, str(REPO))
    import cv2

    from engine.faces.extract import ExtractSettings, extract_side
    from engine.jobs.train import Params, run
    from engine.report import CallbackReporter
    from engine.train.api import load_model
    from engine.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="swapwizard-gpu-") as tmp:
        ws = Workspace.create(Path(tmp) / "ws", SAMPLES / "src.mp4", SAMPLES / "dst.mp4")
        for side in ("src", "dst"):
            extract_side(ws, side, ExtractSettings(size=256, crop_format="png"), CallbackReporter(lambda e: None))
        events: list[dict] = []
        started = time.monotonic()
        result = run(ws, Params(preset=preset, iters=iters, save_every_iters=20), CallbackReporter(events.append))
        train_s = time.monotonic() - started
        model = load_model(ws.model_dir("default"))
        crops = [cv2.resize(cv2.imread(str(p)), (model.resolution,) * 2)
                 for p in sorted(ws.aligned_dir("dst").iterdir())[:32]]
        model.predict(crops[:4])
        _sync()
        started = time.monotonic()
        preds = model.predict(crops)
        _sync()
        predict_s = time.monotonic() - started
        return {
            "iteration": result["iteration"], "loss_src": result["loss_src"], "loss_dst": result["loss_dst"],
            "warnings": result["warnings"], "train_job_s": round(train_s, 1),
            "events": {t: sum(e["type"] == t for e in events) for t in ("metrics", "preview", "progress", "log")},
            "predict_device": str(model.device), "predict_faces_per_s": round(len(crops) / predict_s, 1),
            "prediction_shapes": [list(preds[0].face.shape), list(preds[0].mask_src.shape)],
            "face_range": [float(preds[0].face.min()), float(preds[0].face.max())],
        }


def main(argv: list[str]) -> int:
    import torch

    # --cpu-smoke: the same steps with the tiny preset and a few iterations, to check the script itself.
    smoke = "--cpu-smoke" in argv
    plan = (("tiny", 3), ("tiny", 3)) if smoke else (("quick", 150), ("saehd", 100))

    report: dict = {"torch": torch.__version__, "cuda": torch.version.cuda,
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES")}
    print(f"torch {report['torch']} cuda {report['cuda']} gpu {report['gpu']}", flush=True)
    if not torch.cuda.is_available():
        print("no CUDA GPU visible: this script is for a GPU machine", flush=True)
    for (preset, iters), label in zip(plan, ("quick", "saehd")):
        figures = bench(preset, iters, timeout=600 if smoke else 120)
        report[f"bench_{label}"] = figures
        print(f"bench {label}: {json.dumps(figures)}", flush=True)
    try:
        report["job_and_predict"] = job_and_predict("tiny", 4) if smoke else job_and_predict()
    except Exception as exc:  # noqa: BLE001 - report and go on: this is a diagnostic script
        report["job_and_predict"] = {"error": f"{type(exc).__name__}: {exc}"}
    print(f"job and predict: {json.dumps(report['job_and_predict'])}", flush=True)
    print("| preset | GPU | precision | batch | it/s | samples/s | overhead | MFU | pipeline samples/s (headroom) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for preset in ("quick", "saehd"):
        f = report[f"bench_{preset}"]
        if "error" in f:
            print(f"| {preset} | error: {f['error'][-200:]!r} |")
            continue
        mfu = f"{f['mfu'] * 100:.1f} %" if f.get("mfu") is not None else "n/a"
        print(f"| {f['preset']} | {f['device_name']} | {f['precision']} | {f['batch_size']} | {f['iters_per_s']:.2f} | "
              f"{f['samples_per_s']:.0f} | {f['overhead_ratio']:.3f} | {mfu} | "
              f"{f['pipeline_samples_per_s']:.0f} ({f['pipeline_headroom']:.1f}x) |")
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
