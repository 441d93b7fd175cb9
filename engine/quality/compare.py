"""Compare models on the same held-out destination frames: a table with the better values marked, a
side-by-side video and a contact sheet (destination | A | B ...), and what each model cost to train.

    result = compare(ws, ["liae-gan", "liae-plain"], report)

Outputs (the latest comparison; a new one replaces them) in ``WS/output/compare/``:

- ``compare.json``: the models (iteration, training cost, every metric), and per metric the values,
  which direction is better, which model is best and whether its lead is clear (larger than twice
  the standard error of the paired per-frame differences: same frames, so frame difficulty cancels);
- ``side_by_side.mp4``: the measured frames, destination and each model's merge in a row, captioned,
  labelled as synthetic media like every swapwizard output;
- ``contact_sheet.png``: face close-ups of a few of those frames, one row per frame, labelled in
  its PNG text chunks.
"""

from __future__ import annotations

import math
import time
from typing import Any

from engine.atomic import atomic_write_bytes, atomic_write_json
from engine.errors import UserError
from engine.faces.detect import FaceFinder
from engine.interop.load import load_model, model_exists
from engine.media import credentials as content_credentials
from engine.media.encode import VideoWriter, png_with_text, synthetic_label
from engine.media.probe import probe
from engine.merge import settings as merge_settings
from engine.quality import history, sheet
from engine.quality.cost import training_cost, unseen_check
from engine.quality.evaluate import METRICS
from engine.quality.expression import expression_fidelity
from engine.quality.frames import measured_frames, records_by_frame, swapped_frames
from engine.quality.likeness import LikenessMeter, likeness_meter
from engine.quality.reconstruct import held_out_faces, reconstruction_metrics
from engine.quality.swap import SwapMeter
from engine.quality.verdict import verdicts
from engine.report import NullReporter, Reporter
from engine.workspace import Workspace

OUT_DIR = "output/compare"
SHEET_ROWS = 4


def best_of(values: dict[str, Any], better: Any) -> list[str]:
    """The models with the better value: highest, lowest, or nearest a target value; ties all win."""
    numbers = {name: v for name, v in values.items() if isinstance(v, (int, float)) and math.isfinite(v)}
    if len(numbers) < 2:
        return []
    if better == "high":
        score = {name: -v for name, v in numbers.items()}
    elif better == "low":
        score = dict(numbers)
    else:
        score = {name: abs(v - float(better)) for name, v in numbers.items()}
    top = min(score.values())
    if all(abs(s - top) <= 1e-9 for s in score.values()):
        return []  # all equal: nobody is better
    return [name for name, s in score.items() if abs(s - top) <= 1e-9]


def _score(value: float, better: Any) -> float:
    """Lower is better, whatever the metric's direction."""
    if better == "high":
        return -value
    if better == "low":
        return value
    return abs(value - float(better))


def clear_margin(best: str, values: dict[str, Any], samples: dict[str, dict[str, dict[int, float]]],
                 key: str, better: Any) -> tuple[bool, float | None]:
    """Whether ``best`` beats every other model by more than the frame-to-frame noise: the mean of the
    paired per-frame differences must exceed twice its standard error. Returns (clear, that error)."""
    import numpy as np

    errors = []
    for name, value in values.items():
        if name == best or not isinstance(value, (int, float)):
            continue
        mine, theirs = samples.get(best, {}).get(key, {}), samples.get(name, {}).get(key, {})
        frames = sorted(set(mine) & set(theirs))
        if len(frames) < 3:
            return False, None
        gaps = np.array([_score(theirs[f], better) - _score(mine[f], better) for f in frames])
        error = float(gaps.std(ddof=1) / np.sqrt(len(gaps)))
        errors.append(error)
        if gaps.mean() <= 2 * error:
            return False, round(error, 6)
    return True, round(max(errors), 6) if errors else None


def metric_table(models: list[dict[str, Any]],
                 samples: dict[str, dict[str, dict[int, float]]] | None = None) -> list[dict[str, Any]]:
    """Per metric: the values, the better direction, the best model(s) and whether the lead is clear."""
    table = []
    for key, (meaning, better) in METRICS.items():
        values = {m["name"]: m["metrics"].get(key) for m in models}
        best = best_of(values, better)
        clear, noise = clear_margin(best[0], values, samples, key, better) if samples and len(best) == 1 \
            else (bool(best) and samples is None, None)
        table.append({"metric": key, "meaning": meaning,
                      "better": better if isinstance(better, str) else f"nearer {better:g}",
                      "values": values, "best": best, "clear": clear, "noise": noise})
    return table


def _check_names(ws: Workspace, names: list[str]) -> None:
    if len(names) < 2:
        raise UserError("A comparison needs at least two models.", "Give them with --models A B.")
    if len(set(names)) != len(names):
        raise UserError("The same model is named twice.", "Give each model once.")
    missing = [name for name in names if not model_exists(ws.model_dir(name))]
    if missing:
        known = ", ".join(ws.model_names()) or "none yet"
        raise UserError(f"There is no trained model {missing[0]!r} in this workspace.", f"Models: {known}.")


def _arch(model: Any) -> str | None:
    """The model's architecture (None for an imported file, which does not say)."""
    options = getattr(getattr(model, "network", None), "options", None)
    return getattr(options, "arch", None)


