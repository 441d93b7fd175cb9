"""A diagnostic interactive job: answers at once from the warm worker (tests the interactive lane)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from engine.report import Reporter
from engine.workspace import Workspace

KIND = "diagnostic_echo"
#: Runs beside the main queue in the persistent worker process, like merge previews.
LANE = "interactive"


@dataclass
class Params:
    text: str = ""


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    report.log(f"echo: {params.text}")
    return {"echo": params.text, "pid": os.getpid()}
