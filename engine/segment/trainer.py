"""Training the segmenter on a workspace's faces, resumable, and measuring it on held-out faces.

Each step draws a batch of training faces (painted labels four times as often), warps each at
random (rotation, scale, shift, flip; image and label alike), jitters its colours, pastes synthetic
occluders (``engine.segment.synth``) and takes an Adam step on binary cross-entropy plus soft Dice.
The learning rate falls along a cosine to a tenth by the target iteration.

``train(ws, sides, options, progress, cancelled)`` saves the segmenter (``engine.segment.model``)
and Adam's state every ``save_every_s`` seconds and when it ends or is cancelled; the next call
continues from there. ``evaluate(segmenter, faces, indices)`` is the held-out IoU: every held-out
face with one synthetic occluder (fixed seed), predicted visible face (p > 0.5) against the truth.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from engine.atomic import atomic_write_bytes
from engine.segment import store, synth
from engine.segment.data import Faces, held_out, load_faces
from engine.segment.model import Description, Segmenter

EVAL_SEED = 1234


@dataclass
class Options:
    resolution: int = 128
    width: int = 8
    iters: int = 1200
    batch: int = 16
    lr: float = 3e-3
    seed: int = 0
    threads: int = 0
    device: str = "cpu"
    save_every_s: float = 60.0
    #: Train on at most this many faces per side (evenly spaced); 0 = all.
    max_faces: int = 4000
    #: "generic": a new segmenter starts from the shipped one (``engine.segment.generic``) and trains
    #: ``finetune_iters``; "scratch": from random weights, ``iters``.
    start: str = "scratch"
    finetune_iters: int = 200
    #: The learning rate of a fine-tuning (the generic weights know faces already: smaller steps).
    finetune_lr: float = 1e-3


def augment(image: np.ndarray, label: np.ndarray, trust: np.ndarray,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random warp (image, label and trust alike) and colour jitter (image only)."""
    res = image.shape[0]
    angle, scale = rng.uniform(-15, 15), rng.uniform(0.9, 1.1)
    matrix = cv2.getRotationMatrix2D((res / 2, res / 2), angle, scale)
    matrix[:, 2] += rng.uniform(-0.06, 0.06, 2) * res
    if rng.random() < 0.5:
        matrix = np.array([[-1, 0, res - 1], [0, 1, 0]], np.float64) @ np.vstack([matrix, [0, 0, 1]])
    image = cv2.warpAffine(image, matrix, (res, res), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    label = cv2.warpAffine(label, matrix, (res, res), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    trust = cv2.warpAffine(trust, matrix, (res, res), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT)
    jitter = image.astype(np.float32) * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)
    jitter = jitter * rng.uniform(0.9, 1.1, 3)
    if rng.random() < 0.2:
        jitter = cv2.GaussianBlur(jitter, (0, 0), rng.uniform(0.5, 1.5))
    return np.clip(jitter, 0, 255).astype(np.uint8), label, trust


def _optimizer_state(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for number, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            value = value if torch.is_tensor(value) else torch.tensor(float(value))
            tensors[f"{number}.{key}"] = value.detach().to("cpu").contiguous()
    return tensors


def _restore_optimizer(optimizer: torch.optim.Optimizer, path: Path) -> bool:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError):
        return False
    state_dict = optimizer.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        number, key = name.split(".", 1)
        state.setdefault(int(number), {})[key] = tensor
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if len(state) != len(params) or any(state[i].get("exp_avg") is None or
                                         state[i]["exp_avg"].shape != params[i].shape for i in state):
        return False
    state_dict["state"] = state
    optimizer.load_state_dict(state_dict)
    return True


def _loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy plus soft Dice, both over the supervised pixels (``weight`` 1) only."""
    bce = (F.binary_cross_entropy_with_logits(logits, target, reduction="none") * weight).sum() / weight.sum().clamp(min=1)
    p = torch.sigmoid(logits) * weight
    t = target * weight
    inter = (p * t).sum(dim=(1, 2, 3))
    dice = 1 - (2 * inter + 1) / (p.sum(dim=(1, 2, 3)) + t.sum(dim=(1, 2, 3)) + 1)
    return bce + dice.mean()


#: After this fraction of the training, automatic "face" labels are no longer taught where the network
#: is sure (p < SURE_NOT) that the pixel is not face: an occluder nobody recorded, which the synthetic
#: occluders taught it to see, is not learnt back as face (label noise is learnt last).
SELF_CORRECT_AFTER = 0.3
SURE_NOT = 0.2


def iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    """IoU of two boolean masks (1 when both are empty)."""
    union = np.logical_or(predicted, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(predicted, truth).sum() / union)


def occluded_set(faces: Faces, indices: np.ndarray, seed: int = EVAL_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The held-out faces, each with one synthetic occluder (fixed seed): (images, truth labels)."""
    rng = np.random.default_rng(seed)
    source = faces.source()
    images, labels = [], []
    for i in indices:
        image, label, _ = synth.one(faces.crops[i], faces.labels[i], rng, source, int(i))
        images.append(image)
        labels.append(label)
    return np.stack(images), np.stack(labels)


def evaluate(segmenter: Segmenter, faces: Faces, indices: np.ndarray) -> dict[str, float | None]:
    """Mean IoU on held-out faces, with a synthetic occluder (``iou``) and as they are (``iou_clean``)."""
    if len(indices) == 0:
        return {"iou": None, "iou_clean": None}
    images, truth = occluded_set(faces, indices)
    occluded = segmenter.predict(images)
    clean = segmenter.predict(faces.crops[indices])
    return {"iou": round(float(np.mean([iou(p > 0.5, t > 127) for p, t in zip(occluded, truth)])), 4),
            "iou_clean": round(float(np.mean([iou(p > 0.5, faces.labels[i] > 127)
                                              for p, i in zip(clean, indices)])), 4)}


def labels_fingerprint(ws: Any, sides: list[str]) -> dict[str, Any]:
    """The painted labels (how many, the newest one's time) and the faces rejected in the mask review:
    a change means retraining."""
    count, newest = 0, 0.0
    for side in sides:
        folder = ws.side_dir(side) / store.USER
        if folder.is_dir():
            for path in folder.glob("*.png"):
                count += 1
                newest = max(newest, path.stat().st_mtime)
    fingerprint: dict[str, Any] = {"painted": count, "newest": round(newest, 3)}
    rejected = sorted(f"{side}/{name}" for side in sides for name in store.rejected(ws.side_dir(side)))
    if rejected:  # faces left out of the labels in the mask review: a change means retraining too
        import hashlib

        fingerprint["rejected"] = [len(rejected), hashlib.sha1("\n".join(rejected).encode()).hexdigest()[:12]]
    return fingerprint


def train(ws: Any, sides: list[str], options: Options, progress: Callable[[int, int], None] | None = None,
          cancelled: Callable[[], None] | None = None, log: Callable[[str], None] | None = None,
          faces: Faces | None = None) -> dict[str, Any]:
    """Train (or continue training) the workspace's segmenter up to ``options.iters``; returns a summary."""
    log = log or (lambda _message: None)
    folder = store.segmenter_dir(ws)
    if options.threads:
        torch.set_num_threads(options.threads)
    labels = labels_fingerprint(ws, sides)
    segmenter = None
    if (folder / store.CONFIG).is_file():
        segmenter = Segmenter.load(folder, options.device)
        d = segmenter.description
        if d.resolution != options.resolution or d.width != options.width:
            log(f"The segmenter was {d.resolution} px, width {d.width}; starting a new one at "
                f"{options.resolution} px, width {options.width}.")
            segmenter = None
    if segmenter is None:
        segmenter = _generic(options, log) if options.start == "generic" else None
    if segmenter is None:
        torch.manual_seed(options.seed)
        segmenter = Segmenter(Description(width=options.width, resolution=options.resolution, sides=sides),
                              options.device)
    d = segmenter.description
    start = d.iteration
    iters, lr = (options.finetune_iters, options.finetune_lr) if d.origin == "generic" else (options.iters, options.lr)
    if d.labels and d.labels != labels and start >= max(d.target, iters):
        # New painted labels: train on from where it is, half as many steps again.
        d.target = start + max(1, iters // 2)
        log(f"Painted labels changed ({labels['painted']} now): retraining for {d.target - start} iterations.")
    else:
        d.target = max(d.target, iters)
    d.sides, d.labels = sides, labels
    if faces is None:
        faces = load_faces(ws, sides, options.resolution, options.max_faces)
    held = held_out(len(faces))
    training = np.setdiff1d(np.arange(len(faces)), held)
    weights = np.where(faces.painted[training], 4.0, 1.0)
    weights /= weights.sum()
    optimizer = torch.optim.Adam(segmenter.net.parameters(), lr=lr)
    if start and (folder / store.OPTIMIZER).is_file():
        _restore_optimizer(optimizer, folder / store.OPTIMIZER)
    rng = np.random.default_rng(options.seed + start)
    source = faces.source()
    began = time.monotonic()
    last_save = began
    iteration = start
    net = segmenter.net

    def save() -> None:
        d.iteration = iteration
        d.faces = len(faces)
        d.seconds = round(d.seconds + time.monotonic() - began, 1)
        atomic_write_bytes(folder / store.OPTIMIZER, _save_tensors(_optimizer_state(optimizer)))
        segmenter.save(folder)

    try:
        net.train()
        while iteration < d.target:
            if cancelled is not None:
                cancelled()
            picks = rng.choice(training, size=options.batch, p=weights)
            images, targets, trusted, known = [], [], [], []
            for i in picks:
                image, label, trust = augment(faces.crops[i], faces.labels[i], faces.trust[i], rng)
                image, label, covered = synth.paste(image, label, rng, source, int(i))
                images.append(image)
                targets.append(label)
                sure = (covered > 0.02) | bool(faces.painted[i])  # pasted occluders and painted labels: truth
                trusted.append(np.where(sure, 255, trust))
                known.append(sure)
            x = torch.from_numpy(np.stack(images)).to(segmenter.device).permute(0, 3, 1, 2).float() / 255.0
            y = torch.from_numpy(np.stack(targets)).to(segmenter.device)[:, None].float() / 255.0
            w = torch.from_numpy(np.stack(trusted)).to(segmenter.device)[:, None].float() / 255.0
            k = torch.from_numpy(np.stack(known)).to(segmenter.device)[:, None]
            progress_lr = lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, iteration / d.target))))
            for group in optimizer.param_groups:
                group["lr"] = progress_lr
            logits = net(x)
            if iteration >= SELF_CORRECT_AFTER * d.target:
                doubted = (y > 0.5) & ~k & (torch.sigmoid(logits.detach()) < SURE_NOT)
                w = w * (~doubted).float()
            loss = _loss(logits, y, w)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            iteration += 1
            if progress is not None:
                progress(iteration, d.target)
            if time.monotonic() - last_save >= options.save_every_s:
                save()
                began, last_save = time.monotonic(), time.monotonic()
    finally:
        net.eval()
        if iteration > start:
            save()
    measured = evaluate(segmenter, faces, held)
    d.iou, d.iou_clean = measured["iou"], measured["iou_clean"]
    segmenter.save(folder)
    return {"iteration": d.iteration, "target": d.target, "trained": iteration - start, "faces": len(faces),
            "held_out": len(held), "painted": int(faces.painted.sum()), **measured, "seconds": d.seconds,
            "segmenter": segmenter}


def _generic(options: Options, log: Callable[[str], None]) -> Segmenter | None:
    """The shipped generic segmenter, to fine-tune (None: not shipped, or another size or width)."""
    folder = store.generic_dir()
    if folder is None:
        return None
    segmenter = Segmenter.load(folder, options.device)
    d = segmenter.description
    if (d.resolution, d.width) != (options.resolution, options.width):
        log(f"The shipped segmenter is {d.resolution} px, width {d.width}: learning one of {options.resolution} px, "
            f"width {options.width} from scratch ({options.iters} iterations).")
        return None
    d.iteration, d.target, d.seconds, d.origin, d.iou, d.iou_clean = 0, 0, 0.0, "generic", None, None
    log(f"Starting from the segmenter shipped with swapwizard: fine-tuning it on these faces for "
        f"{options.finetune_iters} iterations.")
    return segmenter


def _save_tensors(tensors: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save(tensors)
