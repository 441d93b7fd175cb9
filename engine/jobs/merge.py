"""Job ``merge``: the trained model's faces pasted into the destination, exported as output/result.mp4.

Every knob (declared in engine/settings.py) left ``None`` takes the workspace's ``[merge]`` value; the
values used are written back there, so the next merge (and the wizard) starts from them. The result is
labelled as synthetic media (container metadata; optional visible mark), signed with Content
Credentials (C2PA; ``c2pa=False`` turns them off) and carries the destination's audio in sync.
Interrupted merges resume after the last whole segment; ``restart`` starts over.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine import settings
from engine.merge import settings as merge_settings
from engine.report import Reporter
from engine.workspace import Workspace

KIND = "merge"
STEPS = ("merge",)


@dataclass
class FaceKnobs(settings.overrides_class("FaceKnobs", "merge", group="face", module=__name__)):
    """The [merge] knobs that change how a face goes back into a frame (None: the workspace's value).

    Shared by ``merge`` and ``merge_preview``, so a preview takes exactly the knobs a merge does.
    """

    #: Model name (model/<name>/); "" takes [train] model from workspace.toml, else "default".
    model: str = ""
    device: str = "auto"


#: The [merge] knobs that only change the exported video (crf, preset, audio, png, mask_video).
_ExportKnobs = settings.overrides_class("ExportKnobs", "merge", group="export", module=__name__)


@dataclass
class Params(FaceKnobs, _ExportKnobs):
    #: Throw away segments of an interrupted merge and start from the first frame.
    restart: bool = False
    #: Frames per resumable segment (an interruption loses at most this many frames of work).
    segment_frames: int = 250
    #: Sign the exported files with Content Credentials (False: --no-c2pa, said in the events and result).
    c2pa: bool = True
    #: A signing certificate chain and key (PEM) over [c2pa] cert/key for this export.
    c2pa_cert: str = ""
    c2pa_key: str = ""


def knobs(params: FaceKnobs) -> dict:
    """The [merge] settings the request sets (the non-None knobs of ``params``)."""
    return {key: getattr(params, key) for key in settings.keys("merge") if getattr(params, key, None) is not None}


def settings_from(ws: Workspace, params: FaceKnobs):
    """The workspace's [merge] settings with the job's non-None knobs applied (checked)."""
    return merge_settings.load(ws, **knobs(params))


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    from engine.merge.render import render

    return render(ws, settings_from(ws, params), model_name=ws.model_name(params.model), report=report,
                  restart=params.restart, segment_frames=params.segment_frames, device=params.device,
                  c2pa=params.c2pa, c2pa_cert=params.c2pa_cert, c2pa_key=params.c2pa_key)
