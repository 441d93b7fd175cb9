"""Job ``segment``: train the workspace's segmenter and write a visible-face mask for every aligned crop.

``side`` (dst, src or both: the sides trained on and masked; "both" uses whichever are extracted)
and the ``[segment]`` settings (engine/settings.py; None: the workspace's value). Training resumes
from the last save (every minute and at a cancel); a segmenter already at its target is not trained
again unless the painted labels (``swapwizard masks import``) changed, then it trains on for half its
iterations. ``import_from`` takes a segmenter exported from another workspace (checked: safetensors
whose tensors match the JSON's network); ``export_to`` writes this one to a folder. ``train=False``
only applies the segmenter there is. The masks land in ``data_<side>/masks/`` (engine.segment.store).
A new segmenter starts from the one shipped with swapwizard (``[segment] start = generic``) and is
fine-tuned for ``finetune_iters``; ``start = scratch`` learns one from nothing for ``iters``. ``auto``
(the run's stage for ``[merge] mask = auto``, and the merge job's ``auto_masks``) segments only when
the destination's faces have something in front of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine import settings
from engine.errors import UserError
from engine.jobs import JobKind
from engine.report import Reporter
from engine.workspace import Workspace


@dataclass
class Params(settings.overrides_class("SegmentKnobs", "segment", module=__name__)):
    side: Literal["dst", "src", "both"] = "both"
    #: Train (or continue training) before applying; False applies the segmenter there is.
    train: bool = True
    apply: bool = True
    #: A folder holding segmenter.safetensors + segmenter.json (an export) to use here.
    import_from: str = ""
    #: A folder to write this workspace's segmenter to, once trained.
    export_to: str = ""
    #: ``[merge] mask = auto`` (the run's segment stage): only when the destination's faces have occluders
    #: (engine.segment.auto, which says why); otherwise nothing is trained.
    auto: bool = False


def sides_for(ws: Workspace, side: str) -> list[str]:
    wanted = ["src", "dst"] if side == "both" else [side]
    present = [s for s in wanted if ws.alignments_path(s).is_file()]
    if not present:
        which = "either side" if side == "both" else f"the {side} side"
        raise UserError(f"No faces of {which} have been extracted yet, so there is nothing to segment.",
                        f"Run: swapwizard extract {ws.root} --side {side}")
    if side != "both" and present != wanted:
        raise UserError(f"The {side} faces have not been extracted yet.", f"Run: swapwizard extract {ws.root} --side {side}")
    return present


def auto_masks(ws: Workspace, report: Reporter) -> dict:
    """For ``[merge] mask = auto``: decide (recorded per extraction; says why) and, when the destination's
    faces have occluders and no masks yet, fine-tune the segmenter and write the masks."""
    from engine.segment import store
    from engine.segment.auto import decide

    decision = decide(ws, report.log)
    if decision["segment"] and not store.has_masks(ws, "dst"):
        return run(ws, Params(side="both"), report)
    return {"auto": decision, "skipped": True}


def run(ws: Workspace, params: Params, report: Reporter) -> dict:
    if params.auto:
        return auto_masks(ws, report)
    import shutil
    from pathlib import Path

    import torch

    from engine.segment import store
    from engine.segment.apply import apply_side, up_to_date
    from engine.segment.exchange import review_sheet
    from engine.segment.model import Segmenter
    from engine.segment.trainer import Options, labels_fingerprint, train

    values = settings.read(ws, "segment", ("the request", params.overrides()))
    if values["resolution"] % 16:
        raise UserError(f"[segment] resolution = {values['resolution']} is not a multiple of 16.",
                        "Use 64, 96, 128, 192 or 256, for example.")
    sides = sides_for(ws, params.side)
    device = values["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if values["threads"]:
        torch.set_num_threads(values["threads"])
    folder = store.segmenter_dir(ws)
    result: dict = {"sides": sides}
    if params.import_from:
        source = Path(params.import_from).expanduser()
        source = source if source.is_absolute() else ws.root / source
        imported = Segmenter.load(source, device)  # checked: a mismatched or foreign file is refused here
        d = imported.description
        d.origin = d.origin or source.name
        d.labels = labels_fingerprint(ws, sides)  # not retrained for painted labels it never saw, unless asked
        d.target = d.iteration
        if folder.exists():
            shutil.rmtree(folder)
        imported.save(folder)
        values["resolution"], values["width"] = d.resolution, d.width
        report.log(f"Imported the segmenter from {source} ({d.resolution} px, iteration {d.iteration}).")
        result["imported"] = str(source)
    segmenter = None
    if params.train:
        options = Options(resolution=values["resolution"], width=values["width"], iters=values["iters"],
                          batch=values["batch_size"], device=device, start=values["start"],
                          finetune_iters=values["finetune_iters"])
        trained = train(ws, sides, options, lambda done, total: report.progress("segment_train", done, total,
                                                                                   unit="iters"),
                        report.check_cancelled, report.log)
        segmenter = trained.pop("segmenter")
        result.update({"train": trained, "iou": trained["iou"], "iteration": trained["iteration"]})
        report.metrics(segment_iou=trained["iou"], segment_iou_clean=trained["iou_clean"],
                       iter=trained["iteration"])
        report.log(f"Segmenter at iteration {trained['iteration']}: held-out IoU {trained['iou']} with synthetic "
                   f"occluders, {trained['iou_clean']} without ({trained['held_out']} faces).")
    elif not (folder / store.CONFIG).is_file():
        raise UserError("This workspace has no segmenter to apply.", f"Train one: swapwizard segment {ws.root}")
    if params.apply:
        segmenter = segmenter or Segmenter.load(folder, device)
        result["masks"] = {}
        for side in sides:
            if up_to_date(ws, side, segmenter):
                report.log(f"{side}: masks are up to date.")
                result["masks"][side] = {"side": side, "skipped": True, **store.occluded_count(ws, side)}
                continue
            done = apply_side(ws, side, segmenter, lambda n, total, s=side: report.progress(f"masks_{s}", n, total,
                                                                                           unit="faces"),
                              report.check_cancelled)
            report.log(f"{side}: {done['faces']} masks written to data_{side}/masks/; {done['occluded']} faces "
                       "have an occluder.")
            result["masks"][side] = done
        for side in sides:  # the faces it doubts most, mask over them: what to paint first
            sheet = review_sheet(ws, side)
            if sheet:
                report.preview(sheet, side=side)
                result["masks"][side]["review"] = sheet
    if params.export_to:
        target = Path(params.export_to).expanduser()
        target = target if target.is_absolute() else ws.root / target
        (segmenter or Segmenter.load(folder, device)).save(target)
        report.log(f"Exported the segmenter to {target} ({store.WEIGHTS} + {store.CONFIG}).")
        result["exported"] = str(target)
    return result


JOB = JobKind(kind="segment", params=Params, run=run, screens=("masks",), label="Masking faces")
