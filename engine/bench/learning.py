"""The learning check: does the model learn? Reconstruction SSIM on held-out faces over training.

    python -m engine.bench.learning [--preset tiny] [--iters 400] [--every 50] [--threads 1] [--json]

Extracts both shipped sample clips into a temporary workspace, holds out every fifth face of each
side (moved out of ``aligned/``, so training never sees them, exactly as a user deleting crops),
trains the preset on CPU (or ``--device``), and after every ``--every`` iterations prints the mean
SSIM of src->src and dst->dst reconstructions of the held-out faces (11 px Gaussian window, whole
crop). A model that learns shows the SSIM rising clearly from its untrained value.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def held_out_ssim(run, faces) -> dict[str, float]:
    import torch

    from engine.train.losses import ssim

    model = run.trainer.model
    model.eval()
    with torch.no_grad():
        src = faces["src"][:, :3].float().div(255).to(run.device)
        dst = faces["dst"][:, :3].float().div(255).to(run.device)
        n = min(len(src), len(dst))
        src_src, _, dst_dst, _ = model(src[:n], dst[:n])
        values = {"src": ssim(src_src.float(), src[:n]).mean().item(), "dst": ssim(dst_dst.float(), dst[:n]).mean().item()}
    model.train()
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench.learning")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--iters", type=int, default=400)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from engine.faces.extract import ExtractSettings, extract_side
    from engine.quality.training import TrainingQuality
    from engine.report import NullReporter
    from engine.train.loop import TrainingRun
    from engine.train.resolve import resolve
    from engine.train.samples import FaceItem, load_items
    from engine.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="swapwizard-learn-") as tmp:
        ws = Workspace.create(Path(tmp) / "ws", SAMPLES / "src.mp4", SAMPLES / "dst.mp4")
        held: dict[str, list[Path]] = {}
        for side in ("src", "dst"):
            extract_side(ws, side, ExtractSettings(size=128, crop_format="png"), NullReporter())
            folder = Path(tmp) / f"held_{side}"
            folder.mkdir()
            crops = sorted(ws.aligned_dir(side).iterdir())
            held[side] = [Path(shutil.move(str(p), folder / p.name)) for p in crops[2::5]]
        config = resolve(ws, {"preset": args.preset, "device": args.device, "threads": args.threads, "iters": 0})
        run = TrainingRun(ws, config, NullReporter(), watch=TrainingQuality)
        run.setup()
        res = run.model_options.resolution
        faces = {side: load_items([FaceItem(p, None, None) for p in held[side]], side, res, "held out").data
                 for side in ("src", "dst")}
        curve = [{"iter": 0, **held_out_ssim(run, faces), "seconds": 0.0}]
        if not args.json:
            print(f"held out: {len(faces['src'])} src, {len(faces['dst'])} dst faces; "
                  f"training on {len(run.faces['src'])} + {len(run.faces['dst'])}")
            print(f"{'iter':>6} {'ssim src':>9} {'ssim dst':>9} {'seconds':>8}")
            print(f"{0:6d} {curve[0]['src']:9.4f} {curve[0]['dst']:9.4f} {0.0:8.1f}")
        start = time.monotonic()
        for target in range(args.every, args.iters + 1, args.every):
            config.target_iters = target
            run.train_to_target()
            point = {"iter": target, **held_out_ssim(run, faces), "seconds": round(time.monotonic() - start, 1)}
            curve.append(point)
            if not args.json:
                print(f"{target:6d} {point['src']:9.4f} {point['dst']:9.4f} {point['seconds']:8.1f}", flush=True)
    if args.json:
        print(json.dumps({"preset": args.preset, "curve": curve}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
