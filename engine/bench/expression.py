"""Expression fidelity of training recipes at a fixed iteration budget (issue 17).

    swapwizard bench expression --workspace WS [--candidates df,liae] [--iters 2000] [--every 500]
                                [--threads 1] [--seed S] [--pretrained MODEL] [--out DIR] [--json]
    python -m engine.bench expression --table DIR        # the table of earlier runs (the pairs table when
                                                         # DIR holds --pairs records, in DIR/<pair>/)
    swapwizard bench expression --workspace WS --anchors [--clip]  # the verdict thresholds' anchors
    swapwizard bench expression --pairs NAME=WS,NAME=WS --seeds 1,2 [--candidates df-match] [--iters N]
                                [--measure-only]          # the pairs table (issue 25, docs/expression.md)
    swapwizard bench expression --pairs ... --until good --for 20m --iters 11500
                                # each model in one run under train's stop rule (ceiling --iters), then
                                # the stops table too (issue 27, docs/until-good.md)
    python -m engine.bench expression --table DIR --stops --iters 11500   # that table again

Each candidate is a ``tiny`` model with some settings changed (``CANDIDATES``), trained from scratch
in ``WS/model/bench-<name>/`` by the real train job in steps of ``--every`` iterations; after each step
its checkpoint is loaded and measured on the held-out faces:

- ``ssim_dst``: held-out dst->dst SSIM in the face mask (``engine.quality.reconstruct``);
- ``expr_mouth_ratio`` / ``expr_eyes_ratio`` / ``expr_pose_ratio``: the swap's landmark error against the
  destination over the reconstruction's, and ``expr_mouth_corr``, the mouth-opening correlation
  (``engine.quality.expression``), on every held-out destination face;
- ``id_closer_src``, ``id_src``, ``id_dst``: identity of the swaps (``engine.quality.likeness``);
- ``clip_*``: the expression and identity figures again over every destination face of the clip,
  training faces included (``engine.quality.reconstruct.clip_faces``): what a merge of the whole clip
  shows, the issue's "over the clip", where the held-out figures say how the model generalises.

``--pretrained MODEL`` starts each candidate from a copy of the workspace's model ``MODEL``, pretrained on
other faces (``swapwizard train WS --model MODEL --pretrain FACES``): the train job's own transition
(iteration 0, inter layers re-initialised) then trains it on the pair for the same budget; its results
are ``<candidate>-pre``. Pretraining is paid once per machine, not per pair, so it is not in the budget.

``--pairs`` runs every candidate on every pair (an extracted workspace each) with every seed, then
measures each model over the clip three times: as trained, merged with ``[merge] mouth = follow``
(``engine.merge.mouth``: the swap's own lips moved to the destination's mouth shape) and with ``destination``
(the destination's mouth region over the swap), and says which ``[merge] mouth = auto`` takes for it (``engine.quality.mouth_auto``, from the model's latest quality).
The table has one row per pair, seed and candidate: identity, mouth correlation and spread over the
clip, whether the issue's targets are met (correlation >= 0.6, spread 0.7-1.4, identity >= 90 %), the
same for the two merged mouths with the seam's visibility, and auto's choice.
``--measure-only`` measures the models where they are (a run stopped early included) without training.

Iterations, not wall time, are the budget: on a shared machine wall time says more about the
neighbours than about the recipe. The seconds each step took are recorded anyway (``train_s``), with
the load average, so a reader can tell. Results go to ``DIR/<candidate>.json`` (rewritten after every
step: a long run can be read while it goes, and several candidates can run as separate processes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

#: name -> (what it is, the train job's parameters on top of the tiny preset).
CANDIDATES: dict[str, tuple[str, dict[str, Any]]] = {
    # Each says its sampling: the preset's own choice changed (tiny samples by expression since issue 17).
    "df": ("df-ud, shuffled src (tiny before issue 17)", {"arch": "df-ud", "src_sampling": "shuffle"}),
    "liae": ("liae-ud, shuffled src", {"arch": "liae-ud", "src_sampling": "shuffle"}),
    "df-match": ("df-ud, src faces sampled to match the dst batch's expression (tiny's default)",
                 {"arch": "df-ud", "src_sampling": "expression"}),
    "liae-match": ("liae-ud, src faces sampled to match the dst batch's expression",
                   {"arch": "liae-ud", "src_sampling": "expression"}),
    # A model too small for the footage: its figures level off early, the case of a plateau stop.
    "df-small": ("df-match at a quarter of tiny's width (dims 32/8/8/4, batch 4)",
                 {"arch": "df-ud", "src_sampling": "expression", "ae_dims": 32, "e_dims": 8, "d_dims": 8,
                  "d_mask_dims": 4, "batch_size": 4}),
}
#: The mouth as merged (``[merge] mouth`` follow, what auto pastes where the model's mouth fails).
MERGED_KEYS = ("corr", "spread", "dst_spread", "faces")
KEYS = ("ssim_dst", "ssim_src", "expr_mouth_ratio", "expr_eyes_ratio", "expr_pose_ratio", "expr_mouth_corr",
        "expr_mouth_corr_recon", "expr_mouth_swap", "expr_mouth_recon", "expr_mouth_open_swap", "expr_mouth_open_dst",
        "expr_faces", "expr_mouth_spread", "expr_mouth_dst_spread", "expr_eyes_corr", "expr_eyes_spread",
        "expr_eyes_dst_spread", *(f"expr_mouth_merged_{k}" for k in MERGED_KEYS),
        "id_closer_src", "id_src", "id_dst")
#: Destination faces measured over the clip (evenly spread): the sample clips have 200.
CLIP_FACES = 400
CLIP_KEYS = ("expr_mouth_ratio", "expr_eyes_ratio", "expr_pose_ratio", "expr_mouth_corr", "expr_mouth_corr_recon",
             "expr_faces", "id_closer_src", "expr_mouth_spread", "expr_mouth_corr_lo", "expr_mouth_corr_hi",
             "expr_mouth_spread_lo", "expr_mouth_spread_hi", "expr_mouth_dst_spread", "expr_eyes_corr",
             "expr_eyes_spread", "expr_eyes_dst_spread", "expr_mouth_open_swap", "expr_mouth_open_dst",
             *(f"expr_mouth_merged_{k}" for k in MERGED_KEYS))
#: The issue's targets over the clip (issue 25): mouth correlation, the spread ratio's range, identity.
TARGET_CORR, TARGET_SPREAD, TARGET_ID = 0.6, (0.7, 1.4), 0.9


def measure(ws: Any, model_dir: Path, finder: Any, likeness: Any, clip_limit: int = CLIP_FACES) -> dict[str, Any]:
    from engine.quality.expression import expression_fidelity
    from engine.quality.likeness import swap_likeness
    from engine.quality.mouth_auto import merged_mouth
    from engine.quality.reconstruct import clip_faces, held_out_faces, reconstruction_metrics
    from engine.train.api import load_model

    mouth = merged_mouth(ws)
    model = load_model(model_dir, device="cpu")
    faces = {side: held_out_faces(ws, side, model.resolution) for side in ("src", "dst")}
    values = reconstruction_metrics(model.network, faces, model.device)
    values.update(expression_fidelity(model.network, faces["dst"], model.device, finder, limit=64, mouth=mouth))
    if likeness is not None:
        values.update(swap_likeness(model.network, faces["dst"], model.device, likeness, limit=64))
    clip = clip_faces(ws, "dst", model.resolution, limit=clip_limit)
    whole = expression_fidelity(model.network, clip, model.device, finder, limit=clip_limit, mouth=mouth)
    if likeness is not None:
        whole.update(swap_likeness(model.network, clip, model.device, likeness, limit=clip_limit))
    return {**{k: values.get(k) for k in KEYS}, **{f"clip_{k}": whole.get(k) for k in CLIP_KEYS}}


def start_from(ws: Any, pretrained: str, model: str) -> None:
    """Copy the pretrained model ``pretrained`` to the candidate's ``model`` unless that one has started."""
    import shutil

    from engine.errors import UserError
    from engine.train.checkpoint import CheckpointStore

    source, target = ws.model_dir(pretrained), ws.model_dir(model)
    loaded = CheckpointStore(source).load(with_optimizer=False)
    if loaded is None or not loaded.state.get("pretraining"):
        raise UserError(f"The model {pretrained!r} has no pretrained checkpoint.",
                        f"Pretrain it first: swapwizard train WS --model {pretrained} --pretrain FACES --preset tiny.")
    if CheckpointStore(target).load(with_optimizer=False) is None:
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("previews", "backups", "best"))


