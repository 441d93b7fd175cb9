"""Alignment check benchmark: known bad crops planted into a real face set, and what the data check finds.

    python -m engine.bench.alignment [--json] [--src CLIP] [--dst CLIP] [--every N] [--shift S]
    python -m engine.bench.alignment --src ../shared/data/WDA_KatieHill_000.mp4 --dst ../shared/data/short_hamilton_clip.mp4

Both clips are extracted in a temporary workspace (hands off; the destination with ``small_faces``,
so that a stage clip gives its small faces too). Then into the source face set go, on every
``--every``-th frame (from frame 3, so that each planted face has good neighbours in its track), in
turn: the crop turned over, the crop turned a quarter (either way), the crop shifted by ``--shift``
of its side (right, down, left, up), and another person's face (a destination face's record and
crop: the track hopped). ``engine.faces.check`` runs on both sides and the figures are: planted
faces found (per kind), and false alarms: good faces of either side reported as doubtful, with the
reasons given. ``tests/extract/test_alignment_check.py`` runs the same on the shipped samples.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from engine.bench.timing import Stopwatch, show

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
KINDS = ("turned over", "quarter turn", "shifted", "another face")


def plant(ws: Any, every: int = 4, shift: float = 0.2) -> dict[str, str]:
    """Bad crops put into the source face set of ``ws`` (both sides extracted); ``{file: kind}``."""
    import cv2
    import numpy as np

    from engine.faces.records import read_alignments, write_alignments

    src_dir, dst_dir = ws.side_dir("src"), ws.side_dir("dst")
    header, records = read_alignments(ws.alignments_path("src"))
    _, others = read_alignments(ws.alignments_path("dst"))
    largest = max(others, key=lambda o: o.box[2] - o.box[0]).track
    others = [r for r in others if r.track == largest]
    planted = {}
    for n, record in enumerate(r for r in records if r.frame % every == 3 % every):
        kind = KINDS[n % len(KINDS)]
        path = src_dir / record.file
        crop = cv2.imread(str(path))
        side = crop.shape[0]
        if kind == "turned over":
            crop = cv2.rotate(crop, cv2.ROTATE_180)
        elif kind == "quarter turn":
            crop = cv2.rotate(crop, cv2.ROTATE_90_CLOCKWISE if n % 2 else cv2.ROTATE_90_COUNTERCLOCKWISE)
        elif kind == "shifted":
            dx, dy = [(1, 0), (0, 1), (-1, 0), (0, -1)][n // len(KINDS) % 4]
            crop = cv2.warpAffine(crop, np.float32([[1, 0, dx * side * shift], [0, 1, dy * side * shift]]),
                                  (side, side), borderMode=cv2.BORDER_REPLICATE)
        else:
            other = others[n % len(others)]
            crop = cv2.resize(cv2.imread(str(dst_dir / other.file)), (side, side))
            for name in ("landmarks", "transform", "box", "yaw", "pitch", "roll"):
                setattr(record, name, getattr(other, name))
        cv2.imwrite(str(path), crop)
        planted[record.file] = kind
    write_alignments(ws.alignments_path("src"), header, records)
    return planted


def score(report: dict[str, Any], planted: dict[str, str]) -> dict[str, Any]:
    """Found / planted (per kind) and false alarms / good faces, from a check report."""
    found = {f["file"] for f in report["sides"]["src"]["alignment"]["faces"]}
    false = [f"{side} {f['file']}: {', '.join(f['reasons'])}" for side in ("src", "dst")
             for f in report["sides"][side]["alignment"]["faces"] if side == "dst" or f["file"] not in planted]
    good = sum(report["sides"][side]["faces"] for side in ("src", "dst")) - len(planted)
    per_kind = {kind: f"{sum(1 for f, k in planted.items() if k == kind and f in found)}/"
                      f"{sum(1 for k in planted.values() if k == kind)}" for kind in KINDS}
    hits = sum(1 for f in planted if f in found)
    return {"found": hits, "planted": len(planted), "found_by_kind": per_kind,
            "missed": [f"{file} ({kind})" for file, kind in planted.items() if file not in found],
            "false_alarms": len(false),
            "good_faces": good, "false_alarm_faces": false,
            "figure": f"found {hits}/{len(planted)} planted ({', '.join(f'{k} {v}' for k, v in per_kind.items())}); "
                      f"false alarms {len(false)}/{good} good faces"}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.bench.alignment", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    parser.add_argument("--src", default=str(SAMPLES / "src.mp4"), help="Clip of the face set to plant into.")
    parser.add_argument("--dst", default=str(SAMPLES / "hamilton.mp4"), help="Clip of other faces (false alarms too).")
    parser.add_argument("--every", type=int, default=4, help="Plant on every Nth frame of the source.")
    parser.add_argument("--shift", type=float, default=0.2, help="Shift of the shifted crops, share of their side.")
    args = parser.parse_args(argv)

    from engine.faces.check import write_report
    from engine.faces.extract import ExtractSettings, extract_side
    from engine.report import NullReporter
    from engine.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.create(Path(tmp) / "ws", Path(args.src), Path(args.dst))
        for side in ("src", "dst"):
            extract_side(ws, side, ExtractSettings(hands=False, small_faces=side == "dst"), NullReporter())
        planted = plant(ws, args.every, args.shift)
        with Stopwatch() as watch:
            report = write_report(ws)
        figures = score(report, planted)
        checked = sum(report["sides"][side]["alignment"]["faces_checked"] for side in ("src", "dst"))
        figures.update({"clips": f"{Path(args.src).name} / {Path(args.dst).name}", "shift": args.shift,
                        "check_s": round(watch.seconds, 1), "faces_checked": checked})
    show(figures, args.json)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
