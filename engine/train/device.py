"""Choosing the device and the numeric precision.

``--device`` takes ``auto`` (the first visible CUDA GPU, else the CPU), ``cpu``, ``cuda`` or
``cuda:N``; CUDA_VISIBLE_DEVICES decides which GPUs are visible at all, as everywhere in PyTorch.
"""

from __future__ import annotations

import contextlib

import torch

from engine.errors import UserError


def pick_device(spec: str = "auto") -> torch.device:
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UserError(f"{spec!r} is not a device.", "Use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError("CUDA was asked for but this torch build or machine has no usable GPU.",
                            "Use --device cpu, or install a CUDA build of torch (see the README).")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"There is no GPU {device.index} (visible: {torch.cuda.device_count()}).",
                            "Check CUDA_VISIBLE_DEVICES and nvidia-smi.")
        # An explicit index: random generators and tensors must name the same device.
        return torch.device("cuda", torch.cuda.current_device() if device.index is None else device.index)
    if device.type != "cpu":
        raise UserError(f"Device type {device.type!r} is not supported.", "Use auto, cpu or cuda.")
    return device


def tune_for(device: torch.device) -> None:
    """Speed settings for a CUDA device: cuDNN picks the fastest convolutions for our fixed shapes,
    and fp32 matrix products may use TF32 tensor cores."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype: bf16 where the GPU supports it, else fp16; None means plain fp32 (always on
    the CPU, where mixed precision is slower than fp32 for these convolutions)."""
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