def run_candidate(ws: Any, name: str, iters: int, every: int, threads: int, out: Path, seed: int = 1,
                  pretrained: str = "", clip_limit: int = CLIP_FACES, until: str = "",
                  time_limit: str = "") -> dict[str, Any]:
    """Train one candidate and measure it. In steps of ``every`` iterations to ``iters``, measured after
    each; or, with ``until`` ("good") or ``time_limit`` ("20m"), in one run under that stop rule
    (``train --until good --for 20m``, ``iters`` its ceiling; the trainer measures every ``[quality]
    every_iters`` itself), measured where it stopped, with the stop (``stop``, ``stop_reason``)."""
    from engine.faces.detect import FaceFinder
    from engine.jobs import get_kind
    from engine.quality.likeness import likeness_meter
    from engine.report import NullReporter

    meaning, params = CANDIDATES[name]
    label = name + ("-pre" if pretrained else "") + ("" if seed == 1 else f"-s{seed}")  # each its own model and file
    model = f"bench-{label}"
    if pretrained:
        start_from(ws, pretrained, model)
    job = get_kind("train")
    finder = FaceFinder(min_presence=0.0)
    likeness = likeness_meter(ws, print)
    if pretrained:
        meaning += f", started from the pretrained model {pretrained!r}"
    record: dict[str, Any] = {"candidate": name, "meaning": meaning, "params": params, "preset": "tiny",
                              "threads": threads, "seed": seed, "pretrained": pretrained, "points": [],
                              "until": until, "time_limit": time_limit}
    if until or time_limit:
        every = iters  # one run: the stop rule decides where it ends
    try:
        done = 0
        while done < iters:
            target = min(iters, done + every)
            load = os.getloadavg()[0]
            started = time.monotonic()
            rule = {"until": until, "time_limit": time_limit} if until or time_limit else {}
            result = job.module.run(ws, job.parse_params({"preset": "tiny", **params, "model": model, "iters": target,
                                                          "device": "cpu", "threads": threads, "seed": seed, **rule}),
                                    NullReporter())
            seconds = time.monotonic() - started
            done = int(result["iteration"])  # a stop (SIGTERM) ends the step early: measured where it stopped
            point = {"iteration": done, "train_s": round(seconds, 1), "load_before": round(load, 2),
                     "load_after": round(os.getloadavg()[0], 2), "stop": result.get("stopped"),
                     "stop_reason": result.get("stop_reason"),
                     **measure(ws, ws.model_dir(model), finder, likeness, clip_limit)}
            record["points"].append(point)
            from engine.atomic import atomic_write_json

            atomic_write_json(out / f"{label}.json", record)
            print(json.dumps(point), flush=True)
            if result.get("stopped") != "target" or rule:
                break
    finally:
        finder.close()
    return record


