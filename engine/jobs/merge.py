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
from engine.jobs import JobKind
from engine.merge import settings as merge_settings
from engine.quality.mouth_auto import merge_mouth
from engine.report import Reporter
from engine.workspace import Workspace


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
    #: Another clip to merge with the trained model (engine.merge.other): it is extracted into
    #: extra_dst/<name>/ and merged into extra_dst/<name>/output/, the workspace's own destination untouched.
    dst: str = ""
    #: Also copy the result here (absolute, or relative to the workspace); "" keeps it in its output folder.
    output: str = ""


def moved_steps(params: Params) -> list[str]:
    """The workspace's merge step, unless the merge is of another clip (--dst)."""
    return [] if params.dst else ["merge"]


def knobs(params: FaceKnobs) -> dict:
    """The [merge] settings the request sets (the non-None knobs of ``params``)."""
    return {key: getattr(params, key) for key in settings.keys("merge") if getattr(params, key, None) is not None}


def settings_from(ws: Workspace, params: FaceKnobs):
    """The workspace's [merge] settings with the job's non-None knobs applied (checked)."""
    return merge_settings.load(ws, **knobs(params))


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    from engine.merge.render import render

    target = ws
    other = None
    merge_values = settings_from(ws, params)
    if merge_values.mask == "auto" and not params.dst and _ready_to_merge(ws, params):
        from engine.jobs.segment import auto_masks

        auto_masks(ws, report)  # occluders found: the segmenter fine-tuned and its masks written first
    if params.dst:
        other = _other_destination(ws, params, report)
        target = other
    mouth, said = merge_mouth(ws.model_dir(ws.model_name(params.model)), merge_values.mouth)
    if said:
        report.log(said)
    result = render(target, merge_values, model_name=ws.model_name(params.model), report=report,
                    restart=params.restart, segment_frames=params.segment_frames, device=params.device,
                    c2pa=params.c2pa, c2pa_cert=params.c2pa_cert, c2pa_key=params.c2pa_key, mouth=mouth)
    result["mouth"] = {"setting": merge_values.mouth, "used": mouth, "why": said}
    if other is not None:
        from engine.merge.other import describe

        result["other_destination"] = describe(other)
    if params.output:
        result["copied_to"] = str(_copy_result(ws, ws.root / result["output"], params.output))
        report.log(f"Copied the result to {result['copied_to']}.")
    return result


def _ready_to_merge(ws: Workspace, params: Params) -> bool:
    """Whether the destination is extracted and the model trained: otherwise the merge's own checks say
    what is missing, before any segmenter is fine-tuned for ``mask = auto``."""
    from engine.interop.load import model_exists

    return ws.alignments_path("dst").is_file() and model_exists(ws.model_dir(ws.model_name(params.model)))


def _other_destination(ws: Workspace, params: Params, report: Reporter):
    """Extract the other clip (--dst) into its own folder; refuse a clip without a face to replace."""
    from engine.errors import UserError
    from engine.faces.extract import ExtractSettings, extract_side
    from engine.interop.load import model_exists
    from engine.merge.other import prepare

    if not model_exists(ws.model_dir(ws.model_name(params.model))):
        raise UserError(f"There is no trained model {ws.model_name(params.model)!r} in this workspace to merge with.",
                        "Train one first (swapwizard train WS), or unpack one (swapwizard unpack MODEL.tar.gz WS).")
    other = prepare(ws, params.dst)
    report.log(f"Merging another clip, {other.source('dst').name}: its faces and result go to {ws.rel(other.folder)}/ "
               "(the workspace's own destination is not touched).")
    values = ExtractSettings(**settings.layered("extract", ("workspace.toml", ws.section("extract"))))
    found = extract_side(other, "dst", values, report)
    if not found.get("target_faces", found.get("faces", 0)):
        raise UserError(f"No face was found in {params.dst}, so there is nothing to replace.",
                        "Check that the clip shows a face clearly (frontal, lit, not too small); for distant faces "
                        "set [extract] small_faces = true.")
    return other


def _copy_result(ws: Workspace, result, output: str):
    """Copy the (signed) result to ``output``: the same bytes, so its Content Credentials stay valid."""
    from pathlib import Path

    from engine.errors import UserError
    from engine.merge.other import copy_file

    path = Path(output).expanduser()
    path = path if path.is_absolute() else ws.root / path
    if path.is_dir():
        path = path / Path(result).name
    if not path.parent.is_dir():
        raise UserError(f"The folder {path.parent} does not exist; the result stays in {ws.rel(result)}.",
                        "Create the folder, or give --output a path in an existing one.")
    copy_file(Path(result), path)
    return path


JOB = JobKind(kind="merge", params=Params, run=run, steps=moved_steps, stoppable=True, screens=("export",),
              label="Merging")
