"""Job ``masks_import``: painted masks (``*_mask.png`` from ``masks export``, edited) become labels that
outrank the automatic ones (engine.segment.exchange). The whole folder is checked first: nothing is
imported when one file is wrong. Retrain the segmenter afterwards (``swapwizard masks import`` does)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.jobs import JobKind
from engine.report import Reporter
from engine.workspace import Workspace


@dataclass
class Params:
    side: Literal["dst", "src"] = "dst"
    folder: str = "masks_edit"


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    from pathlib import Path

    from engine.segment.exchange import import_masks

    folder = Path(params.folder).expanduser()
    folder = folder if folder.is_absolute() else ws.root / folder
    result = import_masks(ws, params.side, folder)
    report.log(f"{params.side}: imported {result['imported']} painted masks ({result['painted']} in all); "
               "they outrank the segmenter's.")
    return result


JOB = JobKind(kind="masks_import", params=Params, run=run, screens=("masks",), label="Importing painted masks")
