"""Identity benchmark: what the face descriptor costs, and how well people are linked across hard cuts.

    python -m engine.bench identity [--json] [--a CLIP] [--b CLIP] [--segment N]
    swapwizard bench identity --a ../shared/data/WDA_KatieHill_000.mp4 --b ../shared/data/WDA_AlexandriaOcasioCortez_000.mp4

1. ``descriptor_ms``: dlib's descriptor on 150-pixel chips, per face, in batches of 32 (median of 3);
   ``descriptor_cpu_ms`` the CPU time (one core: it does not depend on how busy the machine is).
2. A destination made of A, then B, then A again (``--segment`` frames each, hard cuts; cut with the
   ffmpeg imageio-ffmpeg ships), extracted with ``--reference`` a frame of A that is not in it, in a
   temporary workspace. Reported: the extraction's seconds and frames/s, the faces embedded for linking
   (sampled per track), their ms per face and share of the extraction's time, the splits found, and
   the linking accuracy: the share of faces whose person is their segment's person (A's two segments
   one person, B another), and the target's precision and recall over A's faces.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from engine.bench.timing import Stopwatch, show

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _ffmpeg(*args: str) -> None:
    from engine.media.probe import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True, timeout=600)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="swapwizard bench identity", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    parser.add_argument("--a", default=str(SAMPLES / "src.mp4"), help="Clip of person A.")
    parser.add_argument("--b", default=str(SAMPLES / "dst.mp4"), help="Clip of person B.")
    parser.add_argument("--segment", type=int, default=0, help="Frames per segment (0: a third of the shorter clip).")
    args = parser.parse_args(argv)

    import numpy as np

    from engine.faces import identity
    from engine.faces.records import read_alignments, target_track_ids
    from engine.jobs import get_kind
    from engine.media.probe import probe
    from engine.report import NullReporter
    from engine.workspace import Workspace

    clip_a, clip_b = Path(args.a), Path(args.b)
    frames_a, frames_b = probe(clip_a).frame_count, probe(clip_b).frame_count
    segment = args.segment or min(frames_a, frames_b) // 3
    if 2 * segment + 1 > frames_a or segment > frames_b:
        print("error: the clips are too short for that --segment.", file=sys.stderr)
        return 2
    embedder = identity.Embedder()
    chips = [np.random.default_rng(i).integers(0, 255, (150, 150, 3), dtype=np.uint8) for i in range(32)]
    times, cpu = [], []
    for _ in range(3):
        with Stopwatch() as watch:
            embedder.embed_chips(chips)
        times.append(watch.seconds / len(chips) * 1000)
        cpu.append(watch.cpu_seconds / len(chips) * 1000)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        joined = root / "a_b_a.mp4"
        segments = (("A", 0, 0, segment), ("B", 1, 0, segment), ("A", 0, segment, 2 * segment))
        parts = [f"[{src}:v]trim=start_frame={first}:end_frame={end},setpts=PTS-STARTPTS[p{i}]"
                 for i, (_, src, first, end) in enumerate(segments)]
        _ffmpeg("-i", str(clip_a), "-i", str(clip_b), "-filter_complex",
                ";".join(parts) + ";[p0][p1][p2]concat=n=3:v=1:a=0[v]", "-map", "[v]", "-c:v", "libx264",
                "-crf", "18", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(joined))
        photo = root / "a.png"
        _ffmpeg("-i", str(clip_a), "-vf", f"select=eq(n\\,{frames_a - 1})", "-frames:v", "1", str(photo))
        ws = Workspace.create(root / "ws", clip_a, joined)
        job = get_kind("extract")
        with Stopwatch() as watch:
            result = job.module.run(ws, job.parse_params({"side": "dst", "reference": str(photo)}),
                                    NullReporter())["sides"]["dst"]
        seconds = watch.seconds
        header, records = read_alignments(ws.alignments_path("dst"))
        truth = {r.frame: ("A" if r.frame < segment or r.frame >= 2 * segment else "B") for r in records}
        majority = {who: max({r.person for r in records if truth[r.frame] == who},
                             key=lambda p: sum(1 for r in records if truth[r.frame] == who and r.person == p))
                    for who in ("A", "B") if any(truth[r.frame] == who for r in records)}
        linked = sum(1 for r in records if r.person == majority.get(truth[r.frame]))
        linked_ok = linked if majority.get("A") != majority.get("B") else 0
        targets = target_track_ids(header)
        chosen = [r for r in records if r.track in targets]
        a_faces = [r for r in records if truth[r.frame] == "A"]
        link = result["identity"]
        figures = {
            "descriptor_ms": round(statistics.median(times), 2),
            "descriptor_cpu_ms": round(statistics.median(cpu), 2),
            "clip": f"{clip_a.name} / {clip_b.name}, segments of {segment} frames (A, B, A)",
            "frames": 3 * segment, "faces": len(records), "extract_s": round(seconds, 2),
            "extract_fps": round(3 * segment / seconds, 1),
            "embedded_for_linking": link["embedded"], "linking_ms_per_face": link["ms_per_face"],
            "linking_share_of_extraction": round(link["embedded"] * (link["ms_per_face"] or 0) / 1000 / seconds, 3),
            "splits": link["splits"], "people": len(header.get("people") or []),
            "linking_accuracy": round(linked_ok / max(1, len(records)), 4),
            "target_precision": round(sum(1 for r in chosen if truth[r.frame] == "A") / max(1, len(chosen)), 4),
            "target_recall": round(sum(1 for r in chosen if truth[r.frame] == "A") / max(1, len(a_faces)), 4),
            "reference_distance": result.get("distance"),
        }
    show(figures, args.json)
    return 0
