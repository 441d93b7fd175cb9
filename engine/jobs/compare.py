"""Job ``compare``: several models merged on the same held-out frames, measured and shown side by side.

    swapwizard compare WS --models A B [...] [--frames N] [--json]

Writes ``output/compare/compare.json`` (metrics table with the better values marked, training cost
of each model), ``side_by_side.mp4`` and ``contact_sheet.png`` (both labelled as synthetic media);
see engine.quality.compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.jobs import JobKind
from engine.report import Reporter
from engine.workspace import Workspace


@dataclass
class Params:
    #: Model names (at least two); empty: every trained model of the workspace.
    models: list[str] = field(default_factory=list)
    frames: int = 50
    device: str = "auto"
    #: Content Credentials on the side-by-side video and contact sheet (False: --no-c2pa).
    c2pa: bool = True
    c2pa_cert: str = ""
    c2pa_key: str = ""


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    from engine.interop.load import model_exists
    from engine.quality.compare import compare

    names = list(params.models) or [n for n in ws.model_names() if model_exists(ws.model_dir(n))]
    return compare(ws, names, report, frames=params.frames, device=params.device, c2pa=params.c2pa,
                   c2pa_cert=params.c2pa_cert, c2pa_key=params.c2pa_key)


JOB = JobKind(kind="compare", params=Params, run=run, label="Comparing models")