def compare(ws: Workspace, names: list[str], report: Reporter | None = None, frames: int = 50,
            device: str = "auto", c2pa: bool = True, c2pa_cert: str = "", c2pa_key: str = "",
            out_dir: str = OUT_DIR) -> dict[str, Any]:
    """``out_dir`` (workspace-relative): where the files go (the study, engine.jobs.study, uses its own)."""
    report = report or NullReporter()
    started = time.time()
    _check_names(ws, names)
    models = [load_model(ws.model_dir(name), device=device, warn=report.warning) for name in names]
    credentials = content_credentials.for_workspace(
        ws, report, enabled=c2pa, cert=c2pa_cert, key=c2pa_key,
        models=[{"name": name, "iteration": int(model.iteration)} for name, model in zip(names, models)])
    chosen = measured_frames(ws, frames)
    if not chosen.held_out:
        report.warning(chosen.note)
    values: dict[str, dict[str, Any]] = {}
    samples: dict[str, dict[str, dict[int, float]]] = {name: {} for name in names}
    faces_by_res: dict[int, dict[str, Any]] = {}
    finder = FaceFinder(min_presence=0.0)
    for number, (name, model) in enumerate(zip(names, models)):
        report.progress("reconstruct", number, len(models), unit="models")
        if getattr(model, "network", None) is None:  # an imported .dfm/.onnx: a swap path, no reconstructions
            values[name] = {}
            report.warning(f"Model {name} was imported from a file, which holds only the swap: its held-out "
                           "reconstruction and expression figures cannot be measured; its swap is.")
            continue
        if model.resolution not in faces_by_res:
            faces_by_res[model.resolution] = {s: held_out_faces(ws, s, model.resolution) for s in ("src", "dst")}
        values[name] = reconstruction_metrics(model.network, faces_by_res[model.resolution], model.device,
                                              samples[name])
        held_dst = faces_by_res[model.resolution]["dst"]
        values[name].update(expression_fidelity(model.network, held_dst, model.device, finder,
                                                limit=len(held_dst.crops), samples=samples[name]))
    report.progress("reconstruct", len(models), len(models), unit="models")

    out = ws.root / out_dir
    out.mkdir(parents=True, exist_ok=True)
    label = synthetic_label()
    captions = ["destination"] + [f"{name} (it {model.iteration})" for name, model in zip(names, models)]
    records = records_by_frame(ws)
    fps = probe(ws.source("dst")).fps or 25.0
    sheet_at = set(chosen.frames[round(i * (len(chosen.frames) - 1) / max(1, SHEET_ROWS - 1))]
                   for i in range(min(SHEET_ROWS, len(chosen.frames))))
    sheet_rows, row_labels = [], []
    likeness = likeness_meter(ws, report.warning)
    meters = [SwapMeter(finder, LikenessMeter(likeness.embedder, likeness.source, likeness.destination)
                        if likeness is not None else None) for _ in models]
    writer = None
    try:
        for done, (index, dst, merged) in enumerate(swapped_frames(ws, chosen.frames, models,
                                                                    merge_settings.load(ws)), 1):
            report.check_cancelled()
            for meter, frame in zip(meters, merged):
                meter.add(index, dst, frame, records.get(index))
            row = sheet.side_by_side([dst, *merged], captions)
            if writer is None:
                writer = VideoWriter(out / "side_by_side.mp4", row.shape[1], row.shape[0], fps, label=label,
                                     credentials=credentials)
            writer.write(row)
            if index in sheet_at and index in records:
                box = sheet.face_box(records[index], dst.shape)
                sheet_rows.append([sheet.close_up(f, box) for f in (dst, *merged)])
                row_labels.append(f"frame {index}")
            report.progress("compare", done, len(chosen.frames), unit="frames")
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        finder.close()

    entries = []
    for name, model, meter in zip(names, models, meters):
        values[name].update(meter.result())
        samples[name].update(meter.samples)
        history.append(ws.model_dir(name), model.iteration, "quality", values[name])
        cost = training_cost(ws.model_dir(name))
        unseen = unseen_check(cost, chosen.frames)
        cost.pop("never_trained_on", None)
        if unseen.startswith("no"):
            report.warning(f"Model {name} trained on frames it is measured on: {unseen}.")
        entries.append({"name": name, "iteration": model.iteration, "cost": cost, "unseen": unseen,
                        "metrics": values[name], "verdicts": [{"level": v.level, "text": v.text, "topic": v.topic}
                                                              for v in verdicts(values[name], _arch(model))]})
    outputs = {"video": f"{out_dir}/side_by_side.mp4", "json": f"{out_dir}/compare.json"}
    if sheet_rows:
        image = sheet.contact_sheet(sheet_rows, captions, row_labels)
        atomic_write_bytes(out / "contact_sheet.png", png_with_text(image, label, credentials=credentials,
                                                                    title="contact_sheet.png"))
        outputs["contact_sheet"] = f"{out_dir}/contact_sheet.png"
    result = {"models": entries, "table": metric_table(entries, samples), "frames": chosen.frames,
              "held_out": chosen.held_out, "frames_note": chosen.note, "outputs": outputs,
              "label": label["comment"], "content_credentials": content_credentials.result_line(credentials),
              "seconds": round(time.time() - started, 2), "compared_at": round(time.time(), 2)}
    atomic_write_json(out / "compare.json", result)
    if outputs.get("contact_sheet"):
        report.preview(outputs["contact_sheet"])
    report.log(f"Compared {', '.join(names)} on {len(chosen.frames)} frames: {outputs['json']}, "
               f"{outputs['video']} (labelled as synthetic media).")
    return result
