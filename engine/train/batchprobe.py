"""A short automatic probe for the batch size: the largest that pays, leaving memory headroom.

At batch 16 our models leave a big GPU launch-bound (a few % of its FLOPs): bigger batches do more
work per kernel launch. ``probe_batch`` doubles the batch from ``start`` and, at each size, runs a
few real training steps (forward, loss, backward, optimizer) on a throwaway trainer, measuring
samples/s and the peak memory. It stops at ``cap``, when a step runs out of memory or its peak leaves
less than ``headroom`` of the device's memory free, or when doubling gains less than ``min_gain`` in
samples/s; it returns the batch with the best samples/s among those that fit (the smaller on a tie
within ``min_gain``), and the whole curve.

On the CPU memory is the process's peak resident set against the memory available, and the doubling
is bounded by the ``cap`` (there is little to gain: a CPU is never launch-bound). The figures that set
defaults for GPUs come from ``swapwizard bench train --probe-batch`` on the GPU itself.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from typing import Any

import torch


def _device_total(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 + _rss_peak()
    except OSError:
        pass
    return 0


def _rss_peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def probe_batch(step: Callable[[int], Any], device: torch.device, start: int, cap: int, headroom: float = 0.2,
                steps: int = 3, min_gain: float = 0.05) -> dict[str, Any]:
    """``step(batch)`` runs one training step at that batch size (on a trainer used only for probing).
    Returns ``{"batch", "curve": [{"batch", "samples_per_s", "peak_bytes", "fits"}], "stopped", "total_bytes"}``."""
    total = _device_total(device)
    curve: list[dict[str, Any]] = []
    stopped = "cap"
    batch = max(1, start)
    while batch <= cap:
        try:
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            step(batch)  # warm-up: allocator, autotuning
            _sync(device)
            began = time.perf_counter()
            for _ in range(steps):
                step(batch)
            _sync(device)
            seconds = time.perf_counter() - began
        except torch.OutOfMemoryError:
            stopped = "out of memory"
            break
        peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else _rss_peak()
        fits = not total or peak <= (1.0 - headroom) * total
        point = {"batch": batch, "samples_per_s": round(2 * batch * steps / seconds, 2), "peak_bytes": int(peak),
                 "fits": fits}
        curve.append(point)
        if not fits:
            stopped = "headroom"
            break
        fitting = [p for p in curve[:-1] if p["fits"]]
        if fitting and point["samples_per_s"] < (1.0 + min_gain) * fitting[-1]["samples_per_s"]:
            stopped = "no gain"
            break
        batch *= 2
    if device.type == "cuda":
        torch.cuda.empty_cache()
    fitting = [p for p in curve if p["fits"]]
    if not fitting:
        return {"batch": max(1, start), "curve": curve, "stopped": stopped, "total_bytes": total}
    best = max(p["samples_per_s"] for p in fitting)
    chosen = min(p["batch"] for p in fitting if p["samples_per_s"] >= best / (1.0 + max(0.0, min_gain)))
    return {"batch": chosen, "curve": curve, "stopped": stopped, "total_bytes": total}


def trainer_step(model_options: Any, train_options: Any, device: torch.device, resolution: int,
                 raw: Callable[[int], tuple[torch.Tensor, torch.Tensor]] | None = None,
                 seed: int = 0) -> Callable[[int], Any]:
    """A ``step(batch)`` for ``probe_batch``: a fresh trainer of these options (never the run's own: the
    probe's steps must not move its weights), batches augmented as training does, from ``raw(n)`` (two
    uint8 ``n x 5 x R x R`` tensors) or random faces."""
    from engine.train.augment import Augmenter
    from engine.train.trainer import Trainer

    trainer = Trainer(model_options, train_options, device)
    augmenter = Augmenter(resolution, train_options, device, seed)
    generator = torch.Generator().manual_seed(seed)

    def random_raw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        faces = torch.randint(0, 256, (2 * n, 5, resolution, resolution), dtype=torch.uint8, generator=generator)
        return faces[:n].to(device), faces[n:].to(device)

    source = raw or random_raw
    iteration = [0]

    def step(n: int) -> Any:
        src, dst = source(n)
        iteration[0] += 1
        return trainer.step(augmenter(src, dst), iteration[0])

    return step
