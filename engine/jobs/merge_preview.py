"""Job ``merge_preview``: one destination frame merged with the given knobs, as a PNG, fast.

For the wizard's merge screen: submit it each time a knob changes; the job announces the PNG
(``.swapwizard/previews/merge_preview.png``, plus a small JPEG for terminals) with a ``preview``
event and returns its path. The model's prediction for the frame is cached on disk, so only the
first preview of a frame runs the model; the following ones take milliseconds of merging (plus
the job process start). Knobs left ``None`` take the workspace's ``[merge]`` values; nothing is
written back (that happens when the user runs the merge).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from engine.jobs import JobKind
from engine.jobs.merge import FaceKnobs, settings_from
from engine.quality.mouth_auto import merge_mouth
from engine.report import Reporter
from engine.workspace import Workspace


@dataclass
class Params(FaceKnobs):
    #: The destination frame to merge.
    frame: int = 0


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    from engine.merge.preview import PREVIEW_SMALL, load_frame, merge_cached, write_before, write_preview

    chosen = settings_from(ws, params)
    started = time.perf_counter()
    cached = load_frame(ws, params.frame, ws.model_name(params.model), params.device, morph=chosen.morph,
                        runtime=chosen.runtime)
    loaded = time.perf_counter()
    mouth, _ = merge_mouth(ws.model_dir(ws.model_name(params.model)), chosen.mouth)  # "auto": as the merge decides
    png, small = write_preview(ws, merge_cached(cached, chosen.replace(mouth=mouth)))
    merge_ms = (time.perf_counter() - loaded) * 1000.0
    before = write_before(ws, cached, params.frame)  # the frame unmerged, for the before / after view
    report.preview(ws.rel(png), small=ws.rel(small), frame=params.frame, faces=len(cached.faces))
    return {"path": ws.rel(png), "small": PREVIEW_SMALL, "before": ws.rel(before), "frame": params.frame,
            "faces": len(cached.faces),
            "load_ms": round((loaded - started) * 1000.0, 1), "merge_ms": round(merge_ms, 1)}


# The interactive lane: the engine's warm worker, beside (not behind) training or a merge, so a preview
# comes back in a fraction of a second and its model stays loaded between previews.
JOB = JobKind(kind="merge_preview", params=Params, run=run, lane="interactive", screens=("merge",),
              label="Merge preview")
