"""Job ``faceset``: pack a side's aligned faces into one zip file, or unpack one into a side.

``file`` must be an absolute path (the CLI resolves it): the job runs in the engine's process.
Unpacking marks the side's extraction step done, so the wizard moves on to training. It records that
step itself (its declaration's ``managed_steps``), only when the set was swapped in: an unpack that
fails leaves the side's faces as they were (engine.faces.faceset), so it leaves their step as it was too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from engine.errors import UserError
from engine.jobs import JobKind
from engine.jobs.steps import FINISHED, StepRecorder
from engine.report import Reporter
from engine.workspace import Workspace


@dataclass
class Params:
    action: Literal["pack", "unpack"] = "pack"
    side: Literal["src", "dst"] = "src"
    file: str = ""
    force: bool = False


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    from pathlib import Path

    from engine.faces.faceset import pack, unpack

    if not params.file or not Path(params.file).is_absolute():
        raise UserError("The face set file must be given as an absolute path.", "The CLI does this for you.")
    if params.action == "pack":
        result = pack(ws, params.side, params.file)
        report.log(f"Packed {result['faces']} {params.side} faces into {result['file']}.")
    else:
        result = unpack(ws, params.side, params.file, force=params.force)
        StepRecorder(ws, on_error=report.warning, job=JOB.kind).ended([f"extract_{params.side}"], FINISHED,
                                                                   dataclasses.asdict(params), result=result)
        report.log(f"Unpacked {result['faces']} faces into data_{params.side}/aligned.")
    return result


JOB = JobKind(kind="faceset", params=Params, run=run, managed_steps=("extract_src", "extract_dst"),
              label="Unpacking a face set")
