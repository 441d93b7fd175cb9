"""Job ``check``: data collection checks on the extracted faces of both sides.

Writes ``WS/check/report.json`` (per-side counts, face size, blur, brightness, yaw/pitch histograms,
doubtful alignments, warnings, the pose coverage score), ``WS/check/contact_sheet.png`` and, where a side
has doubtful alignments, ``WS/check/alignment_<side>.png``; ``swapwizard check WS --json``
prints the report. See engine.faces.check for what each figure means. With ``[merge] mask = auto`` it also
makes (and records, in ``WS/segmenter/auto.json``, where the merge reads it) the occlusion decision of
``engine.segment.auto`` and says it in one line: the report's and the result's ``occlusions``.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import UserError
from engine.jobs import JobKind
from engine.report import Reporter
from engine.workspace import Workspace


@dataclass
class Params:
    pass


def occlusions(ws: Workspace) -> dict:
    """What the merge's mask will be and why, in one line (``line``): with ``[merge] mask = auto`` the
    decision of engine.segment.auto (made here and recorded unless the destination's faces are unchanged)."""
    from engine import settings
    from engine.segment import auto
    from engine.segment.decision import DECISION, sentence

    try:
        mask = settings.read(ws, "merge")["mask"]
    except UserError as exc:
        return {"mask": None, "line": f"Occlusions not looked for: {exc.message}"}
    if mask != "auto":
        return {"mask": mask, "line": f"Mask {mask} (as [merge] mask says): occlusions are not looked for."}
    if not ws.alignments_path("dst").is_file():
        return {"mask": mask, "line": "Occlusions: the destination is not extracted yet, so the merge decides "
                                      "when it starts."}
    try:
        made = auto.decision(ws)
    except UserError as exc:  # e.g. a damaged segmenter in the workspace: the check still reports the rest
        return {"mask": mask, "line": f"Occlusions not looked for: {exc.message} {exc.hint}".strip()}
    return {"mask": mask, "segment": made["segment"], "occluded": made["occluded"], "faces": made["faces"],
            "estimate_s": made.get("estimate_s"), "decision": "segmenter/" + DECISION,
            "line": sentence(ws, made)}


def _add_occluders(ws: Workspace, result: dict) -> None:
    """The segmenter's count of occluded faces per side (engine.segment) and the occlusion decision, into the
    written report."""
    from engine.atomic import atomic_write_json
    from engine.faces.check import report_dir
    from engine.segment.store import occluded_count

    for side, info in result["sides"].items():
        if info.get("extracted"):
            info.setdefault("occluders", {}).update(occluded_count(ws, side))
    result["occlusions"] = occlusions(ws)
    atomic_write_json(report_dir(ws) / "report.json", result)


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    from engine.faces.check import write_report

    if not any(ws.alignments_path(side).is_file() for side in ("src", "dst")):
        raise UserError("Nothing is extracted yet, so there is nothing to check.",
                        "Run: swapwizard extract WS --side both")
    result = write_report(ws, lambda side, done, total, stage: report.progress(f"{stage}_{side}", done, total,
                                                                                unit="faces"))
    _add_occluders(ws, result)
    report.log(result["occlusions"]["line"])
    report.preview(result["contact_sheet"])
    for warning in result["warnings"]:
        report.warning(warning)
    cover = result["coverage"]
    sides = result["sides"]
    return {"coverage": cover.get("score"), "warnings": len(result["warnings"]),
            "doubtful_alignments": {side: (info.get("alignment") or {}).get("doubtful") for side, info in sides.items()},
            "src_faces": result["sides"]["src"].get("faces", 0), "dst_faces": result["sides"]["dst"].get("faces", 0),
            "dst_occluded": (result["sides"]["dst"].get("occluders") or {}).get("occluded_by_mask"),
            "dst_faces_with_hands": (result["sides"]["dst"].get("occluders") or {}).get("faces_with_hands"),
            "occlusions": result["occlusions"],
            "report": "check/report.json", "contact_sheet": result["contact_sheet"]}


JOB = JobKind(kind="check", params=Params, run=run, steps=("check",), screens=("check",), label="Checking the faces")
