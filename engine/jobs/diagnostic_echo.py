"""A diagnostic interactive job: answers at once from the warm worker (tests the interactive lane)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from engine.jobs import JobKind
from engine.report import Reporter
from engine.workspace import Workspace

#: Runs beside the main queue in the persistent worker process, like merge previews.


@dataclass
class Params:
    text: str = ""


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    report.log(f"echo: {params.text}")
    return {"echo": params.text, "pid": os.getpid()}


JOB = JobKind(kind="diagnostic_echo", params=Params, run=run, lane="interactive", label="Echo (a diagnostic)",
              consent=False)
