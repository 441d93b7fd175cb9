"""Job ``merge``: the trained model's faces pasted into the destination, exported as output/result.mp4.

Every knob left ``None`` takes the workspace's ``[merge]`` value; the values used are written back
there, so the next merge (and the wizard) starts from them. The result is labelled as synthetic
media (container metadata; optional visible mark) and carries the destination's audio in sync.
Interrupted merges resume after the last whole segment; ``restart`` starts over.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.report import Reporter
from engine.workspace import Workspace

KIND = "merge"
STEPS = ("merge",)


@dataclass
class FaceKnobs:
    """The knobs that change how a face goes back into a frame (None: the workspace's [merge] value).

    Shared by ``merge`` and ``merge_preview``, so a preview takes exactly the knobs a merge does.
    """

    #: Model name (model/<name>/); "" takes [train] model from workspace.toml, else "default".
    model: str = ""
    mask: str | None = None
    erode: int | None = None
    blur: int | None = None
    edge_fade: int | None = None
    colour: str | None = None
    blend: str | None = None
    face_scale: float | None = None
    sharpen: float | None = None
    mark: bool | None = None
    device: str = "auto"


@dataclass
class Params(FaceKnobs):
    crf: int | None = None
    preset: str | None = None
    audio: str | None = None
    png: bool | None = None
    mask_video: bool | None = None
    #: Throw away segments of an interrupted merge and start from the first frame.
    restart: bool = False
    #: Frames per resumable segment (an interruption loses at most this many frames of work).
    segment_frames: int = 250


KNOBS = ("mask", "erode", "blur", "edge_fade", "colour", "blend", "face_scale", "sharpen", "crf", "preset",
         "audio", "mark", "png", "mask_video")


def settings_from(ws: Workspace, params: Params):
    """The workspace's [merge] settings with the job's non-None knobs applied (checked)."""
    from engine.merge import settings

    return settings.load(ws, **{name: getattr(params, name) for name in KNOBS})


def model_name(ws: Workspace, name: str) -> str:
    """The model to merge with: the one named, else the one training uses ([train] model), else default."""
    return name or str(ws.section("train").get("model") or "") or "default"


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    from engine.merge.render import render

    return render(ws, settings_from(ws, params), model_name=model_name(ws, params.model), report=report,
                  restart=params.restart, segment_frames=params.segment_frames, device=params.device)