#: The frozen-mouth anchor's region: this share of the mouth's width round the donor's lips.
FROZEN_GROW = 0.5


def frozen_mouth(crops: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The crops with one face's mouth (the one whose opening is the median) pasted on all: each
    face's expression but a mouth that never moves (the anchor that must fail). The donor mouth is
    placed by the similarity that maps its mouth corners and nose tip onto each face's, and blended
    as ``[merge] mouth = destination`` blends (``engine.merge.mouth.restore``)."""
    import cv2

    from engine.merge.mouth import restore
    from engine.quality.expression import openings

    mouths = np.array([openings(p)[0] for p in landmarks])
    donor = int(np.argsort(mouths)[len(mouths) // 2])
    anchor_points = (61, 291, 4)  # mouth corners, nose tip
    out = []
    for crop, points in zip(crops, landmarks):
        matrix, _ = cv2.estimateAffinePartial2D(np.float32(landmarks[donor][list(anchor_points)]),
                                                np.float32(points[list(anchor_points)]))
        size = crop.shape[0]
        moved = cv2.warpAffine(crops[donor], matrix, (size, size), borderMode=cv2.BORDER_REPLICATE)
        moved_points = landmarks[donor] @ matrix[:, :2].T + matrix[:, 2]
        face = crop.astype(np.float32) / 255.0
        # A region wide enough to cover the lips and chin of the widest-open face too (the merge's own
        # region, fitted to one mouth, let the face's own lower lip show below a closed donor's).
        out.append(np.clip(restore(face, moved, moved_points, grow=FROZEN_GROW) * 255 + 0.5, 0, 255).astype(np.uint8))
    return np.stack(out)


ANCHOR_KEYS = ("expr_faces", "expr_mouth_corr", "expr_mouth_corr_lo", "expr_mouth_corr_hi", "expr_mouth_spread",
               "expr_mouth_spread_lo", "expr_mouth_spread_hi", "expr_mouth_slope", "expr_mouth_dst_spread",
               "expr_mouth_ratio", "expr_eyes_corr", "expr_eyes_spread", "expr_eyes_dst_spread", "expr_eyes_ratio",
               "expr_pose_ratio")


def anchors(ws: Any, clip: bool = False) -> list[dict[str, Any]]:
    """The figures the verdict thresholds are read against, on the workspace's held-out destination
    faces (``clip``: every destination face of the clip): the destination itself (a soft copy as swap
    and as reconstruction), the same drawn 4 % larger and off-centre (every expression followed, the
    shape changed), the same faces shuffled, the source's faces as the swap, and the destination with
    one face's mouth pasted on all (frozen mouth). Each row has the verdict states it gets."""
    import cv2

    from engine.faces.detect import FaceFinder
    from engine.quality.expression import measure_crops
    from engine.quality.reconstruct import clip_faces, held_out_faces
    from engine.quality.verdict import states

    dst = clip_faces(ws, "dst", 64, limit=CLIP_FACES) if clip else held_out_faces(ws, "dst", 64)
    src = clip_faces(ws, "src", 64, limit=CLIP_FACES) if clip else held_out_faces(ws, "src", 64)
    if not len(dst.crops) or not len(src.crops):
        from engine.errors import UserError

        raise UserError("The anchors need held-out faces on both sides.",
                        "Extract both sides first (swapwizard extract WS); [quality] holdout must be above 0.")
    soft = np.stack([cv2.GaussianBlur(c, (3, 3), 0.8) for c in dst.crops])
    grown = np.stack([cv2.warpAffine(c, np.float32([[1.04, 0, -1.5], [0, 1.04, 0.5]]), (64, 64),
                                     borderMode=cv2.BORDER_REPLICATE) for c in soft])
    picks = np.linspace(0, len(src.crops) - 1, len(soft)).round().astype(int)
    sources = np.stack([cv2.GaussianBlur(c, (3, 3), 0.8) for c in src.crops[picks]])
    order = np.random.default_rng(3).permutation(len(soft))
    frozen = frozen_mouth(soft, dst.landmarks)
    finder = FaceFinder(min_presence=0.0)
    rows = []
    try:
        for name, swap in (("the destination itself", soft), ("drawn 4% larger, off-centre", grown),
                           ("the same faces shuffled", soft[order]), ("the source's faces", sources),
                           ("frozen mouth (one face's mouth on all)", frozen)):
            found = measure_crops(finder, dst.crops, swap, soft, dst.landmarks, dst.frames)
            rows.append({"swap": name, **{k: found.get(k) for k in ANCHOR_KEYS}, "states": states(found)})
    finally:
        finder.close()
    return rows


def table(folder: Path) -> str:
    """A Markdown table of every candidate's last measured point (and the others, for the trend)."""
    rows = ["| budget (iters) | preset | method | identity closer to src | mouth / eyes / pose error ratio | "
            "mouth-opening corr | held-out SSIM dst | over the clip: identity, mouth ratio, mouth corr |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]

    def num(value: Any, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        for point in record["points"]:
            rows.append(f"| {point['iteration']} | {record['preset']} | {record['meaning']} | "
                        f"{num(point.get('id_closer_src'), '.0%')} | {num(point.get('expr_mouth_ratio'), '.2f')} / "
                        f"{num(point.get('expr_eyes_ratio'), '.2f')} / {num(point.get('expr_pose_ratio'), '.2f')} | "
                        f"{num(point.get('expr_mouth_corr'), '.2f')} | {num(point.get('ssim_dst'), '.3f')} | "
                        f"{num(point.get('clip_id_closer_src'), '.0%')}, {num(point.get('clip_expr_mouth_ratio'), '.2f')}, "
                        f"{num(point.get('clip_expr_mouth_corr'), '.2f')} |")
    return "\n".join(rows)


def destination_mouth(ws: Any, model_dir: Path, finder: Any, likeness: Any,
                      clip_limit: int = CLIP_FACES) -> dict[str, Any]:
    """Over the clip, the model's swaps merged with each mouth the merge can give them: ``[merge] mouth =
    destination`` (the destination's mouth region pasted, ``mouthdst_*``) and ``follow`` (the swap's lips
    moved to the destination's, ``mouthfollow_*``): mouth and identity figures, the seam's visibility
    (median over the faces, ``engine.merge.mouth.seam_visibility``: 1 = no edge added) and what auto takes."""
    from engine.merge.mouth import follow as follow_lips
    from engine.merge.mouth import restore, seam_visibility, swap_mesh
    from engine.quality.expression import measure_crops, network_outputs
    from engine.quality.likeness import LikenessMeter
    from engine.quality.mouth_auto import merge_mouth
    from engine.quality.reconstruct import clip_faces
    from engine.train.api import load_model

    model = load_model(model_dir, device="cpu")
    clip = clip_faces(ws, "dst", model.resolution, limit=clip_limit)
    swaps, recons = network_outputs(model.network, clip.crops, model.device)
    pasted = [restore(swap, crop, points) for swap, crop, points in zip(swaps, clip.crops, clip.landmarks)]
    followed, fallbacks = [], 0
    for swap, crop, points, paste in zip(swaps, clip.crops, clip.landmarks, pasted):
        moved = follow_lips(swap.astype(np.float32), crop, points, swap_mesh(finder, swap, points))
        fallbacks += moved is None
        followed.append(paste if moved is None else moved)
    values: dict[str, Any] = {"mouth_auto": merge_mouth(model_dir, "auto")[0], "mouthfollow_fallbacks": fallbacks}
    for prefix, blended in (("mouthdst_", pasted), ("mouthfollow_", followed)):
        as_u8 = np.stack([np.clip(b * 255 + 0.5, 0, 255).astype(np.uint8) for b in blended])
        found = measure_crops(finder, clip.crops, as_u8, recons, clip.landmarks, clip.frames)
        for k in ("expr_mouth_corr", "expr_mouth_spread", "expr_faces", "expr_mouth_open_swap"):
            values[f"{prefix}{k}"] = found.get(k)
        seams = [seam_visibility(b, swap, points) for b, swap, points in zip(blended, swaps, clip.landmarks)]
        seams = [x for x in seams if x is not None]
        values[f"{prefix}seam"] = round(float(np.median(seams)), 3) if seams else None
        if likeness is not None:
            meter = LikenessMeter(likeness.embedder, likeness.source, likeness.destination)
            for frame, face, points in zip(clip.frames, as_u8, clip.landmarks):
                meter.add(int(frame), np.ascontiguousarray(face), points)
            values[f"{prefix}id_closer_src"] = meter.result()["id_closer_src"]
    return values


def meets(point: dict[str, Any], prefix: str = "clip_") -> bool | None:
    """Does a measured point meet the issue's targets over the clip (None: not measured)?"""
    corr, spread = point.get(f"{prefix}expr_mouth_corr"), point.get(f"{prefix}expr_mouth_spread")
    identity = point.get(f"{prefix}id_closer_src")
    if corr is None or spread is None or identity is None:
        return None
    return corr >= TARGET_CORR and TARGET_SPREAD[0] <= spread <= TARGET_SPREAD[1] and identity >= TARGET_ID


def run_pairs(pairs: list[tuple[str, str]], seeds: list[int], names: list[str], iters: int, every: int,
              threads: int, measure_only: bool = False, out_root: Path | None = None,
              clip_limit: int = CLIP_FACES, until: str = "", time_limit: str = "") -> list[dict[str, Any]]:
    """Every candidate on every pair with every seed (trained to ``iters`` unless ``measure_only``),
    each measured over the clip as trained and with the destination's mouth; the records, with
    ``pair`` set, also go to ``out_root/<pair>/`` (default: each workspace's output/bench_expression/)."""
    from engine.atomic import atomic_write_json
    from engine.faces.detect import FaceFinder
    from engine.quality.likeness import likeness_meter
    from engine.train.api import load_model
    from engine.workspace import Workspace

    records = []
    for pair, path in pairs:
        ws = Workspace.open(path)
        out = out_root / pair if out_root is not None else ws.root / "output" / "bench_expression"
        out.mkdir(parents=True, exist_ok=True)
        for seed in seeds:
            for name in names:
                label = name + ("" if seed == 1 else f"-s{seed}")
                if measure_only:
                    model_dir = ws.model_dir(f"bench-{label}")
                    record = {"candidate": name, "meaning": CANDIDATES[name][0], "params": CANDIDATES[name][1],
                              "preset": "tiny", "threads": threads, "seed": seed, "pretrained": "", "points": []}
                    finder = FaceFinder(min_presence=0.0)
                    try:
                        point = {"iteration": load_model(model_dir, device="cpu").iteration,
                                 **measure(ws, model_dir, finder, likeness_meter(ws, print), clip_limit)}
                    finally:
                        finder.close()
                    record["points"].append(point)
                else:
                    record = run_candidate(ws, name, iters, every, threads, out, seed, clip_limit=clip_limit,
                                           until=until, time_limit=time_limit)
                finder = FaceFinder(min_presence=0.0)
                try:
                    record["points"][-1].update(destination_mouth(ws, ws.model_dir(f"bench-{label}"), finder,
                                                                  likeness_meter(ws, print), clip_limit))
                finally:
                    finder.close()
                record["pair"] = pair
                record["points"][-1].update({k: v for k, v in stop_figures(ws.model_dir(f"bench-{label}")).items()
                                             if v is not None})  # a run's own stop wins over a missing until.json
                atomic_write_json(out / f"{label}.json", record)
                records.append(record)
                print(json.dumps({"pair": pair, "seed": seed, **record["points"][-1]}), flush=True)
    return records


def stop_figures(model_dir: Path) -> dict[str, Any]:
    """Where and why the model's training last stopped (``until.json``), its training time
    (``training_cost.json``) and the estimate's replay on its quality history (``engine.bench.until``)."""
    from engine.bench.until import hit_rate, replay
    from engine.quality.cost import training_cost
    from engine.quality.estimate import read_state
    from engine.quality.history import read

    state = read_state(model_dir)
    rows = replay(read(model_dir))
    hits, decided = hit_rate(rows)
    return {"stop": state.get("stopped") or None, "stop_reason": state.get("reason"),
            "train_s_model": training_cost(model_dir)["train_seconds"], "estimate_hits": hits,
            "estimate_decided": decided, "estimate_rows": rows}


def until_table(records: list[dict[str, Any]], ceiling: int) -> str:
    """The stops table (issue 27, Markdown): one row per pair, seed and candidate trained ``--until good``:
    the stop, where, the minutes, the figures there held-out and over the clip, the iterations saved
    against ``ceiling`` (the fixed target) and how often the estimate's range held (replayed)."""
    rows = ["| pair | seed | stop | iteration | minutes | held-out: identity, mouth corr / spread, as merged corr / "
            "spread, eyes corr / spread, SSIM | whole clip: identity, mouth corr / spread, as merged corr / spread, eyes "
            "corr / spread | good held-out / clip | "
            f"iterations saved vs {ceiling} | minutes saved | estimate hit rate |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]

    def num(value: Any, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    def good(p: dict[str, Any], prefix: str) -> str:
        from engine.quality.estimate import HELD, holds

        figures = {k[len(prefix):]: v for k, v in p.items() if k.startswith(prefix)} if prefix else p
        missing = [name for name in HELD if not holds(figures, name)]
        return "yes" if not missing else "no: " + ", ".join(missing)

    for record in records:
        p = record["points"][-1]
        saved = ceiling - int(p["iteration"]) if p.get("stop") in ("good", "plateau") else 0
        minutes = p.get("train_s_model") or p.get("train_s")
        # At the run's own speed: what training on to the fixed target would have cost.
        saved_min = saved * minutes / 60 / int(p["iteration"]) if saved and minutes and p["iteration"] else 0
        rows.append(
            f"| {record.get('pair', '-')} | {record['seed']} | {p.get('stop') or '-'} | {p['iteration']} | "
            f"{num(minutes / 60 if minutes else None, '.0f')} | "
            f"{num(p.get('id_closer_src'), '.0%')}, {num(p.get('expr_mouth_corr'), '.2f')} / "
            f"{num(p.get('expr_mouth_spread'), '.2f')}, {num(p.get('expr_mouth_merged_corr'), '.2f')} / "
            f"{num(p.get('expr_mouth_merged_spread'), '.2f')}, {num(p.get('expr_eyes_corr'), '.2f')} / "
            f"{num(p.get('expr_eyes_spread'), '.2f')}, {num(p.get('ssim_dst'), '.3f')} | "
            f"{num(p.get('clip_id_closer_src'), '.0%')}, {num(p.get('clip_expr_mouth_corr'), '.2f')} / "
            f"{num(p.get('clip_expr_mouth_spread'), '.2f')}, {num(p.get('clip_expr_mouth_merged_corr'), '.2f')} / "
            f"{num(p.get('clip_expr_mouth_merged_spread'), '.2f')}, {num(p.get('clip_expr_eyes_corr'), '.2f')} / "
            f"{num(p.get('clip_expr_eyes_spread'), '.2f')} | {good(p, '')} / {good(p, 'clip_')} | {saved} | {saved_min:.0f} | "
            f"{p.get('estimate_hits', 0)} of {p.get('estimate_decided', 0)} |")
    return "\n".join(rows)


def pairs_table(records: list[dict[str, Any]]) -> str:
    """The pairs table (Markdown): one row per pair, seed and candidate, at its last measured point."""
    rows = ["| pair | seed | recipe | iters | identity | mouth corr (90% interval) | mouth spread (90% interval) | "
            "mouth opening swap / dst | targets met | auto merges | with the swap's lips following (follow): identity, "
            "corr, spread, opening, seam | targets met | with the destination's mouth pasted (destination): identity, "
            "corr, spread, opening, seam | targets met |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]

    def num(value: Any, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    def yes(value: bool | None) -> str:
        return "-" if value is None else "yes" if value else "no"

    for record in records:
        p = record["points"][-1]
        rows.append(
            f"| {record.get('pair', '-')} | {record['seed']} | {record['candidate']} | {p['iteration']} | "
            f"{num(p.get('clip_id_closer_src'), '.0%')} | {num(p.get('clip_expr_mouth_corr'), '.2f')} "
            f"({num(p.get('clip_expr_mouth_corr_lo'), '.2f')} to {num(p.get('clip_expr_mouth_corr_hi'), '.2f')}) | "
            f"{num(p.get('clip_expr_mouth_spread'), '.2f')} ({num(p.get('clip_expr_mouth_spread_lo'), '.2f')} to "
            f"{num(p.get('clip_expr_mouth_spread_hi'), '.2f')}) | {num(p.get('clip_expr_mouth_open_swap'), '.3f')} / "
            f"{num(p.get('clip_expr_mouth_open_dst'), '.3f')} | {yes(meets(p))} | {p.get('mouth_auto', '-')} | "
            + " | ".join(f"{num(p.get(f'{x}id_closer_src'), '.0%')}, {num(p.get(f'{x}expr_mouth_corr'), '.2f')}, "
                         f"{num(p.get(f'{x}expr_mouth_spread'), '.2f')}, {num(p.get(f'{x}expr_mouth_open_swap'), '.3f')},"
                         f" {num(p.get(f'{x}seam'), '.2f')} | {yes(meets(p, x))}" for x in ("mouthfollow_", "mouthdst_"))
            + " |")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="swapwizard bench expression", description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", help="an extracted workspace (both sides)")
    parser.add_argument("--candidates", default="df,liae", help=f"comma-separated: {', '.join(CANDIDATES)}")
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1, help="training seed (another seed: bench-<name>-s<seed>)")
    parser.add_argument("--pretrained", default="", help="start each candidate from a copy of this pretrained model")
    parser.add_argument("--out", default="", help="folder for <candidate>.json (default WS/output/bench_expression; "
                        "--pairs: DIR/<pair>/)")
    parser.add_argument("--table", default="", help="print the table of the results in this folder and stop")
    parser.add_argument("--anchors", action="store_true", help="measure the verdict thresholds' anchors and stop")
    parser.add_argument("--clip", action="store_true", help="anchors: on every destination face of the clip, "
                        "not the held-out ones")
    parser.add_argument("--pairs", default="", help="comma-separated NAME=WS (or WS): run the pairs table on these "
                        "extracted workspaces")
    parser.add_argument("--seeds", default="1", help="--pairs: comma-separated training seeds")
    parser.add_argument("--measure-only", action="store_true", help="--pairs: measure the models where they are")
    parser.add_argument("--clip-faces", type=int, default=CLIP_FACES, help="destination faces measured over the "
                        "clip (evenly spread)")
    parser.add_argument("--until", default="", choices=("", "good"), help="--pairs: train each model in one run "
                        "--until good (--iters its ceiling) and add the stops table")
    parser.add_argument("--for", dest="time_limit", default="", help="--pairs: ... and stop it after this much "
                        "training time (20m, 1h)")
    parser.add_argument("--stops", action="store_true", help="with --table: print the stops table (--until good runs)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.table:
        found = [json.loads(path.read_text()) for path in sorted(Path(args.table).rglob("*.json"))]
        paired = sorted((record for record in found if record.get("pair")),
                        key=lambda r: (r["pair"], r["seed"], r["candidate"]))
        if args.stops:
            print(until_table(paired, args.iters))
        else:
            print(pairs_table(paired) if paired else table(Path(args.table)))
        return 0
    from engine.errors import UserError

    names = [n for n in args.candidates.split(",") if n]
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        raise UserError(f"There is no candidate {unknown[0]!r}.", f"Candidates: {', '.join(CANDIDATES)}.")
    if args.pairs:
        pairs = [(item.split("=", 1)[0], item.split("=", 1)[1]) if "=" in item else (Path(item).name, item)
                 for item in args.pairs.split(",") if item]
        try:
            seeds = [int(seed) for seed in args.seeds.split(",") if seed]
        except ValueError:
            raise UserError(f"--seeds {args.seeds!r} is not a list of whole numbers.", "For example: --seeds 1,2.") from None
        import torch

        torch.set_num_threads(max(1, args.threads))
        records = run_pairs(pairs, seeds, names, args.iters, args.every, args.threads, args.measure_only,
                            Path(args.out) if args.out else None, args.clip_faces, args.until, args.time_limit)
        print(json.dumps(records) if args.json else pairs_table(records)
              + ("\n\n" + until_table(records, args.iters) if args.until else ""))
        return 0
    if not args.workspace:
        raise UserError("The expression benchmark needs an extracted workspace.",
                        "Give one with --workspace WS (both sides extracted).")
    import torch

    torch.set_num_threads(max(1, args.threads))
    # Everything the steps use, imported now: a module edited on disk during a long run is not
    # mixed with the versions already loaded.
    import engine.jobs.train  # noqa: F401
    import engine.quality.expression  # noqa: F401
    import engine.quality.likeness  # noqa: F401
    import engine.train.api  # noqa: F401
    from engine.workspace import Workspace

    ws = Workspace.open(args.workspace)
    if args.anchors:
        rows = anchors(ws, args.clip)
        print(json.dumps(rows) if args.json else "\n".join(json.dumps(row) for row in rows))
        return 0
    out = Path(args.out) if args.out else ws.root / "output" / "bench_expression"
    out.mkdir(parents=True, exist_ok=True)
    results = [run_candidate(ws, name, args.iters, args.every, args.threads, out, args.seed, args.pretrained,
                             args.clip_faces) for name in names]
    if args.json:
        print(json.dumps(results))
    else:
        print(table(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
