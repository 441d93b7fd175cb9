"""The generic segmenter shipped in the package, and the script that trains it.

A workspace's segmenter starts from these weights (``engine/assets/segmenter/``) and is fine-tuned on
its own faces for a few hundred iterations, instead of learning faces from nothing over a thousand.

Reproduce the shipped weights::

    nice -n 10 .venv/bin/python -m engine.segment.generic --out engine/assets/segmenter

The shipped ones took 1 456 s of training (24 minutes; niced, one torch thread, on the shared 2-core
development machine at a load average of 20-25, 2026-12-07) plus about two minutes of extraction:
217 faces (313 found in the clip, the target person's kept, and the portraits), 21 held out, whose IoU
was 0.824 with a synthetic occluder and 0.896 without. The training was stopped and resumed once with
the same ``--work`` folder before any segmenter was saved (the extraction kept).

Data: ``../shared/data/short_hamilton_clip.mp4`` (a stage scene, two people, small faces and
profiles: the src side) and its portraits ``obama.jpg``, ``obama2.jpg``, ``biden.jpg`` and
``two_people.jpg`` (the dst side, an image folder), extracted with the defaults at 256 px, plus
the synthetic occluders of ``engine.segment.synth`` (hands and patches cut from the other faces,
polygons, ellipses, glasses, hair). The two talking-head clips are left out on purpose: ``bench
segment`` measures the segmenter on their held-out faces, so the generic weights have never seen
those people. Seed 0, batch 16, 128 px, width 8 (the ``[segment]`` defaults), 300 steps (``--iters``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from engine.segment import store

SHARED = Path(__file__).resolve().parent.parent.parent.parent / "shared" / "data"
PORTRAITS = ("obama.jpg", "obama2.jpg", "biden.jpg", "two_people.jpg")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.segment.generic", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(store.GENERIC), help="folder to write segmenter.safetensors + .json to")
    parser.add_argument("--iters", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default=str(SHARED), help="the shared sample data folder")
    parser.add_argument("--work", default="", help="keep the scratch workspace here (saved every minute); the "
                        "same --work again resumes the training")
    args = parser.parse_args(argv)

    from engine.faces.extract import ExtractSettings, extract_side
    from engine.report import NullReporter
    from engine.segment.model import Segmenter
    from engine.segment.trainer import Options, train
    from engine.workspace import Workspace

    data = Path(args.data)
    tmp = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="swapwizard-generic-segmenter-"))
    try:
        began = time.monotonic()
        if (tmp / "ws").is_dir():  # --work again: resume where the last call saved
            ws = Workspace.open(tmp / "ws")
        else:
            portraits = tmp / "portraits"
            portraits.mkdir(parents=True)
            for name in PORTRAITS:
                shutil.copyfile(data / name, portraits / name)
            ws = Workspace.create(tmp / "ws", src=data / "short_hamilton_clip.mp4", dst=portraits)
            for side in ("src", "dst"):
                extract_side(ws, side, ExtractSettings(size=256), NullReporter())
        extract_s = time.monotonic() - began
        options = Options(iters=args.iters, threads=args.threads, seed=0, save_every_s=60.0)
        trained = train(ws, ["src", "dst"], options, log=print)
        segmenter: Segmenter = trained.pop("segmenter")
        d = segmenter.description
        d.sides, d.labels, d.origin, d.target = [], {}, "generic", d.iteration
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        segmenter.save(out)
        print(json.dumps({**trained, "extract_s": round(extract_s, 1), "out": str(out)}))
    finally:
        if not args.work:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
