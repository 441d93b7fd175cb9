"""Job ``masks_export``: a side's face crops and current masks as PNG pairs in a folder, for editing
(engine.segment.exchange). ``frames`` ("10-50,80"), ``worst`` (the N faces the segmenter doubts most)
or ``marked`` (``rejected``: the faces rejected in the wizard's mask review) choose which."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.errors import UserError
from engine.jobs import JobKind
from engine.report import Reporter
from engine.workspace import Workspace


@dataclass
class Params:
    side: Literal["dst", "src"] = "dst"
    #: The folder to write (relative to the workspace, or absolute).
    folder: str = "masks_edit"
    frames: str = ""
    worst: int = 0
    #: "rejected", "accepted" or "unmarked": only faces with that mark in the mask review ("": any).
    marked: Literal["", "rejected", "accepted", "unmarked"] = ""


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    from pathlib import Path

    from engine.segment.exchange import export_masks

    if params.worst < 0:
        raise UserError("--worst must be 0 (all faces) or more.", "For example: --worst 50")
    folder = Path(params.folder).expanduser()
    folder = folder if folder.is_absolute() else ws.root / folder
    result = export_masks(ws, params.side, folder, params.frames, params.worst,
                          lambda done, total: report.progress("masks_export", done, total, unit="faces"),
                          marked=params.marked)
    report.log(f"Wrote {result['faces']} crop + mask pairs to {folder}; edit the *_mask.png files, then: "
               f"swapwizard masks import {ws.root} {folder} --side {params.side}")
    return result


JOB = JobKind(kind="masks_export", params=Params, run=run, screens=("masks",), label="Exporting masks to paint")
