"""``swapwizard check WS [--json] [--detach]``: the data check as an engine job, then its report.

Faces per frame, size, blur, light and poses per side, how well the source's poses cover the
destination's and, with ``[merge] mask = auto``, whether the destination's faces have something in front of
them: what the merge's mask will be (engine.segment.auto, recorded for the merge). ``--json`` prints only
the report's JSON on stdout; ``--detach`` queues the job and returns at once (like every job command); the
report is then in ``WS/check/report.json``.
"""

from __future__ import annotations

import json

import typer

from tui.cli.app import app
from tui.cli.common import EXIT_DONE, open_workspace, out
from tui.cli.follow import submit_and_follow


@app.command()
def check(workspace: str = typer.Argument(..., help="The workspace folder."),
          as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
          detach: bool = typer.Option(False, "--detach", help="Queue the job and return at once.")) -> None:
    """Data checks: faces per frame, size, blur, light, poses, and how well src covers dst's poses."""
    ws = open_workspace(workspace)
    code = submit_and_follow(ws, "check", {}, detach=detach)
    report_path = ws.root / "check" / "report.json"
    if detach or code != EXIT_DONE or not report_path.is_file():
        raise typer.Exit(code)
    report = json.loads(report_path.read_text(encoding="utf-8"))
    if as_json:
        out.print_json(json.dumps(report))
        raise typer.Exit(EXIT_DONE)
    for side in ("src", "dst"):
        info = report["sides"][side]
        if not info.get("extracted"):
            out.print(f"{side}: not extracted")
            continue
        size = info["face_size"] or {}
        blur = info["blur"] or {}
        light = info["brightness"] or {}
        out.print(f"{side}: {info['faces']} faces of track {info['target_track']} in {info['frames']} frames "
                  f"(frames with 0/1/2+ faces: {info['frames_with'].get('0', 0)}/{info['frames_with'].get('1', 0)}/"
                  f"{info['frames_with'].get('2+', 0)}); size {size.get('median')} px, blur {blur.get('median')}, "
                  f"brightness {light.get('median')}", highlight=False)
        hist = info["yaw_histogram"]
        out.print("  yaw   " + "  ".join(f"{lo:+d}:{n}" for lo, n in zip(hist["edges"], hist["counts"]) if n),
                  highlight=False)
        hist = info["pitch_histogram"]
        out.print("  pitch " + "  ".join(f"{lo:+d}:{n}" for lo, n in zip(hist["edges"], hist["counts"]) if n),
                  highlight=False)
        ident = info.get("identity") or {}
        if ident.get("faces_measured"):
            people = ident.get("people") or 0
            out.print(f"  identity: {people} {'person' if people == 1 else 'people'} found; target person "
                      f"{ident.get('target_person', '-')}, whose faces hold {ident.get('face_set_people')} identities: "
                      f"{'about ' if ident.get('estimated') else ''}{ident.get('other_person_faces', 0)} look like "
                      f"someone else (median distance {ident.get('median_distance')})", highlight=False, markup=False)
        occ = info.get("occluders") or {}
        if occ:
            by_mask = (f"; the segmenter's masks show an occluder on {occ['occluded_by_mask']} of {occ['masked_faces']}"
                       if occ.get("masked_faces") else "; no segmenter masks yet (swapwizard segment WS)")
            out.print(f"  occluders: a hand near {occ.get('faces_with_hands', 0)} faces{by_mask}", highlight=False)
    score = report["coverage"].get("score")
    out.print(f"coverage: {'-' if score is None else f'{score:.0%}'} of dst faces have src faces of a similar pose")
    occlusions = report.get("occlusions") or {}
    if occlusions.get("line"):  # [merge] mask = auto: what the merge will do about occluders, and why
        out.print(occlusions["line"], highlight=False, markup=False)
    for warning in report["warnings"]:
        out.print(f"warning: {warning}", style="yellow", highlight=False, markup=False)
    out.print(f"contact sheet: {ws.root / report['contact_sheet']}", highlight=False, markup=False)
    raise typer.Exit(EXIT_DONE)
