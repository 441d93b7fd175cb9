"""Job ``check``: data collection checks on the extracted faces of both sides.

Writes ``WS/check/report.json`` (per-side counts, face size, blur, brightness, yaw/pitch histograms,
warnings, the pose coverage score) and ``WS/check/contact_sheet.png``; ``swapwizard check WS --json``
prints the report. See engine.faces.check for what each figure means.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import UserError
from engine.report import Reporter
from engine.workspace import Workspace

KIND = "check"
STEPS = ("check",)


@dataclass
class Params:
    pass


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    from engine.faces.check import write_report

    if not any(ws.alignments_path(side).is_file() for side in ("src", "dst")):
        raise UserError("Nothing is extracted yet, so there is nothing to check.",
                        "Run: swapwizard extract WS --side both")
    result = write_report(ws, lambda side, done, total: report.progress(f"identity_{side}", done, total,
                                                                         unit="faces"))
    report.preview(result["contact_sheet"])
    for warning in result["warnings"]:
        report.warning(warning)
    cover = result["coverage"]
    return {"coverage": cover.get("score"), "warnings": len(result["warnings"]),
            "src_faces": result["sides"]["src"].get("faces", 0), "dst_faces": result["sides"]["dst"].get("faces", 0),
            "report": "check/report.json", "contact_sheet": result["contact_sheet"]}
