"""Does the swapped face follow the destination's expression? Swap against reconstruction, per feature.

A model can reconstruct the destination well (dst->dst SSIM 0.9) and still draw the source's
"average face" in the swap: a mouth open in every frame while the destination's is closed. This
measures that on held-out destination faces (aligned crops training never saw):

- the destination crop, its swap (dst->src, the path a merge takes) and its reconstruction
  (dst->dst) are each scaled to ``MEASURE_SIZE`` px and given to the mediapipe mesh
  (``engine.faces.detect.FaceFinder``) in the same region;
- each result's landmarks are compared with the mesh found on the destination crop the same way
  (``metrics.landmark_error``: mean distance / face size, over the mouth, the eyes and all 68 points,
  "pose"), **after each path's own average shape over the measured faces is replaced by the
  destination's**: what is compared is how each face moves away from its average (the expression),
  not the average itself. The swap should have the source's lips, eye shape and jaw (that is the
  identity); measured raw, that static difference counted as an expression error, and the ratio
  grew with training while the mouth followed better and better (df-ud on the sample pair at 5 750
  iterations: mouth-opening correlation 0.93, raw mouth ratio 1.99, because the reconstruction's
  floor kept falling). With fewer than 3 faces there is no average: raw errors. An unswapped face
  scores 0;
- the reconstruction's error is the floor this model can reach at its resolution and training (the
  same encoder and a decoder that saw these expressions on this face), so the figure that says whether
  the swap follows the expression is the **ratio** swap error / reconstruction error per feature:
  about 1 when the swap follows as well as the model can draw anything, 2-3 when it draws its own
  mouth. Mouth and eye *opening* (inner-lip gap and eyelid gap over the face width) are also measured
  per face, and ``mouth_corr`` is the Pearson correlation over the faces between the swap's mouth
  opening and the destination's: does the swapped mouth open when the destination's does.

How far the opening moves matters as much as whether it moves together (issue 25): a swapped mouth
that opens a quarter as far as the destination's can keep a good correlation and a small error once
each path's average shape is set aside, and a mouth frozen in one position has no correlation at all
to read. So for the mouth and the eyes the figures include ``expr_<feature>_spread``, the spread
(standard deviation) of the swap's opening over the destination's (ideal 1; a frozen mouth scores
about 0), and ``expr_<feature>_slope``, the least-squares slope of swap opening on destination opening
(correlation x spread). Each comes with a 90 % bootstrap interval over the faces
(``..._lo``/``..._hi``), and ``expr_<feature>_dst_spread`` says how much the destination's opening
varied over the measured faces: below ``engine.quality.verdict.MIN_SPREAD`` there is nothing to
follow and the verdict says it cannot tell. ``expr_openings`` holds the per-face openings (frames,
destination and swap, mouth and eyes) for the opening plot (``engine.quality.opening_plot``).

The measure works on crops rather than on whole merged frames: the blend pastes the swap into the
frame, and the landmarks of the blended face come from the same crop (the frame-level swap figures of
``engine.quality.swap`` remain in ``quality``). ``expression_fidelity`` runs a network on
``HeldOutFaces``; ``measure_crops`` is the measurement itself on arrays (tests measure the unswapped
destination with it: ratio 1, correlation 1).

Keys (all None when nothing could be measured): ``expr_mouth_ratio``, ``expr_eyes_ratio``,
``expr_pose_ratio``, ``expr_mouth_corr``, ``expr_mouth_swap``/``expr_mouth_recon`` (the errors
themselves), the same for eyes and pose, ``expr_mouth_open_swap``/``expr_mouth_open_dst`` (mean
openings), ``expr_mouth_corr_recon`` (the reconstruction's own mouth-opening correlation: low early in
training, when the model draws no expression on either path, so a ratio near 1 means little yet),
``expr_faces`` (faces measured on all three images), and the motion figures above. With ``mouth``
"follow" or "destination" (``[merge] mouth``), the mouth is also measured as the merge pastes it
(``merged_crop``, ``engine.merge.mouth``): ``expr_mouth_merged_corr``, ``_spread`` (with intervals),
``_dst_spread`` and ``_faces``, what ``train --until good`` counts where the model's own mouth fails.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.faces.detect import CROP_MESH_SIZE, crop_mesh
from engine.faces.landmarks import expression
from engine.quality import metrics

#: Crops are scaled to this size before the mesh looks at them (a 64 px crop is too small for it).
MEASURE_SIZE = CROP_MESH_SIZE
#: Held-out destination faces measured during training (evenly spread over the held-out stretch).
TRAINING_FACES = 16
FEATURES = ("mouth", "eyes", "pose")
#: Features whose opening is followed over the faces (correlation, spread and slope).
OPENINGS = ("mouth", "eyes")
#: Bootstrap resamples for the intervals (fixed seed: the same faces give the same interval).
RESAMPLES = 400
_PARTS = {"mouth": "mouth", "eyes": "eyes", "pose": "all"}


def openings(mesh: np.ndarray) -> tuple[float, float]:
    """(mouth opening, eye opening) of a 468-point mesh, each over the face width (inner-lip gap,
    mean eyelid gap: ``engine.faces.landmarks.expression``, which training's sampling uses too)."""
    mouth, eyes, _, _ = expression(mesh)
    return float(mouth), float(eyes)


def correlation(a: list[float], b: list[float]) -> float | None:
    """Pearson correlation; None for under 3 values or when either side does not vary."""
    if len(a) < 3:
        return None
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.std() < 1e-9 or y.std() < 1e-9:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def merged_crop(mouth: str, swapped: np.ndarray, destination: np.ndarray, points: np.ndarray,
                swap_points: np.ndarray) -> np.ndarray:
    """The swapped crop as the merge pastes it with ``[merge] mouth = mouth`` (``engine.merge.mouth.apply``),
    uint8 BGR; ``swap_points``: the swap's mesh (crop pixels), read already."""
    from engine.merge.mouth import apply

    swap = swapped.astype(np.float32) / 255.0 if swapped.dtype == np.uint8 else swapped.astype(np.float32)
    return np.clip(apply(mouth, swap, destination, points, swap_points) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def measure_crops(finder: Any, destination: np.ndarray, swapped: np.ndarray, reconstructed: np.ndarray,
                  landmarks: np.ndarray, frames: list[int] | None = None,
                  samples: dict[str, dict[int, float]] | None = None, mouth: str = "swap") -> dict[str, Any]:
    """The expression figures of N faces: ``destination`` (N x R x R x 3 uint8 BGR crops), their
    ``swapped`` and ``reconstructed`` versions (same size, uint8 or float 0..1) and the destination
    crops' ``landmarks`` (N x 468 x 2, crop pixels: where the mesh looks). ``samples``, when given,
    receives per-face values (``expr_mouth_swap`` ... -> frame -> value). ``mouth`` "follow" or
    "destination" also measures the mouth as the merge pastes it with that ``[merge] mouth``
    (``merged_crop``): ``expr_mouth_merged_corr``, ``_spread`` ... over the faces where the mesh reads it."""
    errors: dict[str, dict[str, list[float]]] = {path: {f: [] for f in FEATURES} for path in ("swap", "recon")}
    found: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    open_swap: list[float] = []
    open_dst: list[float] = []
    open_recon: list[float] = []
    eyes_swap: list[float] = []
    eyes_dst: list[float] = []
    measured: list[int] = []
    merged_open: list[tuple[float, float]] = []
    frames = list(frames) if frames is not None else list(range(len(destination)))
    for i in range(len(destination)):
        scale = MEASURE_SIZE / float(destination[i].shape[0])  # the figures in MEASURE_SIZE pixels
        raw = [crop_mesh(finder, image[i], landmarks[i]) for image in (destination, swapped, reconstructed)]
        meshes = [None if m is None else m * scale for m in raw]
        if any(m is None for m in meshes):
            continue  # the mesh found no face in one of the three: left out of every figure
        found_dst, found_swap, found_recon = meshes
        found.append((frames[i], found_dst, found_swap, found_recon))
        measured.append(int(frames[i]))
        (m_swap, e_swap), (m_dst, e_dst) = openings(found_swap), openings(found_dst)
        if mouth in ("follow", "destination"):
            merged = crop_mesh(finder, merged_crop(mouth, swapped[i], destination[i], landmarks[i], raw[1][:, :2]),
                               landmarks[i])
            if merged is not None:
                merged_open.append((openings(merged * scale)[0], m_dst))
        open_recon.append(openings(found_recon)[0])
        open_swap.append(m_swap)
        open_dst.append(m_dst)
        eyes_swap.append(e_swap)
        eyes_dst.append(e_dst)
    if found:
        centre = len(found) >= 3
        mean = {k: np.mean([f[k] for f in found], axis=0) for k in (1, 2, 3)}
        for frame, found_dst, found_swap, found_recon in found:
            for path, k, mesh in (("swap", 2, found_swap), ("recon", 3, found_recon)):
                moved = mesh - mean[k] + mean[1] if centre else mesh  # the destination's average shape
                error = metrics.landmark_error(moved, found_dst)
                for feature in FEATURES:
                    errors[path][feature].append(error[_PARTS[feature]])
                    if samples is not None:
                        samples.setdefault(f"expr_{feature}_{path}", {})[frame] = error[_PARTS[feature]]
    result = summarise(errors, open_swap, open_dst, eyes_swap, eyes_dst, open_recon, measured)
    if mouth in ("follow", "destination"):
        result.update(merged_figures([m for m, _ in merged_open], [d for _, d in merged_open]))
    return result


def merged_figures(open_merged: list[float], open_dst: list[float]) -> dict[str, Any]:
    """The mouth as merged: ``expr_mouth_merged_`` + corr, spread (with intervals), dst_spread, faces."""
    found: dict[str, Any] = {"expr_mouth_merged_faces": len(open_merged)}
    for key, value in motion(open_merged, open_dst).items():
        found[f"expr_mouth_merged_{key}"] = _round(value, 5 if key == "dst_spread" else 3)
    return found


def motion(swap: list[float], dst: list[float], resamples: int = RESAMPLES) -> dict[str, float | None]:
    """How the swap's opening moves against the destination's over the faces: ``corr``, ``spread``
    (std of the swap's over std of the destination's), ``slope`` (least squares, swap on destination),
    each with a 90 % bootstrap interval (``_lo``/``_hi``), and ``dst_spread`` (the destination's std)."""
    x, y = np.asarray(dst, np.float64), np.asarray(swap, np.float64)
    found: dict[str, float | None] = {"dst_spread": float(x.std()) if len(x) else None}
    for key in ("corr", "spread", "slope"):
        found[key] = found[f"{key}_lo"] = found[f"{key}_hi"] = None
    if len(x) < 3 or x.std() < 1e-9:
        return found
    found["spread"] = float(y.std() / x.std())
    found["slope"] = float(np.cov(x, y, bias=True)[0, 1] / x.var())
    found["corr"] = correlation(list(y), list(x))
    picks = np.random.default_rng(0).integers(0, len(x), (resamples, len(x)))
    xs, ys = x[picks], y[picks]
    sx, sy = xs.std(axis=1), ys.std(axis=1)
    cov = ((xs - xs.mean(axis=1, keepdims=True)) * (ys - ys.mean(axis=1, keepdims=True))).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = {"spread": np.where(sx > 1e-9, sy / sx, np.nan), "slope": np.where(sx > 1e-9, cov / sx ** 2, np.nan),
                 "corr": np.where((sx > 1e-9) & (sy > 1e-9), cov / (sx * sy), np.nan)}
    for key, values in draws.items():
        values = values[np.isfinite(values)]
        if key == "corr" and found["corr"] is None:
            continue
        if len(values):
            found[f"{key}_lo"], found[f"{key}_hi"] = (float(v) for v in np.percentile(values, [5, 95]))
    return found


def summarise(errors: dict[str, dict[str, list[float]]], open_swap: list[float], open_dst: list[float],
              eyes_swap: list[float], eyes_dst: list[float], open_recon: list[float] | None = None,
              frames: list[int] | None = None) -> dict[str, Any]:
    faces = len(open_swap)
    result: dict[str, Any] = {"expr_faces": faces}
    for feature in FEATURES:
        swap = float(np.mean(errors["swap"][feature])) if faces else None
        recon = float(np.mean(errors["recon"][feature])) if faces else None
        ratio = metrics.ratio(swap, recon) if faces else None
        result[f"expr_{feature}_swap"] = _round(swap)
        result[f"expr_{feature}_recon"] = _round(recon)
        result[f"expr_{feature}_ratio"] = _round(ratio, 3)
    corr = correlation(open_swap, open_dst)
    result["expr_mouth_corr"] = _round(corr, 3)
    result["expr_eyes_corr"] = _round(correlation(eyes_swap, eyes_dst), 3)
    result["expr_mouth_corr_recon"] = _round(correlation(open_recon or [], open_dst), 3)
    result["expr_mouth_open_swap"] = _round(float(np.mean(open_swap)) if faces else None)
    result["expr_mouth_open_dst"] = _round(float(np.mean(open_dst)) if faces else None)
    for feature, swap_open, dst_open in (("mouth", open_swap, open_dst), ("eyes", eyes_swap, eyes_dst)):
        for key, value in motion(swap_open, dst_open).items():
            if key != "corr":  # the correlations are above (the same value)
                result[f"expr_{feature}_{key}"] = _round(value, 5 if key == "dst_spread" else 3)
    result["expr_openings"] = {"frames": list(frames or range(faces)),
                               **{name: [round(float(v), 4) for v in values] for name, values in
                                  (("mouth_dst", open_dst), ("mouth_swap", open_swap), ("eyes_dst", eyes_dst),
                                   ("eyes_swap", eyes_swap))}}
    return result


def _round(value: float | None, digits: int = 5) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


def network_outputs(network: Any, crops: np.ndarray, device: Any, batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(swaps, dst reconstructions) of destination crops by a ``SwapAutoencoder`` (float 0..1, NHWC)."""
    import torch

    model = getattr(network, "module", network)
    was_training = model.training
    model.eval()
    swaps, recons = [], []
    try:
        with torch.no_grad():
            for start in range(0, len(crops), batch):
                x = torch.from_numpy(np.ascontiguousarray(crops[start:start + batch])).to(device)
                x = x.permute(0, 3, 1, 2).float().div_(255)
                swaps.append(model.swap(x)[0].float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy())
                recons.append(model(x, x)[2].float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy())
    finally:
        model.train(was_training)
    empty = np.zeros((0, *crops.shape[1:]), np.float32)
    return (np.concatenate(swaps) if swaps else empty), (np.concatenate(recons) if recons else empty)


def expression_fidelity(network: Any, held: Any, device: Any, finder: Any, limit: int = TRAINING_FACES,
                        samples: dict[str, dict[int, float]] | None = None, mouth: str = "swap") -> dict[str, Any]:
    """The expression figures of a network's swaps of at most ``limit`` held-out destination faces
    (``engine.quality.reconstruct.HeldOutFaces`` of the dst side, with landmarks); ``mouth``: also the
    mouth as merged with that ``[merge] mouth`` (``measure_crops``)."""
    count = min(limit, len(held.crops)) if held is not None and held.landmarks is not None else 0
    if not count:
        return summarise({p: {f: [] for f in FEATURES} for p in ("swap", "recon")}, [], [], [], [])
    picks = np.linspace(0, len(held.crops) - 1, count).round().astype(int)
    crops = held.crops[picks]
    swaps, recons = network_outputs(network, crops, device)
    return measure_crops(finder, crops, swaps, recons, held.landmarks[picks],
                         [int(held.frames[p]) for p in picks], samples, mouth)
